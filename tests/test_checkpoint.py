"""Checkpoint files: round trip, strict structure, pruning, params access,
damaged files and resuming past them."""

import os

import jax
import numpy as np
import pytest

import proteinbert
from proteinbert import config as config_lib
from proteinbert import params_io
from proteinbert.training import checkpoint
from proteinbert.training import loop
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


# Damaged checkpoints.


def _truncate(path, keep=0.5):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:int(len(data) * keep)])


def _save_steps(directory, model_config, steps):
  state = _state(model_config)
  return [checkpoint.save(str(directory), state._replace(step=np.int32(s)),
                          {'rng': np.arange(3, dtype=np.uint64)},
                          model_config, {}) for s in steps]


def test_a_truncated_checkpoint_is_a_corrupt_file(tmp_path):
  model_config = helpers.tiny_model_config()
  path, = _save_steps(tmp_path, model_config, [5])
  _truncate(path)
  with pytest.raises(params_io.CorruptFileError, match='ckpt_0000000005.npz'):
    checkpoint.restore(path, _state(model_config))


def test_resume_skips_damaged_newer_checkpoints(tmp_path, caplog):
  model_config = helpers.tiny_model_config()
  good, bad1, bad2 = _save_steps(tmp_path, model_config, [5, 10, 15])
  _truncate(bad1)
  _truncate(bad2, keep=0.99)
  path, restored = checkpoint.restore_latest(str(tmp_path),
                                             _state(model_config))
  assert path == good and int(restored.state.step) == 5
  assert 'ckpt_0000000015.npz' in caplog.text
  assert 'ckpt_0000000010.npz' in caplog.text
  # Only the process that writes checkpoints sets the damaged ones aside.
  assert checkpoint.list_steps(str(tmp_path)) == [5, 10, 15]
  checkpoint.restore_latest(str(tmp_path), _state(model_config),
                            set_aside_unreadable=True)
  assert checkpoint.list_steps(str(tmp_path)) == [5]
  assert os.path.exists(bad1 + '.unreadable')
  assert os.path.exists(bad2 + '.unreadable')


def test_resume_with_no_readable_checkpoint_fails(tmp_path):
  model_config = helpers.tiny_model_config()
  with pytest.raises(ValueError, match='No readable checkpoint'):
    checkpoint.restore_latest(str(tmp_path), _state(model_config))
  path, = _save_steps(tmp_path, model_config, [5])
  _truncate(path)
  with pytest.raises(ValueError, match='No readable checkpoint.*'
                     'ckpt_0000000005.npz'):
    checkpoint.restore_latest(str(tmp_path), _state(model_config),
                              set_aside_unreadable=True)
  assert os.path.exists(path)


def test_resume_does_not_skip_a_checkpoint_of_another_model(tmp_path):
  _save_steps(tmp_path, helpers.tiny_model_config(), [5])
  _save_steps(tmp_path, helpers.tiny_model_config(local_dim=8), [10])
  with pytest.raises(ValueError, match='ckpt_0000000010.npz does not match'):
    checkpoint.restore_latest(str(tmp_path),
                              _state(helpers.tiny_model_config()))


def _rewrite(path, **entries):
  arrays = dict(np.load(path))
  arrays.update(entries)
  np.savez(path, **arrays)


@pytest.mark.parametrize('entries, match', [
    ({'__checkpoint__': np.array('{"step": ')}, '__checkpoint__ is not valid'),
    ({'__checkpoint__': np.array('[]')}, '__checkpoint__ must be a JSON'),
    ({'__checkpoint__': np.zeros(3)}, '__checkpoint__ must be a JSON string'),
    ({'protein_bert/token_head//b': np.full(26, np.nan, np.float32)},
     'NaN or infinite'),
])
def test_damaged_entries_are_corrupt_files(tmp_path, entries, match):
  model_config = helpers.tiny_model_config()
  path, = _save_steps(tmp_path, model_config, [5])
  _rewrite(path, **entries)
  with pytest.raises(params_io.CorruptFileError,
                     match=r'ckpt_0000000005\.npz.*' + match):
    checkpoint.restore(path, _state(model_config))


def test_state_entries_are_checked_before_they_are_read(tmp_path):
  model_config = helpers.tiny_model_config()
  path, = _save_steps(tmp_path, model_config, [5])
  _rewrite(path, **{'train_state/.step': np.zeros((1 << 20,), np.int32)})
  with pytest.raises(ValueError, match=r'train_state/\.step is int32\[1048576\]'
                     r', expected int32\[\]'):
    checkpoint.restore(path, _state(model_config))


def test_pretraining_resumes_from_the_newest_readable_checkpoint(tmp_path,
                                                                 caplog):
  config = helpers.tiny_pretrain_config(
      helpers.write_tiny_dataset(str(tmp_path / 'tiny.h5')))
  # Checkpoints after each of the first two 3-step epochs (one episode, so
  # one compilation).
  config.train.num_steps = 6
  config.checkpoint.update(dict(every_epochs=1, keep_every=1))
  workdir = tmp_path / 'run'
  loop.pretrain(config, str(workdir))
  ckpt_dir = str(workdir / 'checkpoints')
  assert checkpoint.list_steps(ckpt_dir) == [3, 6]
  newest = checkpoint.path_for(ckpt_dir, 6)
  want = params_io.flatten(params_io.load_params(newest)[0])
  _truncate(newest)

  loop.pretrain(config, str(workdir))
  assert f'Skipping the damaged checkpoint {newest}' in caplog.text
  assert os.path.exists(newest + '.unreadable')
  assert checkpoint.list_steps(ckpt_dir) == [3, 6]
  got = params_io.flatten(params_io.load_params(newest)[0])
  for key in want:  # Resuming is exact, so steps 4-6 are trained alike.
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
