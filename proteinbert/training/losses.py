"""The pretraining objective and its metrics.

Axis letters: B batch, L length, V vocabulary, A annotations.

The objective is the original's: sparse categorical cross-entropy on tokens
plus `annotation_loss_weight` times binary cross-entropy on annotations, each
weighted and reduced as Keras reduces weighted losses (the sum of weighted
losses divided by the number of weight entries: B * L for tokens, B for
annotations, whose per-protein loss is the mean over A). So <PAD> positions
and unannotated proteins add nothing but still count in the denominator,
exactly as in `model.fit(..., sample_weight=...)`.

The reported `token_loss` and `annotation_loss` are instead means over the
positions and proteins that have weight, which is what one wants to read
(uniform guessing gives ln 26 = 3.26 nats per residue).
"""

from typing import Mapping

import jax.numpy as jnp
import optax

from proteinbert import model as model_lib


def pretraining_loss(
    output: model_lib.ModelOutput,
    batch,
    annotation_loss_weight: float = 1.0,
) -> tuple[jnp.ndarray, Mapping[str, jnp.ndarray]]:
  """The objective and its metrics for one batch.

  Args:
    output: the model's output on `batch.tokens`, `batch.annotations`.
    batch: a `proteinbert.data.batch.Batch` (numpy or jax arrays).
    annotation_loss_weight: weight of the annotation term.

  Returns:
    (scalar float32 objective, dict of scalar float32 metrics: loss,
    token_loss, token_accuracy, corrupted_token_accuracy, annotation_loss,
    and the weight sums token_count, corrupted_count, annotated_count).
  """
  token_logits = output.token_logits.astype(jnp.float32)
  annotation_logits = output.annotation_logits.astype(jnp.float32)
  token_weights = jnp.asarray(batch.token_weights, jnp.float32)
  annotation_weights = jnp.asarray(batch.annotation_weights, jnp.float32)

  token_ce = optax.softmax_cross_entropy_with_integer_labels(
      token_logits, batch.targets)                       # [B, L]
  annotation_bce = optax.sigmoid_binary_cross_entropy(
      annotation_logits,
      jnp.asarray(batch.annotation_targets, jnp.float32)).mean(-1)  # [B]

  token_term = jnp.sum(token_ce * token_weights) / token_weights.size
  annotation_term = (jnp.sum(annotation_bce * annotation_weights)
                     / annotation_weights.size)
  loss = token_term + annotation_loss_weight * annotation_term

  correct = (jnp.argmax(token_logits, -1) == batch.targets).astype(jnp.float32)
  corrupted = jnp.asarray(batch.corrupted, jnp.float32) * token_weights
  token_count = token_weights.sum()
  corrupted_count = corrupted.sum()
  annotated_count = annotation_weights.sum()
  safe = lambda total, count: total / jnp.maximum(count, 1.0)
  metrics = {
      'loss': loss,
      'token_loss': safe(jnp.sum(token_ce * token_weights), token_count),
      'token_accuracy': safe(jnp.sum(correct * token_weights), token_count),
      'corrupted_token_accuracy': safe(jnp.sum(correct * corrupted),
                                       corrupted_count),
      'annotation_loss': safe(jnp.sum(annotation_bce * annotation_weights),
                              annotated_count),
      'token_count': token_count,
      'corrupted_count': corrupted_count,
      'annotated_count': annotated_count,
  }
  return loss, metrics
