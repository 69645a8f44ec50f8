"""The fine-tuning state and its pure update step.

The step is pretraining's (`training.update.gradient_step`: loss scaling,
skipping non-finite steps, the shared optimizer) on the task's loss, with
the parameters a stage does not train held in the state, unchanged.
"""

from typing import Callable, Mapping, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import jmp
import ml_collections
import numpy as np
import optax

from proteinbert.finetuning import finetuned
from proteinbert.finetuning import heads
from proteinbert.finetuning import tasks
from proteinbert.training import update as update_lib


class Batch(NamedTuple):
  """A fixed-size batch; padding rows are <PAD> with zero weight.

  Attributes:
    tokens: int32 [B, L].
    values: `tasks.Targets.values` of the rows: [B] (float32; int32
      categorical), [B, K] float32 (multi-label) or [B, L] (per-residue).
    weights: float32 [B] or [B, L]: 1 where a label counts, else 0.
  """
  tokens: np.ndarray
  values: np.ndarray
  weights: np.ndarray


class FinetuneState(NamedTuple):
  """Everything the fine-tuning update step reads and writes.

  The fields of `training.state.TrainState`, plus the parameters held fixed.

  Attributes:
    params: the parameters the stage trains (float32): the head alone in the
      frozen stage, else all.
    frozen: the parameters it holds fixed: the trunk in the frozen stage,
      else none.
    opt_state: optimizer state (moments, plateau counters).
    loss_scale: a jmp loss scale: dynamic under float16 compute, else no-op.
    rng: PRNG key, split once per step (dropout).
    step: int32 scalar, updates applied so far.
  """
  params: hk.Params
  frozen: hk.Params
  opt_state: optax.OptState
  loss_scale: jmp.LossScale
  rng: jax.Array
  step: jax.Array


def init_state(params: hk.Params, train_trunk: bool,
               optimizer: optax.GradientTransformation,
               loss_scale: jmp.LossScale, rng: jax.Array,
               step: int = 0) -> FinetuneState:
  """A stage's first state: params split, a fresh optimizer state.

  Args:
    params: the fine-tuning model's params (trunk and head).
    train_trunk: False holds the trunk fixed and trains the head alone.
    optimizer: from `training.optimizer.make_optimizer`.
    loss_scale: from `training.state.make_loss_scale`, or the previous
      stage's.
    rng: PRNG key.
    step: updates applied before this stage.
  """
  trainable, frozen = split(params, train_trunk)
  return FinetuneState(
      params=trainable,
      frozen=frozen,
      opt_state=optimizer.init(trainable),
      loss_scale=loss_scale,
      rng=rng,
      step=jnp.asarray(step, jnp.int32))


def split(params: hk.Params, train_trunk: bool
          ) -> tuple[hk.Params, hk.Params]:
  """(trained, frozen) params of a stage: (all, none) when it trains the
  trunk, else (the head, the trunk)."""
  trunk, head = heads.split_params(params)
  return (params, {}) if train_trunk else (head, trunk)


def all_params(state: FinetuneState) -> hk.Params:
  """The whole model's params: the trained ones and the fixed ones."""
  return hk.data_structures.merge(state.frozen, state.params)


def make_update_fn(
    model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
    head_config: ml_collections.ConfigDict,
    optimizer: optax.GradientTransformationExtraArgs
) -> Callable[[FinetuneState, Batch],
              tuple[FinetuneState, Mapping[str, jax.Array]]]:
  """Builds `update(state, batch) -> (state, metrics)` (not yet jitted).

  Args:
    model_config: the trunk's config.
    spec: the task.
    head_config: the head section.
    optimizer: from `training.optimizer.make_optimizer`.

  Returns:
    The pure update function. Metrics are float32 scalars: 'loss', the mean
    of `heads.weighted_loss_sum` over the labels that count (with dropout),
    plus those `gradient_step` adds.
  """
  apply = finetuned.build(model_config, spec, head_config).transformed.apply

  def update(state: FinetuneState, batch: Batch):

    def loss_fn(params, rng, batch):
      logits = apply(hk.data_structures.merge(state.frozen, params), rng,
                     batch.tokens, True)
      total, count = heads.weighted_loss_sum(spec, logits, batch.values,
                                             batch.weights)
      loss = total / jnp.maximum(count, 1.0)
      return loss, {'loss': loss}

    return update_lib.gradient_step(loss_fn, optimizer, state, batch)

  return update
