"""The training state and its pure initialiser."""

from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import jmp
import ml_collections
import optax

from proteinbert import model as model_lib
from proteinbert import precision


class TrainState(NamedTuple):
  """Everything the update step reads and writes.

  Attributes:
    params: model parameters (float32 master copy).
    opt_state: optimizer state (LAMB moments, plateau counters).
    loss_scale: a jmp loss scale: dynamic under float16 compute, else no-op.
    rng: PRNG key, split once per step.
    step: int32 scalar, updates applied so far.
  """
  params: hk.Params
  opt_state: optax.OptState
  loss_scale: jmp.LossScale
  rng: jax.Array
  step: jax.Array


def make_loss_scale(model_config: ml_collections.ConfigDict,
                    train_config: ml_collections.ConfigDict) -> jmp.LossScale:
  """Dynamic loss scaling for float16 compute; none for float32/bfloat16."""
  compute = precision.get_policy(model_config.precision).compute_dtype
  if compute == jnp.float16:
    return jmp.DynamicLossScale(
        jnp.asarray(train_config.initial_loss_scale, jnp.float32))
  return jmp.NoOpLossScale()


def init_state(model_config: ml_collections.ConfigDict,
               train_config: ml_collections.ConfigDict,
               optimizer: optax.GradientTransformation,
               seed: int) -> TrainState:
  """A fresh state: initial params, optimizer state, loss scale, rng."""
  init_rng, rng = jax.random.split(jax.random.PRNGKey(seed))
  params = model_lib.init_params(model_config, init_rng)
  return TrainState(
      params=params,
      opt_state=optimizer.init(params),
      loss_scale=make_loss_scale(model_config, train_config),
      rng=rng,
      step=jnp.zeros((), jnp.int32))
