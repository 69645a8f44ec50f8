"""The pure update step: one optimizer step on one batch."""

from typing import Callable, Mapping

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


def make_update_fn(model_config: ml_collections.ConfigDict,
                   train_config: ml_collections.ConfigDict,
                   optimizer: optax.GradientTransformationExtraArgs
                   ) -> UpdateFn:
  """Builds `update(state, batch) -> (state, metrics)` (not yet jitted).

  Args:
    model_config: the model config.
    train_config: the `train` config section.
    optimizer: from `optimizer.make_optimizer`.

  Returns:
    The pure update function. Metrics are float32 scalars: those of
    `losses.pretraining_loss`, plus grad_norm, loss_scale and grads_finite.
  """
  forward = compiled.build(model_lib.forward_fn, model_config).transformed

  def scaled_loss(params, rng, batch, loss_scale):
    output = forward.apply(params, rng, batch.tokens, batch.annotations)
    loss, metrics = losses.pretraining_loss(
        output, batch, train_config.annotation_loss_weight)
    return loss_scale.scale(loss), metrics

  def update(state: state_lib.TrainState, batch):
    rng, step_rng = jax.random.split(state.rng)
    grads, metrics = jax.grad(scaled_loss, has_aux=True)(
        state.params, step_rng, batch, state.loss_scale)
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
    new_state = state_lib.TrainState(
        params=params,
        opt_state=opt_state,
        loss_scale=state.loss_scale.adjust(grads_finite),
        rng=rng,
        step=state.step + 1)
    return new_state, metrics

  return update
