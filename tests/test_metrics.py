"""The numpy ranking metrics agree with scikit-learn."""

import numpy as np
import pytest

from proteinbert import metrics

sklearn_metrics = pytest.importorskip('sklearn.metrics')

# Values printed by scikit-learn 1.x roc_auc_score / average_precision_score.
LABELS = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0]
SCORES = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2, 0.4, 0.7, 0.05]


def test_fixed_fixture():
  assert metrics.roc_auc(LABELS, SCORES) == pytest.approx(0.88)
  assert metrics.average_precision(LABELS, SCORES) == pytest.approx(
      0.8761904761904762)


@pytest.mark.parametrize('seed', range(5))
def test_random_fixtures_with_ties(seed):
  rng = np.random.default_rng(seed)
  labels = rng.random(500) < 0.2
  scores = np.round(rng.random(500) + 0.3 * labels, 1)  # Many ties.
  assert metrics.roc_auc(labels, scores) == pytest.approx(
      sklearn_metrics.roc_auc_score(labels, scores))
  assert metrics.average_precision(labels, scores) == pytest.approx(
      sklearn_metrics.average_precision_score(labels, scores))


def test_degenerate_inputs():
  assert np.isnan(metrics.roc_auc([1, 1], [0.2, 0.3]))
  assert np.isnan(metrics.average_precision([0, 0], [0.2, 0.3]))
  with pytest.raises(ValueError):
    metrics.roc_auc([1, 0], [0.2])
