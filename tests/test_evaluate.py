"""Evaluation by length, metrics against sklearn and scipy."""

import numpy as np
import pytest

from proteinbert import metrics
from proteinbert.finetuning import evaluate
from proteinbert.finetuning import tasks

sklearn_metrics = pytest.importorskip('sklearn.metrics')
stats = pytest.importorskip('scipy.stats')


def _random_seqs(rng, lengths):
  return [''.join(rng.choice(list('ACDEFGHIKLMNPQRSTVWY'), n)) for n in lengths]


class _FakeModel:
  """A model whose predictions are the truths (records the calls)."""

  def __init__(self, spec, truths):
    self.spec = spec
    self._truths = truths
    self.calls = []

  def predict(self, seqs, start_seq_len, batch_size):
    self.calls.append((start_seq_len, batch_size))
    return [np.asarray(t, np.float32) for t in self._truths]


def test_evaluate_by_length_rows_and_confusion_matrix():
  rng = np.random.default_rng(1)
  seqs = _random_seqs(rng, [10, 20, 100, 200, 300, 40])
  spec = tasks.make_spec('residue_binary')
  labels = [rng.integers(0, 2, len(s)).astype(np.float32) for s in seqs]
  model = _FakeModel(spec, labels)
  result = evaluate.evaluate_by_length(model, seqs, labels, 64, 8)
  assert model.calls == [(64, 8)]
  assert [r['seq_len'] for r in result.rows] == [64, 128, 256, 512, 'all']
  assert [r['proteins'] for r in result.rows] == [3, 1, 1, 1, 6]
  assert result.rows[-1]['labels'] == sum(map(len, seqs))
  assert result.rows[-1]['auc'] == 1.0
  positives = int(sum(l.sum() for l in labels))
  np.testing.assert_array_equal(
      result.confusion_matrix,
      [[sum(map(len, seqs)) - positives, 0], [0, positives]])


def test_task_metrics_categorical_and_numeric_and_multilabel():
  rng = np.random.default_rng(2)
  spec = tasks.make_spec('global_categorical', 'abc')
  truths = rng.integers(0, 3, 200)
  probs = rng.dirichlet(np.ones(3), 200)
  values, confusion = evaluate.task_metrics(spec, truths, probs)
  predicted = probs.argmax(-1)
  assert values['accuracy'] == pytest.approx(
      sklearn_metrics.accuracy_score(truths, predicted))
  np.testing.assert_array_equal(
      confusion, sklearn_metrics.confusion_matrix(truths, predicted))

  numbers = np.round(rng.normal(size=300), 1)  # Ties.
  noisy = np.round(numbers + rng.normal(size=300), 1)
  values, confusion = evaluate.task_metrics(tasks.make_spec('global_numeric'),
                                            numbers, noisy)
  assert confusion is None
  assert values['spearman'] == pytest.approx(
      stats.spearmanr(numbers, noisy).statistic)

  multi = rng.integers(0, 2, (100, 4))
  scores = np.round(rng.random((100, 4)) + 0.5 * multi, 1)
  values, _ = evaluate.task_metrics(
      tasks.make_spec('global_multilabel', 'abcd'), multi, scores)
  assert values['micro_auc'] == pytest.approx(
      sklearn_metrics.roc_auc_score(multi, scores, average='micro'))
  assert values['macro_auc'] == pytest.approx(
      sklearn_metrics.roc_auc_score(multi, scores, average='macro'))


def test_metric_functions_against_scipy_and_sklearn():
  rng = np.random.default_rng(3)
  values = np.round(rng.random(50), 1)
  np.testing.assert_allclose(metrics.rankdata(values),
                             stats.rankdata(values))
  assert np.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))
  assert metrics.accuracy([1, 2, 2], [1, 2, 0]) == pytest.approx(2 / 3)
  np.testing.assert_array_equal(
      metrics.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], 3),
      sklearn_metrics.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1]))
  with pytest.raises(ValueError, match='must lie in'):
    metrics.confusion_matrix([0, 3], [0, 1], 3)
  # A column without positives is left out of the macro mean.
  micro, macro = metrics.multilabel_roc_auc([[1, 0], [0, 0]], [[0.9, 0.1],
                                                                [0.2, 0.3]])
  assert micro == pytest.approx(sklearn_metrics.roc_auc_score(
      [1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3]))
  assert macro == 1.0
