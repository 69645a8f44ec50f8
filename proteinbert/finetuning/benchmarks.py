"""The ProteinBERT paper's downstream benchmarks and a runner over them.

`run_benchmarks` fine-tunes and evaluates every known task found in a
directory of `NAME.{train,valid,test}.csv` files and writes a results table
with the paper's scores (Brandes et al. 2022, Table 1: test-set scores with
and without pretraining) beside ours.
"""

import os
from typing import Callable, NamedTuple, Optional, Sequence

from absl import logging
import ml_collections

from proteinbert import tables
from proteinbert.finetuning import data as data_lib
from proteinbert.finetuning import experiment


class Benchmark(NamedTuple):
  """A benchmark of the paper.

  Attributes:
    name: file prefix.
    description: what is predicted.
    kind: task kind (`tasks.KINDS`).
    paper_pretrained: the paper's test score with pretraining.
    paper_scratch: the paper's test score without pretraining.
  """
  name: str
  description: str
  kind: str
  paper_pretrained: float
  paper_scratch: float


BENCHMARKS = {b.name: b for b in (
    Benchmark('signalP_binary', 'signal peptide', 'global_binary',
              0.996, 0.991),
    Benchmark('ProFET_NP_SP_Cleaved', 'neuropeptide cleavage',
              'global_binary', 0.978, 0.940),
    Benchmark('disorder_secondary_structure', 'disorder', 'residue_binary',
              0.870, 0.862),
    Benchmark('secondary_structure', 'secondary structure (3 states)',
              'residue_categorical', 0.740, 0.704),
    Benchmark('remote_homology', 'remote homology (fold)',
              'global_categorical', 0.219, 0.063),
    Benchmark('scop', 'fold classes', 'global_categorical', 0.884, 0.593),
    Benchmark('stability', 'stability', 'global_numeric', 0.762, 0.634),
    Benchmark('fluorescence', 'fluorescence', 'global_numeric', 0.663, 0.647),
)}

_COLUMNS = ('task', 'kind', 'metric', 'valid', 'test', 'paper_pretrained',
            'paper_scratch', 'init', 'train_proteins', 'valid_proteins',
            'test_proteins', 'epochs', 'minutes', 'notes')


def run_benchmarks(directory: str, workdir: str,
                   config_for: Callable[[str], ml_collections.ConfigDict],
                   names: Optional[Sequence[str]] = None) -> list[dict]:
  """Fine-tunes and evaluates every known benchmark in `directory`.

  Args:
    directory: holds the benchmark CSVs.
    workdir: each task gets `workdir/<name>/` (see `experiment.run`); the
      table goes to `workdir/results.md` and `workdir/results.csv`, rewritten
      after each task.
    config_for: the fine-tuning config of a benchmark name.
    names: run only these benchmarks; None runs all found.

  Returns:
    The table rows.
  """
  found = [n for n in data_lib.list_tasks(directory) if n in BENCHMARKS]
  unknown = sorted(set(data_lib.list_tasks(directory)) - set(BENCHMARKS))
  if unknown:
    logging.warning('Skipping tasks with no known type: %s.', unknown)
  if names:
    missing = sorted(set(names) - set(found))
    if missing:
      raise ValueError(f'Not found in {directory}: {missing}; found {found}.')
    found = [n for n in found if n in names]
  if not found:
    raise ValueError(f'No known benchmark in {directory} (known: '
                     f'{sorted(BENCHMARKS)}).')
  rows = []
  for name in found:
    config = config_for(name)
    config.data.directory = directory
    summary = experiment.run(config, os.path.join(workdir, name))
    benchmark = BENCHMARKS[name]
    rows.append(dict(summary, paper_pretrained=benchmark.paper_pretrained,
                     paper_scratch=benchmark.paper_scratch))
    tables.write_csv(os.path.join(workdir, 'results.csv'), rows, _COLUMNS)
    tables.write_text(os.path.join(workdir, 'results.md'),
                      '# ProteinBERT benchmarks\n\nScores over all lengths; '
                      'the paper\'s are on test splits.\n\n'
                      + tables.markdown(rows, _COLUMNS))
  return rows
