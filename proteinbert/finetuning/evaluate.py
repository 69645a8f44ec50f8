"""Evaluation by length (the original's `evaluate_by_len`) and task metrics.

Every sequence is predicted uncropped in its length bucket (512, 1024, ...;
`batching.length_buckets`); metrics are reported per bucket and over all:

  binary       auc (ROC AUC), plus the confusion matrix at probability 0.5
  categorical  accuracy, plus the confusion matrix of the arg-max class
  numeric      spearman (rank correlation)
  multilabel   micro_auc and macro_auc

Per-residue tasks pool every labelled residue of the bucket, as the original.
"""

from typing import NamedTuple, Optional, Sequence

import numpy as np

from proteinbert import batching
from proteinbert import metrics
from proteinbert.finetuning import tasks

PRIMARY_METRIC = {'binary': 'auc', 'categorical': 'accuracy',
                  'numeric': 'spearman', 'multilabel': 'micro_auc'}


class Evaluation(NamedTuple):
  """Metrics by length bucket.

  Attributes:
    rows: one dict per non-empty bucket, then one for all sequences, with
      `seq_len` (an int, or 'all'), `proteins`, `labels` (labelled entries:
      proteins, or residues for per-residue tasks) and the task's metrics.
    confusion_matrix: int64 [K, K] over all sequences (rows true, columns
      predicted; K = 2 for binary), or None for numeric and multi-label tasks.
  """
  rows: list
  confusion_matrix: Optional[np.ndarray]


def pooled(spec: tasks.TaskSpec, labels: Sequence,
           predictions: Sequence) -> tuple[np.ndarray, np.ndarray]:
  """Stacks per-protein labels and predictions (residues concatenated).

  Args:
    spec: the task.
    labels: N parsed labels (`tasks.parse_labels`).
    predictions: N predictions (`FinetunedModel.predict`).

  Returns:
    (truths [M] or [M, K], predictions [M] or [M, K]), M labelled entries.
  """
  join = np.concatenate if spec.per_residue else np.stack
  if not len(labels):
    return np.zeros(0), np.zeros(0)
  return join(labels), join(predictions)


def task_metrics(spec: tasks.TaskSpec, truths: np.ndarray,
                 predictions: np.ndarray
                 ) -> tuple[dict, Optional[np.ndarray]]:
  """The task's metrics on pooled truths and predictions.

  Args:
    spec: the task.
    truths: [M] or [M, K] from `pooled` (numeric ones in label units).
    predictions: [M] or [M, K] from `pooled`.

  Returns:
    ({metric name: float}, confusion matrix or None).
  """
  output_type = spec.output_type
  if output_type == 'numeric':
    return {'spearman': metrics.spearman(truths, predictions)}, None
  if output_type == 'multilabel':
    micro, macro = metrics.multilabel_roc_auc(truths, predictions)
    return {'micro_auc': micro, 'macro_auc': macro}, None
  if output_type == 'binary':
    values = {'auc': metrics.roc_auc(truths, predictions)}
    predicted = (predictions >= 0.5).astype(np.int64)
  else:
    predicted = np.argmax(predictions, axis=-1) if len(predictions) else (
        np.zeros(0, np.int64))
    values = {'accuracy': metrics.accuracy(truths, predicted)}
  return values, metrics.confusion_matrix(truths, predicted,
                                          max(spec.num_outputs, 2))


def evaluate_by_length(model, seqs: Sequence[str], labels: Sequence,
                       start_seq_len: int = 512,
                       start_batch_size: int = 32) -> Evaluation:
  """Predicts every sequence in its length bucket and scores the buckets.

  Args:
    model: a `finetuned.FinetunedModel`.
    seqs: [N] sequences; none is filtered or cropped.
    labels: N parsed labels (`tasks.parse_labels` with `model.spec`).
    start_seq_len: first bucket length (keep the training length when
      `model.mask_padding` is False, as predictions then depend on it).
    start_batch_size: batch size of the first bucket.

  Returns:
    The Evaluation.
  """
  if len(seqs) != len(labels):
    raise ValueError(f'{len(seqs)} sequences but {len(labels)} labels.')
  if not len(seqs):
    raise ValueError('Nothing to evaluate: no sequences.')
  spec = model.spec
  predictions = model.predict(seqs, start_seq_len, start_batch_size)
  rows = []
  groups = [(b.seq_len, b.indices) for b in batching.length_buckets(
      seqs, start_seq_len, start_batch_size)]
  groups.append(('all', np.arange(len(seqs))))
  for seq_len, indices in groups:
    truths, predicted = pooled(spec, [labels[i] for i in indices],
                               [predictions[i] for i in indices])
    values, confusion = task_metrics(spec, truths, predicted)
    rows.append(dict(seq_len=seq_len, proteins=len(indices),
                     labels=len(truths), **values))
  return Evaluation(rows, confusion)
