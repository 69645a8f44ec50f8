r"""Scores GO term predictions CAFA's way, beside naive and homology baselines.

  python -m experiments.evaluate_go --predictions=preds.tsv \
      --truth=truth.tsv --go_obo=go.obo --train_annotations=train.tsv \
      --train_fasta=train.fasta --query_fasta=benchmark.fasta \
      --output=report.json

  python -m experiments.evaluate_go --truth=dataset.h5 \
      --train_annotations=dataset.h5 --go_obo=go.obo   # baselines only

Prints a table (a row per method and namespace: Fmax, its threshold and
coverage, Smin and its threshold, micro and macro AUPR) and writes the full
report as JSON. Inputs, measures and baselines are described in
`proteinbert/go_benchmark.py` and `proteinbert/go_eval.py`.
"""

import json

from absl import app
from absl import flags
from absl import logging

from proteinbert import go_benchmark
from proteinbert import io_utils

_PREDICTIONS = flags.DEFINE_string(
    'predictions', None, "Predictions: TSV with the header 'protein<TAB>"
    "go_id<TAB>score', or a CAFA submission; unset scores baselines only.")
_TRUTH = flags.DEFINE_string(
    'truth', None, 'True annotations: a TSV (accession<TAB>go_ids) or GAF '
    'table, or a dataset .h5 (its test proteins).', required=True)
_GO_OBO = flags.DEFINE_string('go_obo', None, 'The GO (OBO).', required=True)
_TRAIN_ANNOTATIONS = flags.DEFINE_string(
    'train_annotations', None, 'Training annotations (table, or a dataset '
    '.h5: its non-test proteins) for information accretion (Smin) and the '
    'baselines.')
_SPLIT = flags.DEFINE_string(
    'split', None, 'A dataset .h5 whose test proteins are the benchmark and '
    'whose other proteins train (cuts the tables to them); default: the '
    '--truth or --train_annotations dataset, if either is one.')
_TRAIN_FASTA = flags.DEFINE_string(
    'train_fasta', None, 'Training sequences for the homology baseline '
    '(default: the split dataset\'s).')
_QUERY_FASTA = flags.DEFINE_string(
    'query_fasta', None, 'Benchmark sequences for the homology baseline '
    '(default: the split dataset\'s).')
_BASELINES = flags.DEFINE_list(
    'baselines', list(go_benchmark.BASELINES), 'Baselines to score (with '
    '--train_annotations).')
_DIAMOND = flags.DEFINE_string('diamond', 'diamond', 'The DIAMOND aligner.')
_THREADS = flags.DEFINE_integer('threads', 1, 'DIAMOND threads.')
_OUTPUT = flags.DEFINE_string('output', None, 'Report JSON to write.')


def main(argv):
  del argv
  report = go_benchmark.run(
      _GO_OBO.value, _TRUTH.value, predictions=_PREDICTIONS.value,
      train_annotations=_TRAIN_ANNOTATIONS.value, split=_SPLIT.value,
      train_fasta=_TRAIN_FASTA.value, query_fasta=_QUERY_FASTA.value,
      baselines=_BASELINES.value, diamond=_DIAMOND.value,
      threads=_THREADS.value)
  logging.info('Inputs: %s', report['inputs'])
  print(go_benchmark.table(report))
  if _OUTPUT.value:
    with io_utils.atomic_path(_OUTPUT.value) as path, open(path, 'w') as f:
      json.dump(report, f, indent=1)


if __name__ == '__main__':
  app.run(main)
