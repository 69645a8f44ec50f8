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

With random replacement and no mask token, a denoiser is right to bet on the
token it is shown unless the context all but rules it out, so plain accuracy
at corrupted positions (`corrupted_token_accuracy`) measures copying. What
the model knows shows in `denoising_metrics`: its best guess among the tokens
it is *not* shown, and the log-loss of the true token, both at corrupted
positions; `frequency_logits` is the baseline that knows only token
frequencies and the corruption rate.
"""

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from proteinbert import model as model_lib
from proteinbert import tokenization


def denoising_metrics(token_logits: jnp.ndarray,
                      batch) -> Mapping[str, jnp.ndarray]:
  """What a denoiser knows beyond copying, at the corrupted positions.

  Args:
    token_logits: float [B, L, V] token logits (or any log-scores).
    batch: a `Batch`; its `corrupted` positions are those whose input token
      differs from the target (so the target is never the shown token).

  Returns:
    float32 scalars, means over corrupted positions: denoising_accuracy (the
    argmax over the tokens other than the shown one is the target),
    denoising_loss (-log of the target's probability renormalised over the
    tokens other than the shown one: the loss with the bet on copying taken
    out), corrupted_token_loss (-log p of the target); and corrupted_count.
  """
  logits = token_logits.astype(jnp.float32)
  shown = jax.nn.one_hot(batch.tokens, logits.shape[-1], dtype=bool)
  others = jnp.where(shown, -jnp.inf, logits)
  corrupted = jnp.asarray(batch.corrupted, jnp.float32) * jnp.asarray(
      batch.token_weights, jnp.float32)
  count = corrupted.sum()
  mean = lambda values: jnp.sum(values * corrupted) / jnp.maximum(count, 1)
  hits = (jnp.argmax(others, -1) == batch.targets).astype(jnp.float32)
  # At corrupted positions the target is not the shown token, so its logit
  # in `others` is finite; elsewhere the product with `corrupted` drops it.
  other_ce = optax.softmax_cross_entropy_with_integer_labels(
      jnp.where(corrupted[..., None] > 0, others, logits), batch.targets)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch.targets)
  return {
      'denoising_accuracy': mean(hits),
      'denoising_loss': mean(other_ce),
      'corrupted_token_loss': mean(ce),
      'corrupted_count': count,
  }


def frequency_logits(tokens: jnp.ndarray, frequencies: jnp.ndarray,
                     noise_prob: float) -> jnp.ndarray:
  """Log-posterior of the true token for a model that knows only frequencies.

  Each position's token was replaced with probability rho by one of the V
  tokens drawn uniformly (possibly itself), so given the shown token s,
  p(t | s) is proportional to f(t) ((1 - rho) [t = s] + rho / V).

  Args:
    tokens: int [B, L] shown (corrupted) tokens.
    frequencies: float [V] token frequencies of the corpus (sum to 1).
    noise_prob: rho.

  Returns:
    float32 [B, L, V] unnormalised log-probabilities.
  """
  vocab_size = frequencies.shape[-1]
  shown = jax.nn.one_hot(tokens, vocab_size, dtype=jnp.float32)
  likelihood = (1.0 - noise_prob) * shown + noise_prob / vocab_size
  log_prior = jnp.log(jnp.maximum(frequencies.astype(jnp.float32), 1e-12))
  return log_prior + jnp.log(likelihood)


def token_frequencies(seqs) -> np.ndarray:
  """float32 [V] frequencies of the tokens of whole tokenized sequences.

  Args:
    seqs: protein sequences (str or bytes); each adds its residues and one
      `<START>` and one `<END>`.
  """
  counts = np.zeros(tokenization.VOCAB_SIZE, np.float64)
  for seq in seqs:
    counts += np.bincount(tokenization.tokenize([seq]).reshape(-1),
                          minlength=tokenization.VOCAB_SIZE)
  counts[tokenization.PAD] = 0.0
  return (counts / max(counts.sum(), 1.0)).astype(np.float32)


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
    the `denoising_metrics`, and the weight sums token_count,
    corrupted_count, annotated_count).
  """
  token_logits = output.token_logits.astype(jnp.float32)
  annotation_logits = output.annotation_logits.astype(jnp.float32)
  token_weights = jnp.asarray(batch.token_weights, jnp.float32)
  annotation_weights = jnp.asarray(batch.annotation_weights, jnp.float32)

  token_ce = optax.softmax_cross_entropy_with_integer_labels(
      token_logits, batch.targets)                       # [B, L]
  if annotation_logits.shape[-1]:
    annotation_bce = optax.sigmoid_binary_cross_entropy(
        annotation_logits,
        jnp.asarray(batch.annotation_targets, jnp.float32)).mean(-1)  # [B]
  else:
    # A sequence-only dataset: no annotation term (a mean over A = 0 is NaN).
    annotation_bce = jnp.zeros(annotation_logits.shape[:1], jnp.float32)

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
      **denoising_metrics(token_logits, batch),
      'token_count': token_count,
      'corrupted_count': corrupted_count,
      'annotated_count': annotated_count,
  }
  return loss, metrics
