"""The fine-tuning model: the pretrained trunk, a task head, and its loss.

Axis letters: B batch, L length, F head input features, K head outputs.

The original (`FinetuningModelGenerator.create_model`) puts dropout and one
dense layer on top of the pretraining model's per-residue output (per-residue
tasks) or per-protein output (global tasks); its demo first swaps those
outputs for the concatenation of every hidden layer
(`get_model_with_hidden_layers_as_outputs`). Both are here as `head_input`:

  'hidden'  `model.concatenated_hidden` (the demo's practice, the default):
            local [B, L, 2 * num_blocks * C + V] or global
            [B, (2 * num_blocks + 1) * G + A].
  'output'  the pretraining outputs: token probabilities [B, L, V] or
            annotation probabilities [B, A].

Parameter paths: the trunk's are exactly the pretrained model's
(`protein_bert/...`, see `proteinbert/model.py`), so pretrained weights load by
name; the head adds `task_head/output` (w [F, K], b [K]).
"""

from typing import Callable

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import optax

from proteinbert import compiled
from proteinbert import layers
from proteinbert import model as model_lib
from proteinbert.finetuning import tasks

HEAD_INPUTS = ('hidden', 'output')
HEAD_MODULE = 'task_head'


class TaskHead(hk.Module):
  """Dropout, then a dense layer to the task's K outputs (logits)."""

  def __init__(self, num_outputs: int, dropout_rate: float,
               name: str = HEAD_MODULE):
    super().__init__(name=name)
    self._num_outputs = num_outputs
    self._dropout_rate = dropout_rate

  def __call__(self, features: jnp.ndarray, is_training: bool) -> jnp.ndarray:
    """[B, F] or [B, L, F] float features -> [B, K] or [B, L, K] logits."""
    if is_training and self._dropout_rate > 0:
      features = hk.dropout(hk.next_rng_key(), self._dropout_rate, features)
    return layers.dense(self._num_outputs, 'output')(features)


def head_features(output: model_lib.ModelOutput, per_residue: bool,
                  head_input: str) -> jnp.ndarray:
  """What the head reads: [B, L, F] per residue or [B, F] per protein."""
  if head_input == 'hidden':
    local, global_ = model_lib.concatenated_hidden(output)
    return local if per_residue else global_
  if head_input == 'output':
    if per_residue:
      return jax.nn.softmax(output.token_logits.astype(jnp.float32), axis=-1)
    return jax.nn.sigmoid(output.annotation_logits.astype(jnp.float32))
  raise ValueError(f'Unknown head input {head_input!r}; expected one of '
                   f'{HEAD_INPUTS}.')


def head_fn(num_outputs: int) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """The head alone, untransformed, for initialising it: head(features)."""
  return lambda features: TaskHead(num_outputs, 0.0)(features, False)


def feature_size(model_config: ml_collections.ConfigDict, per_residue: bool,
                 head_input: str) -> int:
  """F, the number of features the head reads (traced, never computed)."""
  forward = compiled.build(model_lib.forward_fn, model_config)
  tokens = jnp.zeros((1, 8), jnp.int32)
  annotations = jnp.zeros((1, model_config.num_annotations), jnp.float32)
  params = jax.eval_shape(forward.init, jax.random.PRNGKey(0), tokens,
                          annotations)
  features = jax.eval_shape(
      lambda p: head_features(
          forward.transformed.apply(p, None, tokens, annotations),
          per_residue, head_input), params)
  return features.shape[-1]


def forward_fn(
    model_config: ml_collections.ConfigDict,
    spec: tasks.TaskSpec,
    head_config: ml_collections.ConfigDict,
) -> Callable[[jnp.ndarray, bool], jnp.ndarray]:
  """The untransformed fine-tuning model, without input annotations (the
  original fine-tunes with none).

  Args:
    model_config: the trunk's model config.
    spec: the task.
    head_config: `head_input` (one of HEAD_INPUTS) and `dropout_rate`.

  Returns:
    forward(tokens int [B, L], is_training) -> float32 logits [B, K] (global
    tasks) or [B, L, K] (per-residue tasks).
  """
  if head_config.head_input not in HEAD_INPUTS:
    raise ValueError(f'Unknown head input {head_config.head_input!r}; '
                     f'expected one of {HEAD_INPUTS}.')
  trunk = model_lib.forward_fn(model_config)

  def forward(tokens, is_training):
    annotations = jnp.zeros((tokens.shape[0], model_config.num_annotations),
                            jnp.float32)
    output = trunk(tokens, annotations)
    features = head_features(output, spec.per_residue, head_config.head_input)
    logits = TaskHead(spec.num_outputs, head_config.dropout_rate)(
        features, is_training)
    chex.assert_shape(logits, tokens.shape[:1 + spec.per_residue]
                      + (spec.num_outputs,))
    return logits

  return forward


def split_params(params: hk.Params) -> tuple[hk.Params, hk.Params]:
  """(trunk params, head params)."""
  head, trunk = hk.data_structures.partition(
      lambda module, name, value: module.startswith(HEAD_MODULE), params)
  return trunk, head


def weighted_loss_sum(spec: tasks.TaskSpec, logits: jnp.ndarray,
                      values: jnp.ndarray, weights: jnp.ndarray
                      ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The task's loss, summed over weighted entries, and the weight sum.

  The losses are the original's: binary cross-entropy (binary, and each class
  of multi-label), sparse categorical cross-entropy (categorical), squared
  error (numeric, on standardised targets).

  Args:
    spec: the task.
    logits: [B, K] or [B, L, K] from `forward_fn`.
    values: `tasks.Targets.values` of the batch.
    weights: `tasks.Targets.weights` of the batch, [B] or [B, L].

  Returns:
    (sum of weight * loss, sum of weights), float32 scalars; their ratio is
    the mean loss over the labels that count.
  """
  logits = logits.astype(jnp.float32)
  if spec.output_type == 'binary':
    loss = optax.sigmoid_binary_cross_entropy(logits[..., 0], values)
  elif spec.output_type == 'categorical':
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, values)
  elif spec.output_type == 'numeric':
    loss = jnp.square(logits[..., 0] - values)
  else:
    loss = optax.sigmoid_binary_cross_entropy(logits, values).mean(-1)
  chex.assert_equal_shape([loss, weights])
  return jnp.sum(loss * weights), jnp.sum(weights)
