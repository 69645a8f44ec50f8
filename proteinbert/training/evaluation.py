"""Held-out pretraining metrics: token loss/accuracy, denoising against a
frequency baseline, and annotation ranking."""

from typing import Callable, Iterable, Mapping, Optional

import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from proteinbert import compiled
from proteinbert import metrics as metrics_lib
from proteinbert import model as model_lib
from proteinbert import tokenization
from proteinbert.data import batch as batch_lib
from proteinbert.data import corruption
from proteinbert.training import losses

# Metrics that are weighted means, with the weight each is a mean over.
_WEIGHTED = {
    'token_loss': 'token_count',
    'token_accuracy': 'token_count',
    'corrupted_token_accuracy': 'corrupted_count',
    'annotation_loss': 'annotated_count',
    'denoising_accuracy': 'corrupted_count',
    'denoising_loss': 'corrupted_count',
    'corrupted_token_loss': 'corrupted_count',
    'frequency_baseline/token_loss': 'token_count',
    'frequency_baseline/denoising_accuracy': 'corrupted_count',
    'frequency_baseline/denoising_loss': 'corrupted_count',
    'frequency_baseline/corrupted_token_loss': 'corrupted_count',
}
# What the frequency baseline reports: the token metrics that do not need
# the model's annotation outputs.
_BASELINE = ('token_loss', 'denoising_accuracy', 'denoising_loss',
             'corrupted_token_loss')
# Training proteins whose residues estimate the baseline's frequencies.
_FREQUENCY_SAMPLE = 2000


def corpus_frequencies(dataset) -> np.ndarray:
  """float32 [V] token frequencies of (up to 2,000 of) the training proteins."""
  train = np.flatnonzero(~np.asarray(dataset.is_test))[:_FREQUENCY_SAMPLE]
  return losses.token_frequencies(dataset.read_indices(train).seqs)


def make_eval_step(model_config: ml_collections.ConfigDict,
                   train_config: ml_collections.ConfigDict,
                   frequencies: Optional[np.ndarray] = None,
                   noise_prob: float = 0.0) -> Callable:
  """A jitted `step(params, batch) -> (metrics, annotation_probs [B, A])`.

  Args:
    model_config: the model config.
    train_config: the `train` config section.
    frequencies: float [V] corpus token frequencies (`corpus_frequencies`);
      with them the metrics include the frequency baseline's token loss
      and `denoising_metrics` under 'frequency_baseline/'.
    noise_prob: the batches' token corruption rate, known to the baseline.
  """
  forward = compiled.build(model_lib.forward_fn, model_config).transformed

  @jax.jit
  def step(params, batch):
    output = forward.apply(params, None, batch.tokens, batch.annotations)
    _, metrics = losses.pretraining_loss(
        output, batch, train_config.annotation_loss_weight)
    if frequencies is not None:
      baseline_logits = losses.frequency_logits(
          batch.tokens, jnp.asarray(frequencies), noise_prob)
      _, baseline = losses.pretraining_loss(
          output._replace(token_logits=baseline_logits), batch)
      metrics.update({f'frequency_baseline/{k}': baseline[k]
                      for k in _BASELINE})
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
    token_loss, token_accuracy, corrupted_token_accuracy, annotation_loss,
    denoising_accuracy, corrupted_token_loss and their frequency baselines
    where the step computes them (weighted means over all batches),
    annotation_auc and annotation_average_precision (micro, over every
    annotation of every protein that has any), prefixed 'heldout/'.
  """
  totals = {name: 0.0 for name in list(_WEIGHTED) + list(
      set(_WEIGHTED.values()))}
  labels, scores, computed = [], [], set()
  for batch in batches:
    metrics, probs = jax.device_get(step(params, batch))
    computed.update(metrics)
    for name, weight in _WEIGHTED.items():
      if name in metrics:
        totals[name] += float(metrics[name]) * float(metrics[weight])
    for weight in set(_WEIGHTED.values()):
      totals[weight] += float(metrics[weight])
    annotated = np.asarray(batch.annotation_weights) > 0
    labels.append(np.asarray(batch.annotation_targets)[annotated])
    scores.append(np.asarray(probs)[annotated])
  result = {name: totals[name] / max(totals[weight], 1.0)
            for name, weight in _WEIGHTED.items() if name in computed}
  labels = np.concatenate(labels) if labels else np.zeros(0)
  scores = np.concatenate(scores) if scores else np.zeros(0)
  result['annotation_auc'] = metrics_lib.roc_auc(labels, scores)
  result['annotation_average_precision'] = metrics_lib.average_precision(
      labels, scores)
  return {f'heldout/{k}': v for k, v in result.items()}


def denoising_report(model, seqs, frequencies: np.ndarray, noise_prob: float,
                     seq_len: int = 512, batch_size: int = 32,
                     seed: int = 0) -> Mapping[str, float]:
  """Denoising metrics of a loaded model on sequences, beside the baseline.

  Each sequence is tokenized (cropped to `seq_len` from its N-terminus),
  its tokens replaced at random with `noise_prob` (the pretraining recipe,
  `<PAD>` left alone), and the model asked for the originals with no input
  annotations.

  Args:
    model: a `proteinbert.inference.PretrainedModel`.
    seqs: protein sequences.
    frequencies: float [V] the training corpus' token frequencies.
    noise_prob: the corruption rate (known to the baseline).
    seq_len: L, `<START>` and `<END>` included.
    batch_size: sequences per model call.
    seed: seeds the corruption.

  Returns:
    token_loss, denoising_accuracy, denoising_loss, corrupted_token_loss and
    corrupted_count, and the same (but the count) of the frequency baseline
    under 'frequency_baseline/'.
  """
  targets = tokenization.tokenize(seqs, seq_len)
  tokens = corruption.corrupt_tokens(targets, noise_prob, False,
                                     np.random.default_rng(seed))
  probs = model.predict(tokens, batch_size=batch_size,
                        with_hidden=False).token_probs
  weights = corruption.token_weights(targets)
  no_annotations = np.zeros((len(targets), 0), np.float32)
  batch = batch_lib.Batch(
      tokens=tokens, targets=targets, token_weights=weights,
      corrupted=(tokens != targets) & (weights > 0),
      annotations=no_annotations, annotation_targets=no_annotations,
      annotation_weights=np.zeros(len(targets), np.float32))
  report = {}
  for prefix, logits in (
      ('', jnp.log(jnp.maximum(jnp.asarray(probs), 1e-30))),
      ('frequency_baseline/', losses.frequency_logits(
          tokens, jnp.asarray(frequencies), noise_prob))):
    _, metrics = losses.pretraining_loss(
        model_lib.ModelOutput(logits, no_annotations, (), ()), batch)
    report.update({prefix + k: float(metrics[k]) for k in _BASELINE})
  report['corrupted_count'] = float(metrics['corrupted_count'])
  return report
