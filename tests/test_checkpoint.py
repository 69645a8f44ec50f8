"""Checkpoint files: round trip, strict structure, pruning, params access."""

import jax
import numpy as np
import pytest

import proteinbert
from proteinbert import config as config_lib
from proteinbert.training import checkpoint
from proteinbert.training import optimizer as optimizer_lib
from proteinbert.training import state as state_lib
from tests import helpers


def _state(model_config):
  train_config = config_lib.get_train_config()
  optimizer = optimizer_lib.make_optimizer(train_config, batches_per_epoch=4)
  return state_lib.init_state(model_config, train_config, optimizer, seed=3)


def test_round_trip_is_exact(tmp_path):
  model_config = helpers.tiny_model_config()
  state = _state(model_config)._replace(step=np.int32(7))
  loader_state = {'rng': np.arange(6, dtype=np.uint64), 'num_batches':
                  np.int64(7)}
  path = checkpoint.save(str(tmp_path), state, loader_state, model_config,
                         {'epoch': 1})
  assert path.endswith('ckpt_0000000007.npz')
  restored = checkpoint.restore(path, _state(model_config))
  for want, got in zip(jax.tree_util.tree_leaves(state),
                       jax.tree_util.tree_leaves(restored.state)):
    np.testing.assert_array_equal(got, want)
  assert restored.metadata == {'epoch': 1, 'step': 7}
  np.testing.assert_array_equal(restored.loader_state['rng'],
                                loader_state['rng'])
  # A checkpoint is also a parameter file.
  model = proteinbert.load_pretrained(path)
  assert model.config.local_dim == model_config.local_dim


def test_other_architecture_fails_loudly(tmp_path):
  path = checkpoint.save(str(tmp_path), _state(helpers.tiny_model_config()),
                         {}, helpers.tiny_model_config(), {})
  other = helpers.tiny_model_config(num_blocks=3, local_dim=8)
  with pytest.raises(ValueError) as e:
    checkpoint.restore(path, _state(other))
  assert 'missing' in str(e.value) and 'block_3' in str(e.value)
  assert 'has shape' in str(e.value)


def test_prune_keeps_latest_and_chosen(tmp_path):
  model_config = helpers.tiny_model_config()
  state = _state(model_config)
  for step in (10, 20, 30, 40, 50):
    checkpoint.save(str(tmp_path), state._replace(step=np.int32(step)), {},
                    model_config, {})
  checkpoint.prune(str(tmp_path), keep=lambda step: step % 20 == 0)
  assert checkpoint.list_steps(str(tmp_path)) == [20, 40, 50]


def test_partial_files_are_never_listed(tmp_path):
  (tmp_path / '.ckpt_0000000099.npz.abc.tmp').write_bytes(b'partial')
  assert checkpoint.list_steps(str(tmp_path)) == []
  assert checkpoint.latest(str(tmp_path)) is None
