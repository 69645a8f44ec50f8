"""The optimizer and the original's plateau learning-rate reduction.

Pretraining: the original uses tensorflow_addons' LAMB (beta 0.9/0.999,
epsilon 1e-6, no weight decay: optax.lamb's defaults) at lr 2e-4, and Keras'
ReduceLROnPlateau on the epoch's mean training loss (factor 0.8, patience 20
epochs, min_delta 1e-4 absolute, floor 5e-5). optax's reduce_on_plateau with
`accumulation_size` = batches per epoch averages the same loss over the same
epoch and applies the same rule, as a scale on the updates.

Fine-tuning: the original uses Adam at each stage's rate, and the same Keras
rule on the validation loss measured after each epoch. The updates cannot
see that loss, so there the rule only scales them, and `step_plateau` feeds
it the epoch's value, once per epoch.
"""

from typing import Optional

import jax
import ml_collections
import optax

# The base optimizers by name; both take decoupled weight decay (0: none,
# plain Adam for 'adam').
OPTIMIZERS = {'lamb': optax.lamb, 'adam': optax.adamw}


def plateau_rule(config: ml_collections.ConfigDict, learning_rate: float,
                 accumulation_size: int
                 ) -> optax.GradientTransformationExtraArgs:
  """Keras' ReduceLROnPlateau as optax's scale on the updates.

  Args:
    config: the `train.plateau` config section.
    learning_rate: the base rate that the scale multiplies.
    accumulation_size: values averaged per decision (the batches of an
      epoch, or 1 for one value per epoch).

  Returns:
    The transformation; its `update` takes the monitored loss as `value=`.
  """
  return optax.contrib.reduce_on_plateau(
      factor=config.factor,
      patience=config.patience_epochs,
      rtol=0.0,
      atol=config.min_delta,
      accumulation_size=accumulation_size,
      # Keras never raises the rate: a base rate at or under the floor stays.
      min_scale=min(config.min_learning_rate / learning_rate, 1.0))


def _scale_only(rule: optax.GradientTransformationExtraArgs
                ) -> optax.GradientTransformationExtraArgs:
  """`rule`'s state and scale on the updates, without stepping the rule."""

  def update(updates, state, params=None, **extra_args):
    del params, extra_args
    return jax.tree_util.tree_map(lambda g: state.scale * g, updates), state

  return optax.GradientTransformationExtraArgs(rule.init, update)


def make_optimizer(
    config: ml_collections.ConfigDict,
    batches_per_epoch: Optional[int],
    name: str = 'lamb',
    learning_rate: Optional[float] = None,
) -> optax.GradientTransformationExtraArgs:
  """The optimizer; its `update` takes the batch loss as `value=`.

  Args:
    config: the `train` config section (learning_rate, weight_decay,
      grad_clip_norm, plateau).
    batches_per_epoch: the plateau rule decides on the mean `value` of each
      run of this many updates (pretraining: the epoch's training loss).
      None: the updates only apply its scale, and `step_plateau` decides
      (fine-tuning: on the epoch's validation loss).
    name: the base optimizer, a key of OPTIMIZERS.
    learning_rate: the base rate; None takes config.learning_rate.

  Returns:
    An optax transformation: optional global-norm clipping, the base
    optimizer, the plateau rule.
  """
  if name not in OPTIMIZERS:
    raise ValueError(f'Unknown optimizer {name!r}; expected one of '
                     f'{sorted(OPTIMIZERS)}.')
  if learning_rate is None:
    learning_rate = config.learning_rate
  parts = []
  if config.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
  parts.append(OPTIMIZERS[name](learning_rate,
                                weight_decay=config.weight_decay))
  if config.plateau.enabled:
    rule = plateau_rule(config.plateau, learning_rate, batches_per_epoch or 1)
    parts.append(rule if batches_per_epoch else _scale_only(rule))
  return optax.chain(*parts)


def step_plateau(opt_state: optax.OptState,
                 config: ml_collections.ConfigDict, learning_rate: float,
                 value) -> optax.OptState:
  """Feeds one monitored value to the plateau rule of a `make_optimizer`
  state built with batches_per_epoch=None.

  Args:
    opt_state: the optimizer state.
    config: the `train.plateau` config section it was built with.
    learning_rate: its base rate.
    value: float32 scalar, e.g. the epoch's validation loss.

  Returns:
    The same state with the rule's counters and scale moved on; unchanged
    without the rule.
  """
  rule = plateau_rule(config, learning_rate, accumulation_size=1)
  return tuple(
      rule.update({}, inner, value=value)[1]
      if isinstance(inner, optax.contrib.ReduceLROnPlateauState) else inner
      for inner in opt_state)


def plateau_scale(opt_state: optax.OptState):
  """The plateau rule's factor on the learning rate: its scalar array in
  `opt_state` (on device, nothing else copied), or 1.0 without the rule."""
  for inner in opt_state:
    if isinstance(inner, optax.contrib.ReduceLROnPlateauState):
      return inner.scale
  return 1.0
