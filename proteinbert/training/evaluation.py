"""Held-out pretraining metrics: token loss/accuracy and annotation ranking."""

from typing import Callable, Iterable, Mapping

import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from proteinbert import metrics as metrics_lib
from proteinbert import model as model_lib
from proteinbert.training import losses

# Metrics that are weighted means, with the weight each is a mean over.
_WEIGHTED = {
    'token_loss': 'token_count',
    'token_accuracy': 'token_count',
    'corrupted_token_accuracy': 'corrupted_count',
    'annotation_loss': 'annotated_count',
}


def make_eval_step(model_config: ml_collections.ConfigDict,
                   train_config: ml_collections.ConfigDict) -> Callable:
  """A jitted `step(params, batch) -> (metrics, annotation_probs [B, A])`."""
  forward = hk.without_apply_rng(hk.transform(model_lib.forward_fn(
      model_config)))

  @jax.jit
  def step(params, batch):
    output = forward.apply(params, batch.tokens, batch.annotations)
    _, metrics = losses.pretraining_loss(
        output, batch, train_config.annotation_loss_weight)
    probs = jax.nn.sigmoid(output.annotation_logits.astype(jnp.float32))
    return metrics, probs

  return step


def evaluate(step: Callable, params: hk.Params,
             batches: Iterable) -> Mapping[str, float]:
  """Aggregates held-out metrics over `batches`.

  Args:
    step: from `make_eval_step`.
    params: model params (on one device).
    batches: held-out `Batch`es whose annotation inputs are hidden and whose
      targets are the true annotations.

  Returns:
    token_loss, token_accuracy, corrupted_token_accuracy, annotation_loss
    (weighted means over all batches), annotation_auc and
    annotation_average_precision (micro, over every annotation of every
    protein that has any), prefixed 'heldout/'.
  """
  totals = {name: 0.0 for name in list(_WEIGHTED) + list(
      set(_WEIGHTED.values()))}
  labels, scores = [], []
  for batch in batches:
    metrics, probs = jax.device_get(step(params, batch))
    for name, weight in _WEIGHTED.items():
      totals[name] += float(metrics[name]) * float(metrics[weight])
    for weight in set(_WEIGHTED.values()):
      totals[weight] += float(metrics[weight])
    annotated = np.asarray(batch.annotation_weights) > 0
    labels.append(np.asarray(batch.annotation_targets)[annotated])
    scores.append(np.asarray(probs)[annotated])
  result = {name: totals[name] / max(totals[weight], 1.0)
            for name, weight in _WEIGHTED.items()}
  labels = np.concatenate(labels) if labels else np.zeros(0)
  scores = np.concatenate(scores) if scores else np.zeros(0)
  result['annotation_auc'] = metrics_lib.roc_auc(labels, scores)
  result['annotation_average_precision'] = metrics_lib.average_precision(
      labels, scores)
  return {f'heldout/{k}': v for k, v in result.items()}
