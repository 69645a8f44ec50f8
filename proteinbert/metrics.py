"""Evaluation metrics in numpy (no scikit-learn or scipy at run time).

Each agrees with its scikit-learn or scipy counterpart (tests compare them on
fixtures): `roc_auc` with `roc_auc_score`, `average_precision` with
`average_precision_score`, `accuracy` with `accuracy_score`,
`confusion_matrix` with `confusion_matrix`, `spearman` with
`scipy.stats.spearmanr`, `multilabel_roc_auc` with `roc_auc_score(...,
average='micro'/'macro')`.
"""

import numpy as np


def _check(labels, scores):
  labels = np.asarray(labels).reshape(-1).astype(bool)
  scores = np.asarray(scores, dtype=np.float64).reshape(-1)
  if labels.shape != scores.shape:
    raise ValueError(f'labels {labels.shape} and scores {scores.shape} differ.')
  return labels, scores


def rankdata(values) -> np.ndarray:
  """1-based ranks, ties given their average rank (scipy's 'average').

  Args:
    values: [N] numbers.

  Returns:
    float64 [N] ranks.
  """
  values = np.asarray(values, dtype=np.float64).reshape(-1)
  order = np.argsort(values, kind='mergesort')
  boundaries = np.flatnonzero(np.diff(values[order])) + 1
  starts = np.concatenate([[0], boundaries])
  ends = np.concatenate([boundaries, [values.size]])
  ranks = np.empty(values.size, dtype=np.float64)
  ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
  return ranks


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
  # Tied scores share their average rank (Mann-Whitney U).
  u = rankdata(scores)[labels].sum() - num_pos * (num_pos + 1) / 2.0
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


def multilabel_roc_auc(labels, scores) -> tuple[float, float]:
  """Micro- and macro-averaged ROC AUC over the columns of a multi-label task.

  Args:
    labels: [N, K] 0/1 truths.
    scores: [N, K] scores.

  Returns:
    (micro AUC over all N * K entries, macro mean of the per-column AUCs).
    Columns without both classes are left out of the macro mean (scikit-learn
    raises instead); NaN when no column has both.
  """
  labels = np.asarray(labels)
  scores = np.asarray(scores)
  if labels.ndim != 2 or labels.shape != scores.shape:
    raise ValueError(f'labels {labels.shape} and scores {scores.shape} must '
                     'be the same [N, K] shape.')
  per_column = [roc_auc(labels[:, k], scores[:, k])
                for k in range(labels.shape[1])]
  finite = [auc for auc in per_column if not np.isnan(auc)]
  macro = float(np.mean(finite)) if finite else float('nan')
  return roc_auc(labels, scores), macro


def spearman(truths, predictions) -> float:
  """Spearman's rank correlation (ties averaged); NaN if either is constant.

  Args:
    truths: [N] numbers.
    predictions: [N] numbers.

  Returns:
    The correlation as a float.
  """
  a = rankdata(truths)
  b = rankdata(predictions)
  if a.shape != b.shape:
    raise ValueError(f'truths {a.shape} and predictions {b.shape} differ.')
  a -= a.mean()
  b -= b.mean()
  denominator = np.sqrt(np.sum(a * a) * np.sum(b * b))
  if denominator == 0:
    return float('nan')
  return float(np.sum(a * b) / denominator)


def accuracy(truths, predictions) -> float:
  """Fraction of predicted classes equal to the true ones; NaN when empty.

  Args:
    truths: [N] int classes.
    predictions: [N] int predicted classes.
  """
  truths = np.asarray(truths).reshape(-1)
  predictions = np.asarray(predictions).reshape(-1)
  if truths.shape != predictions.shape:
    raise ValueError(f'truths {truths.shape} and predictions '
                     f'{predictions.shape} differ.')
  return float(np.mean(truths == predictions)) if truths.size else float('nan')


def confusion_matrix(truths, predictions, num_classes: int) -> np.ndarray:
  """Counts of (true class, predicted class) pairs, as scikit-learn's.

  Args:
    truths: [N] int classes in [0, num_classes).
    predictions: [N] int predicted classes in [0, num_classes).
    num_classes: K.

  Returns:
    int64 [K, K]; row i, column j counts truths i predicted as j.
  """
  truths = np.asarray(truths, dtype=np.int64).reshape(-1)
  predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
  if truths.shape != predictions.shape:
    raise ValueError(f'truths {truths.shape} and predictions '
                     f'{predictions.shape} differ.')
  for name, values in (('truths', truths), ('predictions', predictions)):
    if values.size and (values.min() < 0 or values.max() >= num_classes):
      raise ValueError(f'{name} must lie in [0, {num_classes}).')
  return np.bincount(truths * num_classes + predictions,
                     minlength=num_classes * num_classes).reshape(
                         num_classes, num_classes)
