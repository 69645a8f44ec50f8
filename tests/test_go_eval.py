"""Tests for proteinbert/go_eval.py: hand-computed CAFA measures."""

import math

import numpy as np
import pytest

from proteinbert import go_eval
from proteinbert.data import ontology as ontology_lib

sklearn_metrics = pytest.importorskip('sklearn.metrics')

MF, BP, CC = go_eval.NAMESPACES

# A tiny GO. Molecular function: root <- a, b; c is_a a and b; d part_of a.
# Biological process: root <- x <- y, and y part_of a, an edge across
# namespaces that scoring ignores.
TERMS = [
    ontology_lib.Term('GO:0003674', 'mf', MF),
    ontology_lib.Term('GO:0000001', 'a', MF, parents=('GO:0003674',)),
    ontology_lib.Term('GO:0000002', 'b', MF, parents=('GO:0003674',)),
    ontology_lib.Term('GO:0000003', 'c', MF,
                      parents=('GO:0000001', 'GO:0000002')),
    ontology_lib.Term('GO:0000004', 'd', MF, part_of=('GO:0000001',)),
    ontology_lib.Term('GO:0008150', 'bp', BP),
    ontology_lib.Term('GO:0000010', 'x', BP, parents=('GO:0008150',)),
    ontology_lib.Term('GO:0000011', 'y', BP, parents=('GO:0000010',),
                      part_of=('GO:0000001',)),
    ontology_lib.Term('GO:0005575', 'cc', CC),
]
ROOT, A, B, C, D, BP_ROOT, X, Y, CC_ROOT = range(len(TERMS))

# Benchmark proteins 0-2 (molecular function) and 3 (biological process);
# protein 4 has predictions but no truth, protein 5 only a root.
TRUTH = [(0, C), (1, D), (2, B), (3, Y), (5, ROOT)]
PREDICTIONS = [(0, A, 0.8), (0, C, 0.4), (0, D, 0.1), (1, D, 0.5), (1, B, 0.7),
               (3, Y, 0.9), (4, A, 1.0)]
# Training: root 5, a 4, b 3, c 1, d 1 of the molecular-function proteins.
TRAINING = [(0, C), (1, A), (2, D), (3, B), (4, A), (4, B), (5, X)]
IA = {A: math.log2(5 / 4), B: math.log2(5 / 3), C: 1.0, D: 2.0}


@pytest.fixture(scope='module')
def graph():
  return go_eval.GoGraph(ontology_lib.Ontology(TERMS))


def _pairs(rows):
  return tuple(np.array(column, np.int64) for column in zip(*rows))


def _predictions(rows=PREDICTIONS):
  proteins, terms, scores = zip(*rows)
  return go_eval.Predictions(np.array(proteins), np.array(terms),
                             np.array(scores, np.float32))


def test_graph_edges_and_roots(graph):
  assert set(map(tuple, graph.edges.tolist())) == {
      (A, ROOT), (B, ROOT), (C, A), (C, B), (D, A), (X, BP_ROOT), (Y, X)}
  position = {tuple(e): i for i, e in enumerate(graph.edges.tolist())}
  assert position[(C, A)] < position[(A, ROOT)]  # Descendants first.
  assert position[(Y, X)] < position[(X, BP_ROOT)]
  assert np.flatnonzero(graph.roots).tolist() == [ROOT, BP_ROOT, CC_ROOT]


def test_truth_propagates_over_is_a_and_part_of(graph):
  proteins, terms = go_eval.propagate_annotations(graph, *_pairs(TRUTH))
  closed = {}
  for p, t in zip(proteins.tolist(), terms.tolist()):
    closed.setdefault(p, []).append(t)
  assert closed == {0: [ROOT, A, B, C], 1: [ROOT, A, D], 2: [ROOT, B],
                    3: [BP_ROOT, X, Y], 5: [ROOT]}


def test_predictions_propagate_by_max(graph):
  scores, terms = go_eval.score_matrix(graph, MF, np.array([0, 1, 2]),
                                       _predictions())
  assert terms.tolist() == [ROOT, A, B, C, D]
  inf = -np.inf
  np.testing.assert_array_equal(scores, np.array([
      [0.8, 0.7, inf],
      [0.8, 0.5, inf],  # a: its own 0.8; from d's 0.5 (part_of).
      [0.4, 0.7, inf],  # b: from c's 0.4.
      [0.4, inf, inf],
      [0.1, 0.5, inf]], np.float32))


def test_information_accretion(graph):
  proteins, terms = go_eval.propagate_annotations(graph, *_pairs(TRAINING))
  ia = go_eval.information_accretion(graph, proteins, terms)
  expected = np.zeros(len(TERMS))
  for term, value in IA.items():
    expected[term] = value
  expected[Y] = 0  # No training protein has y.
  expected[X] = 0  # The only biological-process protein has x: P = 1.
  np.testing.assert_allclose(ia, expected, rtol=1e-12)


def test_measures_by_hand(graph):
  ia = np.zeros(len(TERMS))
  for term, value in IA.items():
    ia[term] = value
  results = go_eval.evaluate(graph, *_pairs(TRUTH), _predictions(), ia)
  assert set(results) == {MF, BP}
  mf = results[MF]
  # Truth {a, b, c}, {a, d}, {b}; scores a .8 b .4 c .4 d .1 | a .5 b .7 d .5
  # | none. At t in (0.10, 0.40] protein 0 is exact, protein 1 has b wrong
  # (precision 2/3) and protein 2 nothing: p = (1 + 2/3) / 2, r = 2/3.
  assert (mf.proteins, mf.covered) == (3, 2)
  assert mf.fmax == pytest.approx(20 / 27, rel=1e-12)
  assert mf.fmax_threshold == pytest.approx(0.11)  # d's 0.1 counts at 0.10.
  assert mf.fmax_precision == pytest.approx(5 / 6, rel=1e-12)
  assert mf.fmax_recall == pytest.approx(2 / 3, rel=1e-12)
  assert mf.coverage == pytest.approx(2 / 3, rel=1e-12)
  # At the same thresholds ru = IA(b) / 3 (protein 2 misses b) and mi =
  # IA(b) / 3 (protein 1 predicts b).
  assert mf.smin == pytest.approx(math.sqrt(2) * IA[B] / 3, rel=1e-12)
  assert mf.smin_threshold == pytest.approx(0.11)
  bp = results[BP]
  assert (bp.proteins, bp.fmax, bp.fmax_threshold, bp.coverage) == (1, 1, 0, 1)


def test_a_protein_without_predictions_lowers_recall_only(graph):
  truth = _pairs([(0, A), (1, A)])
  results = go_eval.evaluate(graph, *truth, _predictions([(0, A, 0.5)]))
  mf = results[MF]
  assert (mf.fmax_precision, mf.fmax_recall, mf.coverage) == (1, 0.5, 0.5)
  assert mf.fmax == pytest.approx(2 / 3, rel=1e-12)
  assert mf.fmax_threshold == 0
  assert math.isnan(mf.smin)  # No IA.


def test_threshold_is_inclusive_in_float32(graph):
  # 0.29 * 100 is 28.999999999999996 in float64, yet a score of 0.29 counts
  # at t = 0.29: there both proteins are exact, below it protein 1's a at
  # 0.28 is wrong, above it nothing is predicted.
  mf = go_eval.evaluate(graph, *_pairs([(0, A), (1, B)]), _predictions(
      [(0, A, 0.29), (1, B, 0.29), (1, A, 0.28)]))[MF]
  assert mf.fmax == 1 and mf.fmax_threshold == pytest.approx(0.29)


def test_obo_part_of_edges(tmp_path):
  path = tmp_path / 'go.obo'
  path.write_text(
      'format-version: 1.2\n\n'
      '[Term]\nid: GO:0000001\nnamespace: molecular_function\n\n'
      '[Term]\nid: GO:0000002\nnamespace: molecular_function\n'
      'is_a: GO:0000001\n\n'
      '[Term]\nid: GO:0000003\nnamespace: molecular_function\n'
      'relationship: part_of GO:0000002 ! two\n'
      'relationship: regulates GO:0000001\n\n'
      '[Typedef]\nid: part_of\n')
  ontology = ontology_lib.Ontology.from_obo(str(path))
  assert ontology.terms[2].part_of == ('GO:0000002',)
  assert ontology.ancestors(2) == {2}  # The Ontology follows is_a only.
  graph = go_eval.GoGraph(ontology)
  assert graph.edges.tolist() == [[2, 1], [1, 0]]  # No regulates edge.


def test_aupr_against_scikit_learn(graph):
  results = go_eval.evaluate(graph, *_pairs(TRUTH), _predictions())
  # Terms a, b, c, d by benchmark proteins 0, 1, 2; no score counts as 0.
  labels = np.array([[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 1, 0]])
  scores = np.array([[.8, .5, 0], [.4, .7, 0], [.4, 0, 0], [.1, .5, 0]],
                    np.float32)
  mf = results[MF]
  assert (mf.terms, mf.terms_with_positives) == (4, 4)
  assert mf.micro_aupr == pytest.approx(sklearn_metrics.average_precision_score(
      labels.ravel(), scores.ravel()), rel=1e-12)
  assert mf.macro_aupr == pytest.approx(np.mean([
      sklearn_metrics.average_precision_score(l, s)
      for l, s in zip(labels, scores)]), rel=1e-12)


def test_random_aupr_against_scikit_learn(graph):
  rng = np.random.default_rng(0)
  truth = [(p, t) for p in range(40) for t in (A, B, C, D) if rng.random() < .3]
  truth += [(p, A) for p in range(40)]  # Every protein is a benchmark one.
  predictions = [(p, t, round(rng.random(), 2)) for p in range(40)
                 for t in (A, B, C, D) if rng.random() < .6]
  mf = go_eval.evaluate(graph, *_pairs(truth), _predictions(predictions))[MF]
  labels = np.zeros((4, 40), bool)
  proteins, terms = go_eval.propagate_annotations(graph, *_pairs(truth))
  for p, t in zip(proteins, terms):
    if t != ROOT:
      labels[t - A, p] = True
  scores, rows = go_eval.score_matrix(graph, MF, np.arange(40),
                                      _predictions(predictions))
  scores = np.maximum(scores[rows != ROOT], 0)
  assert mf.micro_aupr == pytest.approx(sklearn_metrics.average_precision_score(
      labels.ravel(), scores.ravel()), rel=1e-12)
  assert mf.macro_aupr == pytest.approx(np.mean([
      sklearn_metrics.average_precision_score(l, s)
      for l, s in zip(labels, scores) if l.any()]), rel=1e-12)


def test_background_scores_every_protein(graph):
  background = np.full(len(TERMS), -np.inf, np.float32)
  background[[ROOT, A, B]] = [1.0, 0.75, 0.5]
  empty = np.zeros(0, np.int64)
  predictions = go_eval.Predictions(empty, empty, np.zeros(0, np.float32),
                                    background)
  scores, terms = go_eval.score_matrix(graph, MF, np.array([0, 1]),
                                       predictions, [C])
  assert terms.tolist() == [ROOT, A, B, C]
  np.testing.assert_array_equal(scores, np.array(
      [[1, 1], [.75, .75], [.5, .5], [-np.inf, -np.inf]], np.float32))


def test_part_of_across_namespaces_is_ignored_and_cycles_fail():
  terms = TERMS + [ontology_lib.Term('GO:0000012', 'z', MF,
                                     parents=('GO:0000004',),
                                     part_of=('GO:0000012',))]
  with pytest.raises(ontology_lib.OboError, match='cycle'):
    go_eval.GoGraph(ontology_lib.Ontology(terms))
  dangling = TERMS + [ontology_lib.Term('GO:0000013', 'w', MF,
                                        part_of=('GO:0099999',))]
  with pytest.raises(ontology_lib.OboError, match='GO:0099999'):
    go_eval.GoGraph(ontology_lib.Ontology(dangling))
