"""Tests for proteinbert/go_benchmark.py: inputs, baselines, the whole run.

The files hold the hand-computed case of tests/test_go_eval.py (same
ontology, truth, predictions and training proteins), so the whole run must
reproduce its figures.
"""

import math
import shutil

import numpy as np
import pytest

from proteinbert import go_benchmark
from proteinbert import go_eval
from proteinbert.data import build
from proteinbert.data import ontology as ontology_lib
from tests import test_annotation_table
from tests import test_go_eval

MF, BP, CC = go_eval.NAMESPACES

OBO = """format-version: 1.2
data-version: tiny

[Term]
id: GO:0003674
namespace: molecular_function

[Term]
id: GO:0000001
namespace: molecular_function
alt_id: GO:0000091
is_a: GO:0003674

[Term]
id: GO:0000002
namespace: molecular_function
is_a: GO:0003674

[Term]
id: GO:0000003
namespace: molecular_function
is_a: GO:0000001
is_a: GO:0000002

[Term]
id: GO:0000004
namespace: molecular_function
relationship: part_of GO:0000001

[Term]
id: GO:0008150
namespace: biological_process

[Term]
id: GO:0000010
namespace: biological_process
is_a: GO:0008150

[Term]
id: GO:0000011
namespace: biological_process
is_a: GO:0000010
relationship: part_of GO:0000001

[Term]
id: GO:0005575
namespace: cellular_component

[Term]
id: GO:0000099
namespace: molecular_function
is_obsolete: true
replaced_by: GO:0000002

[Term]
id: GO:0000098
namespace: molecular_function
is_obsolete: true

[Typedef]
id: part_of
"""

# test_go_eval's proteins 0-5 as Q0-Q5, training proteins 0-5 as T0-T5.
TRUTH_TSV = """accession\tgo_ids
Q0\tGO:0000003
Q1\tGO:0000004
Q2\tGO:0000002
Q3\tGO:0000011
Q5\tGO:0003674
"""
TRAIN_TSV = """accession\tgo_ids
T0\tGO:0000003
T1\tGO:0000001
T2\tGO:0000004
T3\tGO:0000002
T4\tGO:0000001,GO:0000002
T5\tGO:0000010
Q0\tGO:0000003
"""
# a by its alternative ID, b by an obsolete ID it replaces; two IDs that do
# not resolve; Q4 is no benchmark protein.
PREDICTIONS_TSV = """protein\tgo_id\tscore
Q0\tGO:0000091\t0.8
Q0\tGO:0000003\t0.4
Q0\tGO:0000004\t0.1
Q1\tGO:0000004\t0.5
Q1\tGO:0000099\t0.7
Q3\tGO:0000011\t0.9
Q4\tGO:0000001\t1
Q3\tGO:0000098\t0.5
Q3\tGO:0009999\t0.5
"""
CAFA = ('AUTHOR team\nMODEL 1\nKEYWORDS homology.\n' + '\n'.join(
    ' '.join(line.split('\t')) for line in PREDICTIONS_TSV.splitlines()[1:])
        + '\nEND\n')


def write_inputs(directory):
  """Writes the case's files into `directory`; returns their paths."""
  texts = dict(obo=OBO, truth=TRUTH_TSV, train=TRAIN_TSV,
               predictions=PREDICTIONS_TSV, cafa=CAFA)
  paths = {}
  for name, text in texts.items():
    paths[name] = str(directory / name)
    with open(paths[name], 'w') as f:
      f.write(text)
  return paths


def test_read_predictions_both_formats(tmp_path):
  paths = write_inputs(tmp_path)
  ontology = ontology_lib.Ontology.from_obo(paths['obo'])
  index = {f'Q{i}': i for i in (0, 1, 2, 3, 5)}
  read = {form: go_benchmark.read_predictions(paths[form], ontology, index)
          for form in ('predictions', 'cafa')}
  (tsv, tsv_counts), (cafa, cafa_counts) = read['predictions'], read['cafa']
  assert tsv_counts == dict(
      format='tsv', pairs=9, other_proteins=1, go_ids=dict(
          primary=4, alt_id=1, replaced=1, obsolete=1, unknown=1))
  assert cafa_counts == dict(tsv_counts, format='cafa')
  for a, b in zip(tsv, cafa):
    np.testing.assert_array_equal(a, b)
  rows = set(zip(*(a.tolist() for a in tsv[:3])))
  expected = {(p, t, np.float32(s).item())
              for p, t, s in test_go_eval.PREDICTIONS if p != 4}
  assert rows == expected


@pytest.mark.parametrize('line, message', [
    ('Q0\tGO:0000001', 'expected "protein GO:ID score"'),
    ('Q0\t0.5\tGO:0000001', 'expected "protein GO:ID score"'),
    ('Q0\tGO:0000001\t1.5', 'not a number in'),
    ('Q0\tGO:0000001\tnan', 'not a number in'),
    ('Q0\tGO:0000001\thigh', 'not a number in'),
])
def test_bad_predictions(tmp_path, line, message):
  path = tmp_path / 'bad.tsv'
  path.write_text(f'{go_benchmark.PREDICTIONS_HEADER}\nQ0\tGO:0000001\t1\n'
                  f'{line}\n')
  ontology = ontology_lib.Ontology.from_obo(write_inputs(tmp_path)['obo'])
  with pytest.raises(ValueError, match=f'bad.tsv:3: .*{message}'):
    go_benchmark.read_predictions(str(path), ontology, {'Q0': 0})


def test_naive_baseline():
  t = test_go_eval
  graph = go_eval.GoGraph(ontology_lib.Ontology(t.TERMS))
  proteins, terms = go_eval.propagate_annotations(graph,
                                                  *t._pairs(t.TRAINING))
  naive = go_benchmark.naive_baseline(graph, proteins, terms)
  expected = np.full(len(t.TERMS), -np.inf, np.float32)
  # Five training proteins have molecular-function terms, one has x.
  expected[[t.ROOT, t.A, t.B, t.C, t.D, t.BP_ROOT, t.X]] = [
      1, 4 / 5, 3 / 5, 1 / 5, 1 / 5, 1, 1]
  np.testing.assert_array_equal(naive.background, expected)
  assert len(naive.proteins) == 0


def test_homology_baseline():
  t = test_go_eval
  graph = go_eval.GoGraph(ontology_lib.Ontology(t.TERMS))
  proteins, terms = go_eval.propagate_annotations(graph,
                                                  *t._pairs(t.TRAINING))
  hits = (np.array([0, 0, 1]), np.array([0, 3, 3]),
          np.array([0.9, 0.5, 0.95], np.float32))
  homology = go_benchmark.homology_baseline(hits, proteins, terms)
  best = {}
  for p, term, s in zip(*(a.tolist() for a in homology[:3])):
    best[p, term] = max(best.get((p, term), 0), s)
  assert best == pytest.approx({
      (0, t.ROOT): 0.9, (0, t.A): 0.9, (0, t.B): 0.9, (0, t.C): 0.9,
      (1, t.ROOT): 0.95, (1, t.B): 0.95})


def _check_model(report):
  """The model's figures are test_go_eval's hand-computed ones."""
  mf = report['methods']['model']['namespaces'][MF]
  assert mf['fmax'] == pytest.approx(20 / 27, rel=1e-12)
  assert mf['fmax_threshold'] == pytest.approx(0.11)
  assert mf['coverage'] == pytest.approx(2 / 3, rel=1e-12)
  assert mf['smin'] == pytest.approx(
      math.sqrt(2) * test_go_eval.IA[test_go_eval.B] / 3, rel=1e-12)
  assert report['methods']['model']['namespaces'][BP]['fmax'] == 1


def test_run_on_tables(tmp_path):
  paths = write_inputs(tmp_path)
  report = go_benchmark.run(paths['obo'], paths['truth'],
                            predictions=paths['cafa'],
                            train_annotations=paths['train'],
                            baselines=['naive'])
  _check_model(report)
  assert report['truth'] == dict(proteins=5, go_ids=dict(primary=5))
  # Q0 is a benchmark protein, so training leaves it out.
  assert report['training'] == dict(proteins=6, go_ids=dict(primary=7),
                                    benchmark_proteins_left_out=1)
  naive = report['methods']['naive']['namespaces']
  assert set(naive) == {MF, BP}
  assert naive[MF]['coverage'] == 1
  table = go_benchmark.table(report)
  assert table.splitlines()[0].split() == [
      'method', 'namespace', 'proteins', 'Fmax', 't', 'coverage', 'Smin', 't',
      'microAUPR', 'macroAUPR']
  assert f'model   {MF}  3         0.741' in table


def test_truth_from_gaf(tmp_path):
  paths = write_inputs(tmp_path)
  rows = [line.split('\t') for line in TRUTH_TSV.splitlines()[1:]]
  gaf = tmp_path / 'truth.gaf'
  gaf.write_text('!gaf-version: 2.2\n' + ''.join(
      test_annotation_table.gaf_row(protein, go_id) + '\n'
      for protein, go_id in rows) + test_annotation_table.gaf_row(
          'Q2', 'GO:0000001', qualifier='NOT|enables') + '\n')
  report = go_benchmark.run(paths['obo'], str(gaf),
                            predictions=paths['predictions'],
                            train_annotations=paths['train'], baselines=[])
  _check_model(report)


def _build_dataset(tmp_path, paths):
  """A dataset of the Q and T proteins; the Q proteins are its test set."""
  rng = np.random.default_rng(0)
  names = [f'Q{i}' for i in range(6)] + [f'T{i}' for i in range(6)]
  sequences = {n: ''.join(rng.choice(list('ACDEFGHIKLMNPQRSTVWY'), 120))
               for n in names}
  fasta = tmp_path / 'all.fasta'
  fasta.write_text(''.join(f'>sp|{n}|\n{s}\n' for n, s in sequences.items()))
  annotations = tmp_path / 'all.tsv'
  annotations.write_text(TRUTH_TSV + TRAIN_TSV.split('\n', 1)[1].replace(
      'Q0\tGO:0000003\n', ''))
  test_ids = tmp_path / 'test_ids.txt'
  test_ids.write_text(''.join(f'Q{i}\n' for i in range(6)))
  output = str(tmp_path / 'dataset.h5')
  build.build_dataset(None, paths['obo'], output, fasta=str(fasta),
                      annotations=str(annotations), min_annotation_count=1,
                      test_ids=str(test_ids), num_workers=0,
                      show_progress=False)
  return output, sequences


def test_run_on_a_dataset(tmp_path):
  paths = write_inputs(tmp_path)
  dataset, _ = _build_dataset(tmp_path, paths)
  from_dataset = go_benchmark.run(
      paths['obo'], dataset, predictions=paths['predictions'],
      train_annotations=dataset, baselines=['naive'])
  _check_model(from_dataset)
  assert from_dataset['inputs']['split'] == dataset
  assert from_dataset['training']['proteins'] == 6
  # The truth table cut to the dataset's test proteins: the same benchmark.
  truth_table = tmp_path / 'truth_and_more.tsv'
  truth_table.write_text(TRUTH_TSV + 'T0\tGO:0000002\n')
  split = go_benchmark.run(paths['obo'], str(truth_table),
                           predictions=paths['predictions'],
                           train_annotations=paths['train'], split=dataset,
                           baselines=['naive'])
  assert split['truth']['proteins'] == from_dataset['truth']['proteins'] == 5
  assert split['methods'] == from_dataset['methods']


def test_homology_skipped_without_the_aligner(tmp_path):
  paths = write_inputs(tmp_path)
  dataset, _ = _build_dataset(tmp_path, paths)
  report = go_benchmark.run(paths['obo'], dataset, train_annotations=dataset,
                            diamond=str(tmp_path / 'no-diamond'))
  assert 'not installed' in report['methods']['homology']['skipped']
  assert 'naive' in report['methods']
  assert 'skipped: the aligner' in go_benchmark.table(report)


@pytest.mark.skipif(shutil.which('diamond') is None,
                    reason='DIAMOND is not installed (diamond-aligner).')
def test_homology_with_diamond(tmp_path):
  paths = write_inputs(tmp_path)
  dataset, sequences = _build_dataset(tmp_path, paths)
  hits = go_benchmark.align({'Q0': sequences['T0']},
                            {'T0': sequences['T0'], 'T1': sequences['T1']})
  assert hits == [('Q0', 'T0', 1.0)]
  # Q0 is a copy of T0, so its homology predictions are T0's terms at 1.
  copy = tmp_path / 'queries.fasta'
  copy.write_text(f'>Q0\n{sequences["T0"]}\n>Q1\n{sequences["Q1"]}\n')
  report = go_benchmark.run(paths['obo'], paths['truth'],
                            train_annotations=dataset, split=dataset,
                            query_fasta=str(copy), baselines=['homology'])
  homology = report['methods']['homology']
  assert homology['input'] == dict(queries=2, targets=6, hits=1,
                                   queries_with_hits=1)
  mf = homology['namespaces'][MF]
  # Q0's truth {a, b, c} is T0's; Q1 and Q2 get nothing.
  assert (mf['fmax'], mf['fmax_precision'], mf['coverage']) == (
      pytest.approx(0.5), 1, pytest.approx(1 / 3))
