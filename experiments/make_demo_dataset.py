r"""Builds the demo pretraining dataset from real Swiss-Prot proteins and GO.

  python -m experiments.make_demo_dataset \
      --corpus_dir=../shared/swissprot_go_2014

Draws `--num_proteins` proteins (seeded, uniformly) from the corpus'
`train.fasta.gz`, writes them and their rows of `train.annotations.tsv.gz` to
`--work_dir`, and runs our builder's FASTA route on them with the corpus'
`go.obo`: real sequences, real GO terms (propagated to their `is_a`
ancestors, those carried by at least `--min_annotation_count` of the drawn
proteins), real names and namespaces. Writes
proteinbert/data/demo/demo_dataset.h5 by default.
"""

import os
import tempfile

from absl import app
from absl import flags
import numpy as np

from proteinbert.data import annotation_table
from proteinbert.data import build
from proteinbert.data import dataset
from proteinbert.data import fasta_reader
from proteinbert.data import sources
from proteinbert.data import text_files
from proteinbert.data.builder import summary

_CORPUS_DIR = flags.DEFINE_string(
    'corpus_dir', None, 'Directory with train.fasta.gz, '
    'train.annotations.tsv.gz and go.obo (the shared Swiss-Prot + GO corpus).',
    required=True)
_OUTPUT = flags.DEFINE_string('output', dataset.demo_dataset_path(),
                              'Dataset file to write.')
_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'Where the drawn FASTA and table go; default: a '
    'temporary directory.')
_NUM_PROTEINS = flags.DEFINE_integer('num_proteins', 4000,
                                     'Proteins to draw.')
_MIN_ANNOTATION_COUNT = flags.DEFINE_integer(
    'min_annotation_count', 100, 'Keep GO terms carried by at least this many '
    'of the drawn proteins.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the draw and the test set.')


def draw_corpus(corpus_dir: str, work_dir: str, num_proteins: int,
                seed: int) -> tuple[str, str]:
  """Writes a seeded uniform draw of the corpus; returns (FASTA, TSV) paths."""
  fasta = os.path.join(corpus_dir, 'train.fasta.gz')
  total = sum(1 for _ in fasta_reader.FastaReader(fasta))
  if not 0 < num_proteins <= total:
    raise ValueError(f'num_proteins must be in [1, {total}], got '
                     f'{num_proteins}.')
  chosen = set(np.random.default_rng(seed).choice(
      total, num_proteins, replace=False).tolist())
  drawn_fasta = os.path.join(work_dir, 'demo.fasta')
  accessions = set()
  with open(drawn_fasta, 'w') as out:
    for i, record in enumerate(fasta_reader.FastaReader(fasta)):
      if i in chosen:
        accessions.add(sources.header_ids(record)[0])
        out.write(f'>{record.id} {record.description}'.rstrip() + '\n')
        out.write(record.sequence + '\n')
  table = os.path.join(corpus_dir, 'train.annotations.tsv.gz')
  drawn_table = os.path.join(work_dir, 'demo.annotations.tsv')
  lines = text_files.read_lines(table)
  header = next(lines, b'').decode()
  if header != annotation_table.TSV_HEADER:
    raise ValueError(f'{table}:1: expected the header '
                     f'{annotation_table.TSV_HEADER!r}.')
  with open(drawn_table, 'w') as out:
    out.write(header + '\n')
    out.writelines(line.decode() + '\n' for line in lines
                   if line.partition(b'\t')[0].decode() in accessions)
  return drawn_fasta, drawn_table


def make_demo_dataset(corpus_dir: str, output: str, work_dir: str,
                      num_proteins: int, min_annotation_count: int,
                      seed: int) -> summary.BuildSummary:
  """Draws the demo proteins to `work_dir` and builds `output` from them."""
  fasta, table = draw_corpus(corpus_dir, work_dir, num_proteins, seed)
  return build.build_dataset(
      None, os.path.join(corpus_dir, 'go.obo'), output, fasta=fasta,
      annotations=table, min_annotation_count=min_annotation_count,
      test_fraction=0.05, seed=seed, overwrite=True, num_workers=0)


def main(argv):
  del argv
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix='demo_corpus_')
  os.makedirs(work_dir, exist_ok=True)
  make_demo_dataset(_CORPUS_DIR.value, _OUTPUT.value, work_dir,
                    _NUM_PROTEINS.value, _MIN_ANNOTATION_COUNT.value,
                    _SEED.value)


if __name__ == '__main__':
  app.run(main)
