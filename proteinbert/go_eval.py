"""CAFA-style scoring of GO term predictions: propagation, IA, Fmax, Smin, AUPR.

The measures of CAFA (Radivojac et al. 2013, Jiang et al. 2016; Clark &
Radivojac 2013 for Smin), computed per GO namespace:

* Propagation. The graph is CAFA's: `is_a` and `part_of` edges, each within
  a namespace (`GoGraph`). Truth sets are closed under ancestors; a predicted
  score passes up to every ancestor, which keeps the highest score of any of
  its descendants (itself included). The namespace roots (terms without
  parents: GO:0003674, GO:0008150, GO:0005575) are then left out of scoring.
* Benchmark proteins of a namespace: those with at least one (non-root) truth
  term in it. Predictions for other proteins do not count.
* Thresholds t = 0.00, 0.01, ..., 1.00 (`THRESHOLDS`); a term is predicted
  at t when its score is >= t. Scores are compared in float32, so a score
  written as '0.29' counts at t = 0.29.
* Protein-centric Fmax: precision averaged over the proteins with at least
  one prediction at t, recall over all benchmark proteins (a protein without
  predictions adds 0); F = 2pr / (p + r); Fmax is the largest F (the lowest t
  on ties), reported with its t and coverage (the fraction of proteins with
  a prediction at t).
* Smin: with information accretion IA(term) = -log2 P(term | all its
  parents) from a training set, the remaining uncertainty ru (IA of true
  terms not predicted) and misinformation mi (IA of predicted terms not
  true), each averaged over all benchmark proteins; S = sqrt(ru^2 + mi^2);
  Smin is the smallest S (the lowest t on ties).
* Term-centric AUPR (average precision, as scikit-learn computes it) over the
  term set: the non-root terms of the namespace that, after propagation, are
  a true term or carry a score for some benchmark protein. A (protein, term)
  pair without a score counts as score 0. Micro: every (benchmark protein,
  term) pair of the set pooled into one ranking. Macro: the mean over the
  terms of the set with at least one positive of each term's AUPR over the
  benchmark proteins.

Scores of one namespace live in a dense float32 [terms, proteins] matrix over
the terms the namespace's truth and predictions reach (their ancestors
included), which is what lets the naive baseline score every term for every
protein.
"""

from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from proteinbert import metrics
from proteinbert.data import ontology as ontology_lib

NAMESPACES = ('molecular_function', 'biological_process', 'cellular_component')
# CAFA's threshold grid, in float32 like the scores (see the module doc).
THRESHOLDS = (np.arange(101) / 100).astype(np.float32)
# Cells of a score matrix counted at once, and annotation pairs closed at once
# (each has ~20 ancestors in GO): bounds on the memory these steps take.
_BLOCK_CELLS = 1 << 22
_BLOCK_PAIRS = 1 << 18


class GoGraph:
  """The GO as CAFA propagates it: `is_a` and `part_of` edges in a namespace.

  Term indices and IDs are those of the `Ontology` it is built from.

  Attributes:
    ontology: an `Ontology` over the same terms whose parents are the `is_a`
      and the same-namespace `part_of` targets, so its `closure` and
      `closure_pairs` follow both relations.
    namespaces: str [T] each term's namespace.
    roots: bool [T] current terms without parents (each namespace's root),
      which scoring leaves out.
    edges: int64 [E, 2] (child, parent) pairs, every child listed after all
      its descendants (the order in which scores pass upwards).
  """

  def __init__(self, ontology: ontology_lib.Ontology):
    """Adds the `part_of` edges to `ontology`'s `is_a` ones.

    Raises:
      ontology_lib.OboError: a `part_of` target that is not defined, or a
        cycle through `is_a` and `part_of` edges.
    """
    namespace = {t.id: t.namespace for t in ontology.terms}
    for term in ontology.terms:
      for target in term.part_of:
        if target not in namespace:
          raise ontology_lib.OboError(
              f'line {term.line}: {term.id} has "relationship: part_of '
              f'{target}", but {target} is not defined.')
    # CAFA scores each namespace on its own graph (go-basic.obo has no edge
    # across namespaces; fuller GO editions may).
    terms = [t._replace(parents=t.parents + tuple(
        p for p in t.part_of if namespace[p] == t.namespace))
             for t in ontology.terms]
    self.ontology = ontology_lib.Ontology(terms, header=ontology.header)
    self.namespaces = np.array([t.namespace for t in terms], dtype=str)
    self.roots = np.array([not t.parents and not t.is_obsolete for t in terms])
    everything = np.arange(len(terms))
    rows, _ = self.ontology.closure_pairs(everything, everything)
    # A term has more ancestors than any of its ancestors, so sorting by
    # ancestor count puts descendants first.
    depth = np.bincount(rows, minlength=len(terms))
    edges = np.array([(i, self.ontology.index[p]) for i, t in enumerate(terms)
                      for p in t.parents], dtype=np.int64).reshape(-1, 2)
    self.edges = edges[np.argsort(-depth[edges[:, 0]], kind='stable')]

  def __len__(self) -> int:
    return len(self.ontology)


class Predictions(NamedTuple):
  """Scored (protein, term) pairs, and scores every protein gets.

  Attributes:
    proteins: int64 [K] protein indices.
    terms: int64 [K] term indices.
    scores: float32 [K] in [0, 1].
    background: float32 [T] a score of each term for every protein (the naive
      baseline), -inf where none; None for no such scores. A pair's score
      and the background combine by max.
  """
  proteins: np.ndarray
  terms: np.ndarray
  scores: np.ndarray
  background: Optional[np.ndarray] = None


def propagate_annotations(graph: GoGraph, proteins: np.ndarray,
                          terms: np.ndarray):
  """Closes (protein, term) pairs under ancestors; repeats removed.

  Args:
    graph: the GO.
    proteins: int [K] protein indices.
    terms: int [K] term indices.

  Returns:
    (proteins, terms), int64 [K'] each, sorted by protein then term.
  """
  proteins = np.asarray(proteins, np.int64)
  terms = np.asarray(terms, np.int64)
  keys = [np.zeros(0, np.int64)]
  for start in range(0, len(terms), _BLOCK_PAIRS):
    block = slice(start, start + _BLOCK_PAIRS)
    rows, ancestors = graph.ontology.closure_pairs(proteins[block],
                                                   terms[block])
    keys.append(np.unique(rows * len(graph) + ancestors))
  keys = np.unique(np.concatenate(keys))
  return keys // len(graph), keys % len(graph)


def information_accretion(graph: GoGraph, proteins: np.ndarray,
                          terms: np.ndarray) -> np.ndarray:
  """IA(term) = -log2(N(term) / N(all parents of term)) from training pairs.

  N counts the training proteins annotated with a term (or with every parent
  of it). Roots get 0 (every annotated protein has them), and so do terms no
  training protein has, whose probability cannot be estimated (CAFA's
  evaluators likewise give terms missing from the IA table 0).

  Args:
    graph: the GO.
    proteins: int [K] training protein indices, closed under ancestors (see
      `propagate_annotations`).
    terms: int [K] their terms.

  Returns:
    float64 [T] IA in bits.
  """
  proteins = np.asarray(proteins, np.int64)
  terms = np.asarray(terms, np.int64)
  counts = np.bincount(terms, minlength=len(graph))
  order = np.argsort(terms, kind='stable')
  holders = np.split(proteins[order], np.cumsum(counts)[:-1])
  child, parent = graph.edges.T
  parent_counts = np.bincount(child, minlength=len(graph))
  with_all_parents = np.zeros(len(graph), np.int64)
  single = parent_counts == 1
  with_all_parents[child[single[child]]] = counts[parent[single[child]]]
  for term in np.flatnonzero((parent_counts > 1) & (counts > 0)):
    parents = sorted(parent[child == term], key=lambda p: counts[p])
    common = holders[parents[0]]
    for p in parents[1:]:
      common = np.intersect1d(common, holders[p], assume_unique=True)
    with_all_parents[term] = len(common)
  ia = np.zeros(len(graph))
  known = (counts > 0) & (parent_counts > 0)
  ia[known] = -np.log2(counts[known] / with_all_parents[known])
  return ia


class NamespaceScores(NamedTuple):
  """The measures of one namespace (see the module doc); NaN when undefined.

  Attributes:
    proteins: benchmark proteins.
    covered: benchmark proteins with at least one score (at t = 0).
    fmax: the largest F.
    fmax_threshold: its t.
    fmax_precision: the precision at that t.
    fmax_recall: the recall at that t.
    coverage: the fraction of benchmark proteins predicted at that t.
    smin: the smallest S (NaN without IA).
    smin_threshold: its t.
    terms: the AUPR term set's size.
    terms_with_positives: the terms of the set that the macro mean covers.
    micro_aupr: AUPR of all (protein, term) pairs pooled.
    macro_aupr: the mean per-term AUPR.
  """
  proteins: int
  covered: int
  fmax: float
  fmax_threshold: float
  fmax_precision: float
  fmax_recall: float
  coverage: float
  smin: float
  smin_threshold: float
  terms: int
  terms_with_positives: int
  micro_aupr: float
  macro_aupr: float


def evaluate(graph: GoGraph, truth_proteins: np.ndarray,
             truth_terms: np.ndarray, predictions: Predictions,
             ia: Optional[np.ndarray] = None) -> Dict[str, NamespaceScores]:
  """Scores predictions against truth in each namespace.

  Args:
    graph: the GO.
    truth_proteins: int [K] protein indices of the truth pairs.
    truth_terms: int [K] their terms (closed under ancestors here).
    predictions: the scores (propagated here).
    ia: float64 [T] information accretion; None leaves Smin NaN.

  Returns:
    Namespace -> its measures, for each of `NAMESPACES` with benchmark
    proteins.
  """
  truth_proteins, truth_terms = propagate_annotations(graph, truth_proteins,
                                                      truth_terms)
  scored = ~graph.roots[truth_terms]
  results = {}
  for namespace in NAMESPACES:
    in_namespace = scored & (graph.namespaces[truth_terms] == namespace)
    if in_namespace.any():
      results[namespace] = _evaluate_namespace(
          graph, namespace, truth_proteins[in_namespace],
          truth_terms[in_namespace], predictions, ia)
  return results


def _evaluate_namespace(graph, namespace, truth_proteins, truth_terms,
                        predictions, ia) -> NamespaceScores:
  """`evaluate` for one namespace; the truth pairs are closed and non-root."""
  benchmark, columns = np.unique(truth_proteins, return_inverse=True)
  scores, terms = score_matrix(graph, namespace, benchmark, predictions,
                               truth_terms)
  rows = np.searchsorted(terms, truth_terms)
  truth = np.zeros(scores.shape, bool)
  truth[rows, columns] = True
  kept = ~graph.roots[terms]
  scores, truth, terms = scores[kept], truth[kept], terms[kept]
  fmax = _fmax(*_protein_counts(scores, truth, np.ones(len(terms))))
  smin = (np.nan, np.nan) if ia is None else _smin(
      *_protein_counts(scores, truth, ia[terms]))
  ranked = np.maximum(scores, 0)  # An absent score ranks as 0.
  per_term = [metrics.average_precision(truth[i], ranked[i])
              for i in np.flatnonzero(truth.any(axis=1))]
  return NamespaceScores(
      proteins=len(benchmark),
      covered=int(np.isfinite(scores).any(axis=0).sum()),
      **fmax, smin=smin[0], smin_threshold=smin[1], terms=len(terms),
      terms_with_positives=len(per_term),
      micro_aupr=metrics.average_precision(truth, ranked),
      macro_aupr=float(np.mean(per_term)))


def score_matrix(graph: GoGraph, namespace: str, benchmark: np.ndarray,
                 predictions: Predictions, truth_terms: Sequence[int] = ()
                 ) -> Tuple[np.ndarray, np.ndarray]:
  """Scores of the benchmark proteins in one namespace, propagated.

  Args:
    graph: the GO.
    namespace: one of `NAMESPACES`.
    benchmark: int64 [P] sorted protein indices.
    predictions: the scores; pairs of other proteins or namespaces are left
      out.
    truth_terms: int64 terms that must have rows (the truth's).

  Returns:
    (scores, terms): float32 [R, P] scores (-inf: none), column j for
    protein benchmark[j], over the R terms (int64 [R], sorted) that
    `truth_terms` and the scores reach, their ancestors (roots too)
    included.
  """
  columns = np.full(max(benchmark.max(), predictions.proteins.max(
      initial=-1)) + 1, -1)
  columns[benchmark] = np.arange(len(benchmark))
  in_benchmark = columns[predictions.proteins]
  kept = (in_benchmark >= 0) & (graph.namespaces[predictions.terms] ==
                                namespace)
  reached = [np.asarray(truth_terms, np.int64), predictions.terms[kept]]
  background = predictions.background
  if background is not None:
    reached.append(np.flatnonzero(np.isfinite(background) & (
        graph.namespaces == namespace)))
  terms = graph.ontology.closure(np.concatenate(reached)).astype(np.int64)
  rows = np.full(len(graph), -1)
  rows[terms] = np.arange(len(terms))
  scores = np.full((len(terms), len(benchmark)), -np.inf, np.float32)
  if background is not None:
    scores[:] = background[terms, None]
  np.maximum.at(scores, (rows[predictions.terms[kept]], in_benchmark[kept]),
                predictions.scores[kept].astype(np.float32))
  child, parent = rows[graph.edges.T]
  for c, p in zip(*(a[child >= 0] for a in (child, parent))):
    np.maximum(scores[p], scores[c], out=scores[p])
  return scores, terms


def _protein_counts(scores, truth, weights):
  """Weighted counts per protein and threshold.

  Args:
    scores: float32 [R, P] (-inf: no score).
    truth: bool [R, P].
    weights: float64 [R] a weight per term (1 to count terms, IA for Smin).

  Returns:
    (true_positive, false_positive, false_negative): float64 [P, 101] each,
    the weight of true terms predicted, of other terms predicted and of true
    terms not predicted at each threshold.
  """
  num_proteins = scores.shape[1]
  # Bin b holds scores in [t_{b-1}, t_b); bin 0 holds no score.
  true_bins = np.zeros((len(THRESHOLDS) + 1) * num_proteins)
  false_bins = np.zeros_like(true_bins)
  column = np.arange(num_proteins)
  step = max(1, _BLOCK_CELLS // max(num_proteins, 1))
  for start in range(0, len(scores), step):
    block = slice(start, start + step)
    cells = np.searchsorted(THRESHOLDS, scores[block], side='right') * (
        num_proteins) + column
    weight = np.broadcast_to(weights[block, None], cells.shape)
    positive = truth[block]
    true_bins += np.bincount(cells[positive], weight[positive],
                             len(true_bins))
    false_bins += np.bincount(cells[~positive], weight[~positive],
                              len(false_bins))
  true_bins = true_bins.reshape(-1, num_proteins).T
  false_bins = false_bins.reshape(-1, num_proteins).T
  at_or_above = lambda bins: np.cumsum(bins[:, :0:-1], axis=1)[:, ::-1]
  return (at_or_above(true_bins), at_or_above(false_bins),
          np.cumsum(true_bins[:, :-1], axis=1))


def _fmax(true_positive, false_positive, false_negative):
  predicted = true_positive + false_positive
  covered = predicted > 0
  num_covered = covered.sum(axis=0)
  precision = np.divide(
      np.where(covered, true_positive / np.where(covered, predicted, 1), 0).sum(
          axis=0), num_covered, out=np.full(len(THRESHOLDS), np.nan),
      where=num_covered > 0)
  recall = np.mean(true_positive / (true_positive + false_negative), axis=0)
  total = precision + recall
  f = np.divide(2 * precision * recall, total, out=np.zeros_like(total),
                where=total > 0)
  best = int(np.argmax(f))
  return dict(fmax=float(f[best]), fmax_threshold=best / 100,
              fmax_precision=float(precision[best]),
              fmax_recall=float(recall[best]),
              coverage=float(covered[:, best].mean()))


def _smin(true_positive, false_positive, false_negative):
  del true_positive
  s = np.hypot(false_negative.mean(axis=0), false_positive.mean(axis=0))
  best = int(np.argmin(s))
  return float(s[best]), best / 100
