"""The pure update step: one optimizer step on one batch."""

from typing import Any, Callable, Mapping, TypeVar

import haiku as hk
import jax
import jax.numpy as jnp
import jmp
import ml_collections
import optax

from proteinbert import compiled
from proteinbert import model as model_lib
from proteinbert.training import losses
from proteinbert.training import state as state_lib

UpdateFn = Callable[[state_lib.TrainState, object],
                    tuple[state_lib.TrainState, Mapping[str, jax.Array]]]
# loss_fn(params, rng, batch) -> (float32 scalar loss, float32 metrics).
LossFn = Callable[[hk.Params, jax.Array, Any],
                  tuple[jax.Array, Mapping[str, jax.Array]]]
State = TypeVar('State')


def gradient_step(loss_fn: LossFn, optimizer: optax.GradientTransformation,
                  state: State, batch) -> tuple[State, dict[str, jax.Array]]:
  """One optimizer step on one batch, under the state's loss scale.

  Pretraining and fine-tuning both step through here.

  Args:
    loss_fn: the loss of `state.params` on `batch`; its metrics include
      'loss', which the optimizer receives as `value=`.
    optimizer: from `optimizer.make_optimizer`.
    state: a `state.TrainState` or any NamedTuple with its fields (params,
      opt_state, loss_scale, rng, step); the other fields pass through.
    batch: what `loss_fn` reads.

  Returns:
    (the next state, the loss's metrics plus grad_norm, loss_scale and
    grads_finite, float32 scalars).
  """
  rng, step_rng = jax.random.split(state.rng)

  def scaled_loss(params):
    loss, metrics = loss_fn(params, step_rng, batch)
    return state.loss_scale.scale(loss), metrics

  grads, metrics = jax.grad(scaled_loss, has_aux=True)(state.params)
  grads = state.loss_scale.unscale(grads)
  grads_finite = jmp.all_finite(grads)
  updates, opt_state = optimizer.update(
      grads, state.opt_state, state.params, value=metrics['loss'])
  params = optax.apply_updates(state.params, updates)
  # A non-finite step (float16 overflow) is skipped; the loss scale shrinks.
  params, opt_state = jmp.select_tree(
      grads_finite, (params, opt_state), (state.params, state.opt_state))
  metrics = dict(metrics)
  metrics['grad_norm'] = optax.tree.norm(grads)
  metrics['loss_scale'] = jnp.asarray(state.loss_scale.loss_scale,
                                      jnp.float32)
  metrics['grads_finite'] = grads_finite.astype(jnp.float32)
  new_state = state._replace(
      params=params,
      opt_state=opt_state,
      loss_scale=state.loss_scale.adjust(grads_finite),
      rng=rng,
      step=state.step + 1)
  return new_state, metrics


def make_update_fn(model_config: ml_collections.ConfigDict,
                   train_config: ml_collections.ConfigDict,
                   optimizer: optax.GradientTransformationExtraArgs
                   ) -> UpdateFn:
  """Builds the pretraining `update(state, batch) -> (state, metrics)` (not
  yet jitted).

  Args:
    model_config: the model config.
    train_config: the `train` config section.
    optimizer: from `optimizer.make_optimizer`.

  Returns:
    The pure update function. Metrics are float32 scalars: those of
    `losses.pretraining_loss`, plus those `gradient_step` adds.
  """
  forward = compiled.build(model_lib.forward_fn, model_config).transformed

  def loss_fn(params, rng, batch):
    output = forward.apply(params, rng, batch.tokens, batch.annotations)
    return losses.pretraining_loss(output, batch,
                                   train_config.annotation_loss_weight)

  def update(state: state_lib.TrainState, batch):
    return gradient_step(loss_fn, optimizer, state, batch)

  return update
