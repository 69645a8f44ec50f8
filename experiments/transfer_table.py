r"""One table of what pretraining buys: benchmark runs from a pretrained
model beside runs from random initialisation, and the paper's two columns.

  python -m experiments.transfer_table \
      --pretrained=/runs/pretrained_seed0,/runs/pretrained_seed1 \
      --scratch=/runs/random_seed0,/runs/random_seed1 \
      --output_prefix=experiments/results/transfer/results

Each directory is an `experiments.run_benchmarks` work directory (its
results.csv is read). Writes OUTPUT_PREFIX.md and OUTPUT_PREFIX.csv: per task, each arm's
score per seed and their mean, the difference of the means, and the paper's
test scores with and without pretraining.
"""

import csv
import os
from typing import Sequence

from absl import app
from absl import flags
import numpy as np

from proteinbert import tables
from proteinbert.finetuning import benchmarks

_PRETRAINED = flags.DEFINE_list(
    'pretrained', None, 'run_benchmarks work directories fine-tuned from the '
    'pretrained model, one per seed.', required=True)
_SCRATCH = flags.DEFINE_list(
    'scratch', None, 'run_benchmarks work directories of the same config '
    'from random initialisation, one per seed.', required=True)
_OUTPUT_PREFIX = flags.DEFINE_string(
    'output_prefix', None, 'Output path without suffix.', required=True)


def read_scores(workdirs: Sequence[str]) -> dict[str, list[float]]:
  """task -> the validation score of each work directory that has it.

  Raises:
    ValueError: a directory has no results.csv.
  """
  scores = {}
  for workdir in workdirs:
    path = os.path.join(workdir, 'results.csv')
    if not os.path.isfile(path):
      raise ValueError(f'{workdir}: no results.csv (not a run_benchmarks '
                       'work directory, or no task finished).')
    with open(path, newline='') as f:
      for row in csv.DictReader(f):
        scores.setdefault(row['task'], []).append(float(row['valid']))
  return scores


def transfer_rows(pretrained: dict[str, list[float]],
                  scratch: dict[str, list[float]]) -> list[dict]:
  """Rows for the tasks both arms have, in the paper's order."""
  rows = []
  for name, benchmark in benchmarks.BENCHMARKS.items():
    if name not in pretrained or name not in scratch:
      continue
    ours, theirs = pretrained[name], scratch[name]
    rows.append({
        'task': name,
        'pretrained (seeds)': ' / '.join(f'{v:.3f}' for v in ours),
        'random init (seeds)': ' / '.join(f'{v:.3f}' for v in theirs),
        'pretrained': float(np.mean(ours)),
        'random init': float(np.mean(theirs)),
        'difference': float(np.mean(ours) - np.mean(theirs)),
        'paper pretrained': benchmark.paper_pretrained,
        'paper no pretraining': benchmark.paper_scratch,
    })
  return rows


def main(argv):
  del argv
  rows = transfer_rows(read_scores(_PRETRAINED.value),
                       read_scores(_SCRATCH.value))
  tables.write_csv(_OUTPUT_PREFIX.value + '.csv', rows)
  tables.write_text(_OUTPUT_PREFIX.value + '.md', tables.markdown(rows))
  print(tables.markdown(rows))


if __name__ == '__main__':
  app.run(main)
