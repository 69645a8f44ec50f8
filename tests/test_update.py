"""Optimizer, update step, loss scaling."""

import jax
import jax.numpy as jnp
import jmp
import ml_collections
import numpy as np
import pytest

from proteinbert import config as config_lib
from proteinbert import tokenization
from proteinbert.data import batch as batch_lib
from proteinbert.training import optimizer as optimizer_lib
from proteinbert.training import state as state_lib
from proteinbert.training import update as update_lib
from tests import helpers


def _train_config(**overrides) -> ml_collections.ConfigDict:
  config = config_lib.get_train_config()
  config.update(overrides)
  return config


def _batch(num_annotations=10, seed=0):
  rng = np.random.default_rng(seed)
  seqs = [''.join(rng.choice(list('ACDEFGHIKLMNPQRSTVWY'), 20))
          for _ in range(4)]
  targets = tokenization.tokenize(seqs, 24)
  annotation_targets = (rng.random((4, num_annotations)) < 0.3).astype(
      np.float32)
  return batch_lib.Batch(
      tokens=targets, targets=targets,
      token_weights=(targets != tokenization.PAD).astype(np.float32),
      corrupted=np.zeros(targets.shape, bool),
      annotations=np.zeros_like(annotation_targets),
      annotation_targets=annotation_targets,
      annotation_weights=np.ones(4, np.float32))


def test_plateau_reduces_learning_rate_to_the_floor():
  config = _train_config()
  config.plateau.update(dict(patience_epochs=2, factor=0.5,
                             min_learning_rate=5e-5))
  optimizer = optimizer_lib.make_optimizer(config, batches_per_epoch=3)
  params = {'w': jnp.ones(3)}
  opt_state = optimizer.init(params)
  rates = []
  for _ in range(10):  # Epochs with a constant loss: no improvement.
    for _ in range(3):
      _, opt_state = optimizer.update({'w': jnp.ones(3)}, opt_state, params,
                                      value=jnp.asarray(1.0))
    rates.append(config.learning_rate
                 * float(optimizer_lib.plateau_scale(opt_state)))
  # Epoch 1 sets the best value; every 2 epochs without improvement halve it.
  np.testing.assert_allclose(
      rates, [2e-4, 2e-4, 1e-4, 1e-4, 5e-5, 5e-5, 5e-5, 5e-5, 5e-5, 5e-5])


def _keras_plateau_config() -> ml_collections.ConfigDict:
  """Fine-tuning's plateau rule: the original demo's callback."""
  config = _train_config(learning_rate=1e-3)
  config.plateau.update(dict(factor=0.25, patience_epochs=1, min_delta=1e-4,
                             min_learning_rate=1e-5))
  return config


def test_plateau_stepped_per_epoch_is_keras_reduce_lr_on_plateau():
  config = _keras_plateau_config()
  optimizer = optimizer_lib.make_optimizer(config, None, 'adam')
  params = {'w': jnp.ones(3)}
  opt_state = optimizer.init(params)
  rates, steps = [], []
  for loss in [1.0, 0.9, 0.89995, 0.95, 0.8, 0.85, 0.85]:
    rates.append(config.learning_rate
                 * float(optimizer_lib.plateau_scale(opt_state)))
    # The updates apply the scale and leave the rule alone, whatever value
    # they carry; only the epoch's value moves it.
    updates, opt_state = optimizer.update({'w': jnp.ones(3)}, opt_state,
                                          params, value=jnp.asarray(-1.0))
    steps.append(-float(updates['w'][0]))
    opt_state = optimizer_lib.step_plateau(opt_state, config.plateau,
                                           config.learning_rate, loss)
  # 0.89995 is no improvement on 0.9 under min_delta 1e-4: the rate falls
  # by 0.25, again after 0.95, and after the first 0.85.
  expected = [1e-3, 1e-3, 1e-3, 2.5e-4, 6.25e-5, 6.25e-5, 1.5625e-5]
  np.testing.assert_allclose(rates, expected, rtol=1e-6)
  # Adam's step on a constant gradient is the learning rate, up to the
  # float32 round-off of its bias corrections (1 - 0.999**t: ~1e-5 relative).
  np.testing.assert_allclose(steps, expected, rtol=1e-4)
  opt_state = optimizer_lib.step_plateau(opt_state, config.plateau,
                                         config.learning_rate, 0.85)
  np.testing.assert_allclose(  # The floor.
      config.learning_rate * float(optimizer_lib.plateau_scale(opt_state)),
      1e-5, rtol=1e-6)


def test_plateau_never_raises_a_rate_below_its_floor():
  config = _keras_plateau_config()
  optimizer = optimizer_lib.make_optimizer(config, None, 'adam',
                                           learning_rate=1e-6)
  opt_state = optimizer.init({'w': jnp.ones(3)})
  for _ in range(4):
    opt_state = optimizer_lib.step_plateau(opt_state, config.plateau, 1e-6,
                                           1.0)
  assert float(optimizer_lib.plateau_scale(opt_state)) == 1.0


def test_unknown_optimizer_fails():
  with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
    optimizer_lib.make_optimizer(_train_config(), 5, 'sgd')


def _run(model_config, train_config, batch, steps):
  optimizer = optimizer_lib.make_optimizer(train_config, batches_per_epoch=5)
  state = state_lib.init_state(model_config, train_config, optimizer, seed=0)
  update = jax.jit(update_lib.make_update_fn(model_config, train_config,
                                             optimizer))
  history = []
  for _ in range(steps):
    state, metrics = update(state, batch)
    history.append(jax.device_get(metrics))
  return state, history


def test_loss_falls_on_a_fixed_batch():
  _, history = _run(helpers.tiny_model_config(),
                    _train_config(learning_rate=1e-2), _batch(), 30)
  assert history[-1]['loss'] < 0.6 * history[0]['loss']
  assert all(h['grads_finite'] == 1.0 for h in history)


def test_float16_uses_dynamic_loss_scaling():
  model_config = helpers.tiny_model_config(
      precision='params=float32,compute=float16,output=float32')
  state, history = _run(model_config, _train_config(), _batch(), 3)
  assert isinstance(state.loss_scale, jmp.DynamicLossScale)
  assert np.isfinite(history[-1]['loss'])
  assert int(state.step) == 3


def test_non_finite_gradients_skip_the_step_and_shrink_the_scale():
  model_config = helpers.tiny_model_config(
      precision='params=float32,compute=float16,output=float32')
  train_config = _train_config()
  optimizer = optimizer_lib.make_optimizer(train_config, batches_per_epoch=5)
  state = state_lib.init_state(model_config, train_config, optimizer, seed=0)
  bad = _batch()._replace(annotations=np.full((4, 10), np.inf, np.float32))
  update = jax.jit(update_lib.make_update_fn(model_config, train_config,
                                             optimizer))
  new_state, metrics = update(state, bad)
  assert float(metrics['grads_finite']) == 0.0
  assert float(new_state.loss_scale.loss_scale) == pytest.approx(
      float(state.loss_scale.loss_scale) / 2)
  for old, new in zip(jax.tree_util.tree_leaves(state.params),
                      jax.tree_util.tree_leaves(new_state.params)):
    np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize('compute', ['bfloat16', 'float16'])
def test_half_precision_training_tracks_float32(compute):
  # Several different batches so the loss curve reflects learning rather than
  # memorising one batch; the same batches and seed for both precisions.
  batches = [_batch(seed=seed) for seed in range(4)]
  train_config = _train_config(learning_rate=1e-2)

  def losses_with(precision):
    model_config = helpers.tiny_model_config(precision=precision)
    optimizer = optimizer_lib.make_optimizer(train_config, batches_per_epoch=4)
    state = state_lib.init_state(model_config, train_config, optimizer, seed=0)
    update = jax.jit(update_lib.make_update_fn(model_config, train_config,
                                               optimizer))
    history = []
    for step in range(40):
      state, metrics = update(state, batches[step % 4])
      history.append(jax.device_get(metrics))
    return state, np.array([h['loss'] for h in history]), history

  _, full, _ = losses_with('params=float32,compute=float32,output=float32')
  state, half, history = losses_with(
      f'params=float32,compute={compute},output=float32')
  # Master params stay float32.
  assert all(p.dtype == jnp.float32
             for p in jax.tree_util.tree_leaves(state.params))
  finite = np.array([h['grads_finite'] for h in history])
  skipped = int(np.argmax(finite > 0))
  if compute == 'float16':
    # The initial scale overflows float16; dynamic scaling skips those first
    # steps, halving the scale each time, and then never again here.
    assert isinstance(state.loss_scale, jmp.DynamicLossScale)
    assert skipped <= 3 and finite[skipped:].all()
  else:
    assert finite.all()
  # The loss falls (mean of the last two epochs of 4 batches against the
  # first).
  assert half[-8:].mean() < 0.7 * half[:4].mean()
  # ... and stays near the float32 run's after as many applied updates:
  # half precision carries ~3 significant digits, so a few percent of drift
  # is round-off, while a broken policy (a softmax in half precision
  # overflowing, unscaled float16 gradients) leaves the loss near its start.
  np.testing.assert_allclose(half[-8:].mean(),
                             full[len(full) - skipped - 8:len(full) - skipped
                                  ].mean(), rtol=0.1)
