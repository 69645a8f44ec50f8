"""LAMB with the original's plateau learning-rate reduction.

The original pretrains with tensorflow_addons' LAMB (beta 0.9/0.999, epsilon
1e-6, no weight decay: optax.lamb's defaults) at lr 2e-4, and Keras'
ReduceLROnPlateau on the epoch's mean training loss (factor 0.8, patience 20
epochs, min_delta 1e-4 absolute, floor 5e-5). optax's reduce_on_plateau with
`accumulation_size` = batches per epoch averages the same loss over the same
epoch and applies the same rule, as a scale on the updates.
"""

import ml_collections
import optax


def make_optimizer(
    config: ml_collections.ConfigDict,
    batches_per_epoch: int,
) -> optax.GradientTransformationExtraArgs:
  """The optimizer; its `update` takes the batch loss as `value=`.

  Args:
    config: the `train` config section.
    batches_per_epoch: the plateau rule looks at the mean loss of each epoch.

  Returns:
    An optax transformation: optional global-norm clipping, LAMB, plateau.
  """
  parts = []
  if config.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
  parts.append(optax.lamb(config.learning_rate,
                          weight_decay=config.weight_decay))
  if config.plateau.enabled:
    parts.append(optax.contrib.reduce_on_plateau(
        factor=config.plateau.factor,
        patience=config.plateau.patience_epochs,
        rtol=0.0,
        atol=config.plateau.min_delta,
        accumulation_size=batches_per_epoch,
        min_scale=config.plateau.min_learning_rate / config.learning_rate))
  return optax.chain(*parts)


def plateau_scale(opt_state: optax.OptState):
  """The plateau rule's factor on the learning rate: its scalar array in
  `opt_state` (on device, nothing else copied), or 1.0 without the rule."""
  for inner in opt_state:
    if isinstance(inner, optax.contrib.ReduceLROnPlateauState):
      return inner.scale
  return 1.0
