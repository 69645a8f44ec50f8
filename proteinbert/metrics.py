"""Ranking metrics in numpy (no scikit-learn at run time).

Both agree with scikit-learn's `roc_auc_score` and
`average_precision_score` (tests compare them on fixtures).
"""

import numpy as np


def _check(labels, scores):
  labels = np.asarray(labels).reshape(-1).astype(bool)
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  if labels.shape != scores.shape:
    raise ValueError(f'labels {labels.shape} and scores {scores.shape} differ.')
  return labels, scores


def roc_auc(labels, scores) -> float:
  """Area under the ROC curve; ties count one half. NaN without both classes.

  Args:
    labels: [N] (or any shape) 0/1 truths.
    scores: same shape, higher meaning more likely positive.

  Returns:
    The AUC as a float.
  """
  labels, scores = _check(labels, scores)
  num_pos = labels.sum()
  num_neg = labels.size - num_pos
  if num_pos == 0 or num_neg == 0:
    return float('nan')
  order = np.argsort(scores, kind='mergesort')
  sorted_scores = scores[order]
  ranks = np.empty(labels.size, dtype=np.float64)
  # Average ranks over runs of tied scores (Mann-Whitney U).
  boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
  starts = np.concatenate([[0], boundaries])
  ends = np.concatenate([boundaries, [labels.size]])
  ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
  u = ranks[labels].sum() - num_pos * (num_pos + 1) / 2.0
  return float(u / (num_pos * num_neg))


def average_precision(labels, scores) -> float:
  """Average precision (area under precision-recall, step-wise), as sklearn.

  NaN when there is no positive.
  """
  labels, scores = _check(labels, scores)
  num_pos = labels.sum()
  if num_pos == 0:
    return float('nan')
  order = np.argsort(-scores, kind='mergesort')
  sorted_scores, sorted_labels = scores[order], labels[order]
  # Thresholds at the last index of each run of equal scores.
  last = np.concatenate([np.flatnonzero(np.diff(sorted_scores)),
                         [labels.size - 1]])
  true_pos = np.cumsum(sorted_labels)[last]
  precision = true_pos / (last + 1)
  recall = true_pos / num_pos
  recall_steps = np.diff(np.concatenate([[0.0], recall]))
  return float(np.sum(recall_steps * precision))
