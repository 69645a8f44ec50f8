r"""Builds the demo pretraining dataset from the benchmark CSVs.

  python -m experiments.make_demo_dataset \
      --benchmarks_dir=/work/shared/benchmarks

Samples real sequences (50-1500 residues, seeded) from several benchmark
files, annotates them with a small synthetic ontology whose terms follow
from each protein's label and sequence (so an annotation loss can fall),
writes both as a UniRef90-format XML and an OBO file, and runs our builder on
them. Writes proteinbert/data/demo/demo_dataset.h5 and demo_go.obo; the XML
goes to --work_dir (not committed; it is regenerated exactly by this command).
"""

import csv
import os
import shutil
import tempfile

from absl import app
from absl import flags
import numpy as np

from proteinbert.data import build
from proteinbert.data import dataset
from proteinbert.data import ontology
from proteinbert.data import synthetic
from proteinbert.data import uniref

_BENCHMARKS_DIR = flags.DEFINE_string(
    'benchmarks_dir', None, 'Directory of the benchmark CSVs (seq,label).',
    required=True)
_OUTPUT = flags.DEFINE_string('output', dataset.demo_dataset_path(),
                              'Dataset file to write.')
_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'Where the generated XML and OBO go; default: a '
    'temporary directory.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the sampling and test set.')

MIN_LENGTH, MAX_LENGTH = 50, 1500
# (file, proteins to draw). Long proteins come from the NP/SP, disorder and
# remote-homology sets, so the 512- and 1024-token episodes get proteins.
SOURCES = (
    ('signalP_binary.train.csv', 600),
    ('ProFET_NP_SP_Cleaved.train.csv', 800),
    ('scop.train.csv', 700),
    ('remote_homology.train.csv', 500),
    ('stability.valid.csv', 400),
    ('fluorescence.valid.csv', 300),
    ('disorder_secondary_structure.valid.csv', 700),
)
# Frequent remote-homology fold labels that get a term of their own.
FOLDS = ('36', '73', '153', '22', '84', '77', '176', '47')
SCOP_CLASSES = {
    'a': ('all alpha', ('alpha',)),
    'b': ('all beta', ('beta',)),
    'c': ('alpha/beta', ('alpha', 'beta')),
    'd': ('alpha+beta', ('alpha', 'beta')),
    'e': ('multi-domain', ()),
    'f': ('membrane and cell surface', ()),
    'g': ('small protein', ()),
}


def demo_terms():
  """The synthetic ontology: name -> (GO-style ID, parent names).

  IDs GO:99xxxxx are made up and not GO terms; names start with 'demo:'.
  """
  tree = {
      'feature': ('sequence feature', ()),
      'signal': ('N-terminal signal peptide', ('feature',)),
      'secreted': ('secreted protein (NP/SP set)', ('feature',)),
      'neuropeptide': ('neuropeptide precursor', ('secreted',)),
      'disordered': ('disordered region (>= 10% of residues)', ('feature',)),
      'long': ('long protein (> 500 residues)', ('feature',)),
      'structure': ('structural class', ()),
      'alpha': ('contains alpha structure', ('structure',)),
      'beta': ('contains beta structure', ('structure',)),
      'fold': ('remote-homology fold', ('structure',)),
      'property': ('measured property', ()),
      'stable': ('high stability (top quartile)', ('property',)),
      'unstable': ('low stability (bottom quartile)', ('property',)),
      'fluorescent': ('GFP-like fluorescent protein', ('property',)),
      'bright': ('bright fluorescence (top half)', ('fluorescent',)),
      'composition': ('composition', ()),
      'cys': ('cysteine-rich (>= 4% C)', ('composition',)),
      'charged': ('charged (>= 28% D, E, K, R)', ('composition',)),
      'hydrophobic': ('hydrophobic (>= 45% A, F, I, L, M, V, W)',
                      ('composition',)),
      'pro_gly': ('proline/glycine-rich (>= 15% P, G)', ('composition',)),
  }
  for letter, (name, parents) in SCOP_CLASSES.items():
    tree[f'scop_{letter}'] = (f'SCOP class {letter}: {name}',
                              parents or ('structure',))
  for fold in FOLDS:
    tree[f'fold_{fold}'] = (f'fold {fold}', ('fold',))
  ids = {key: f'GO:99{i:05d}' for i, key in enumerate(tree)}
  return [ontology.Term(id=ids[key], name=f'demo: {name}',
                        namespace='demo', parents=tuple(ids[p] for p in ps))
          for key, (name, ps) in tree.items()], ids


def _fraction(seq: str, letters: str) -> float:
  return sum(seq.count(a) for a in letters) / len(seq)


def _label_terms(source: str, label: str, quantiles) -> list:
  """Term keys that a protein's benchmark label implies.

  Args:
    source: the benchmark file.
    label: the protein's label there.
    quantiles: the 25/50/75% quantiles of a numeric label, else None.
  """
  if source.startswith('signalP'):
    return ['signal'] if label == '1' else []
  if source.startswith('ProFET'):
    return ['secreted'] + (['neuropeptide'] if label == '1' else [])
  if source.startswith('scop'):
    return [f'scop_{label}']
  if source.startswith('remote'):
    return [f'fold_{label}'] if label in FOLDS else []
  if source.startswith('stability'):
    return (['stable'] if float(label) >= quantiles[2] else
            ['unstable'] if float(label) <= quantiles[0] else [])
  if source.startswith('fluorescence'):
    return ['fluorescent'] + (['bright'] if float(label) >= quantiles[1]
                              else [])
  # Disorder labels are per residue: 1 observed (ordered), 0 disordered.
  return ['disordered'] if label.count('0') >= 0.1 * len(label) else []


def _sequence_terms(seq: str) -> list:
  rules = (('cys', 'C', 0.04), ('charged', 'DEKR', 0.28),
           ('hydrophobic', 'AFILMVW', 0.45), ('pro_gly', 'PG', 0.15))
  return [key for key, letters, at_least in rules
          if _fraction(seq, letters) >= at_least] + (
              ['long'] if len(seq) > 500 else [])


def demo_entries(benchmarks_dir: str, ids: dict, seed: int):
  """Sampled proteins as `UniRefEntry`s, annotated with demo term IDs."""
  rng = np.random.default_rng(seed)
  entries, seen = [], set()
  for source, count in SOURCES:
    with open(os.path.join(benchmarks_dir, source)) as f:
      rows = [r for r in csv.DictReader(f)
              if MIN_LENGTH <= len(r['seq']) <= MAX_LENGTH and
              r['seq'] not in seen]
    quantiles = None
    if source.startswith(('stability', 'fluorescence')):
      quantiles = np.quantile([float(r['label']) for r in rows],
                              [0.25, 0.5, 0.75])
    lengths = np.array([len(r['seq']) for r in rows], np.float64)
    # Favour long proteins, which are rare in every set.
    weights = lengths / lengths.sum()
    for i in rng.choice(len(rows), min(count, len(rows)), replace=False,
                        p=weights):
      seq, label = rows[i]['seq'], rows[i]['label']
      if seq in seen:
        continue
      seen.add(seq)
      keys = _label_terms(source, label, quantiles) + _sequence_terms(seq)
      tag = source.split('_')[0].split('.')[0][:6].upper()
      accession = f'DEMO{len(entries):05d}'
      entries.append(uniref.UniRefEntry(
          entry_id=f'UniRef90_{accession}', protein_id=f'{accession}_{tag}',
          taxonomy_id=32630,  # NCBI's 'synthetic construct'.
          sequence=seq, go_ids=tuple(ids[k] for k in keys), line=0))
  order = rng.permutation(len(entries))
  return [entries[i] for i in order]


def make_demo_dataset(benchmarks_dir: str, output: str, work_dir: str,
                      seed: int) -> build.BuildSummary:
  """Writes the demo release to `work_dir` and builds `output` from it."""
  terms, ids = demo_terms()
  obo = os.path.join(work_dir, 'demo_go.obo')
  xml = os.path.join(work_dir, 'demo_uniref90.xml.gz')
  synthetic.write_obo(obo, terms, data_version='proteinbert-demo')
  synthetic.write_uniref_xml(xml, demo_entries(benchmarks_dir, ids, seed),
                             members=0)
  summary = build.build_dataset(xml, obo, output, min_annotation_count=10,
                                test_fraction=0.05, seed=seed,
                                overwrite=True, num_workers=0)
  shutil.copy(obo, os.path.join(os.path.dirname(output), 'demo_go.obo'))
  return summary


def main(argv):
  del argv
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix='demo_release_')
  os.makedirs(work_dir, exist_ok=True)
  make_demo_dataset(_BENCHMARKS_DIR.value, _OUTPUT.value, work_dir,
                    _SEED.value)


if __name__ == '__main__':
  app.run(main)
