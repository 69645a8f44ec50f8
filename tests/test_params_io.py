"""Flat .npz parameter files with strict key checking, and hostile ones."""

import json
import math
import os

import jax
import numpy as np
import pytest

from proteinbert import model as model_lib
from proteinbert import params_io
from tests import helpers
from tests import hostile_files


def test_round_trip_with_config(tmp_path):
  config = helpers.tiny_model_config(mask_padding=True)
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  path = str(tmp_path / 'p.npz')
  params_io.save_params(path, params, config)
  loaded, loaded_config = params_io.load_params(path)
  assert loaded_config.to_dict() == config.to_dict()
  flat = params_io.flatten(params)
  assert params_io.flatten(loaded).keys() == flat.keys()
  for key, value in flat.items():
    np.testing.assert_array_equal(params_io.flatten(loaded)[key], value)
  with np.load(path) as data:
    assert 'protein_bert/block_1/local/narrow_conv//w' in data.files


def test_check_structure_lists_every_problem():
  config = helpers.tiny_model_config()
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  broken = jax.tree_util.tree_map(lambda x: x, params)
  del broken['protein_bert/token_head']
  broken['protein_bert/extra'] = {'w': np.zeros(2)}
  broken['protein_bert/annotation_head'] = {
      'w': np.zeros((32, 11)), 'b': np.zeros(10)}
  with pytest.raises(ValueError) as e:
    params_io.check_structure(broken, params, 'ckpt.npz')
  message = str(e.value)
  assert 'ckpt.npz' in message
  assert 'missing' in message and 'protein_bert/token_head//w' in message
  assert 'unexpected' in message and 'protein_bert/extra//w' in message
  assert 'annotation_head//w has shape (32, 11)' in message


def test_unreadable_file(tmp_path):
  path = tmp_path / 'bad.npz'
  path.write_bytes(b'PK\x03\x04 not really a zip')
  with pytest.raises(ValueError, match='bad.npz'):
    params_io.load_params(str(path))


# Hostile files.


@pytest.fixture(scope='module')
def tiny():
  config = helpers.tiny_model_config()
  return model_lib.init_params(config, jax.random.PRNGKey(0)), config


def _save(path, params, config, extra=None, stored_config=None):
  """save_params, with extra entries and the stored config replaced."""
  arrays = params_io.flatten(params)
  arrays[params_io.CONFIG_KEY] = np.array(
      stored_config if stored_config is not None else config.to_json())
  arrays.update(extra or {})
  np.savez(path, **arrays)
  return str(path)


def test_unneeded_entries_are_never_decompressed(tiny, tmp_path):
  """A 64 MB deflate bomb beside the params: load_params skips it, and
  reading it is refused by its header."""
  params, config = tiny
  path = _save(tmp_path / 'p.npz', params, config)
  hostile_files.add_zeros_entry(path, 'junk', (16 << 20,))
  assert os.path.getsize(path) < (1 << 20)
  loaded, _ = params_io.load_params(path)
  for key, value in params_io.flatten(params).items():
    np.testing.assert_array_equal(params_io.flatten(loaded)[key], value)
  with pytest.raises(params_io.CorruptFileError, match=r"p\.npz: entry 'junk'"
                     ' declares .*zip bomb'):
    with params_io.NpzReader(path) as reader:
      reader.read('junk')


def test_a_declared_huge_model_is_a_zip_bomb(tiny, tmp_path):
  """Headers that match the stored config's shapes, but a config of 2**20
  annotations whose 128 MB annotation layers are deflated zeros."""
  params, config = tiny
  big = helpers.tiny_model_config(num_annotations=1 << 20)
  flat = params_io.flatten(params)
  layers = ('protein_bert/annotation_input//w',
            'protein_bert/annotation_head//w',
            'protein_bert/annotation_head//b')
  shapes = {f'{module}//{name}': value.shape for module, values in
            params_io.param_shapes(big).items() for name, value in
            values.items()}
  path = str(tmp_path / 'big.npz')
  np.savez(path, **{k: v for k, v in flat.items() if k not in layers},
           **{params_io.CONFIG_KEY: np.array(big.to_json())})
  for key in layers:
    hostile_files.add_zeros_entry(path, key, shapes[key])
  with pytest.raises(params_io.CorruptFileError, match=r'big\.npz: .*'
                     'annotation_.* declares .*zip bomb'):
    params_io.load_params(path)


def test_corrupt_entries_name_the_file_and_entry(tiny, tmp_path):
  params, config = tiny
  path = tmp_path / 'p.npz'
  _save(path, params, config)
  data = bytearray(path.read_bytes())
  start = data.index(b'protein_bert/token_head//w.npy')
  data[start + 200] ^= 0xFF  # Inside its array data: the CRC fails.
  path.write_bytes(bytes(data))
  with pytest.raises(params_io.CorruptFileError,
                     match=r"p\.npz: entry 'protein_bert/token_head//w'"):
    params_io.load_params(str(path))


@pytest.mark.parametrize('value, match', [
    (np.array(['a', 'b']), 'has dtype <U1, expected floating point'),
    (np.zeros(26, np.int32), 'has dtype int32, expected floating point'),
    (np.zeros(26, np.complex64), 'has dtype complex64, expected floating'),
    (np.zeros(26, object), "has dtype object; only plain numbers"),
    (np.zeros(27, np.float32), r'has shape \(27,\), expected \(26,\)'),
    (np.full(26, np.nan, np.float32), 'NaN or infinite values'),
    (np.full(26, -np.inf, np.float32), 'NaN or infinite values'),
])
def test_impossible_params_are_refused(tiny, tmp_path, value, match):
  params, config = tiny
  path = _save(tmp_path / 'p.npz', params, config,
               {'protein_bert/token_head//b': value})
  with pytest.raises(ValueError, match=r'p\.npz.*' + match):
    params_io.load_params(path)


@pytest.mark.parametrize('stored, match', [
    ('{"local_dim": ', '__model_config__ is not valid JSON'),
    ('[' * 100_000, '__model_config__ is not valid JSON'),
    ('[16]', '__model_config__ must be a JSON object'),
    ({'layer_norm_eps': -1}, 'model.layer_norm_eps must be a positive'),
    ({'layer_norm_eps': math.nan}, 'model.layer_norm_eps must be a positive'),
    ({'local_dim': 0}, 'model.local_dim must be positive'),
    ({'local_dim': 16.5}, "'local_dim'"),
    ({'local_dim': True}, 'model.local_dim must be a int, got bool'),
    ({'local_dim': None}, 'model.local_dim must be a int, got NoneType'),
    ({'num_heads': 3}, 'global_dim .* divisible by model.num_heads'),
    ({'conv_kernel_size': 8}, 'conv_kernel_size must be odd'),
    ({'activation': 'swish'}, 'Unknown activation'),
    ({'precision': 'params=float99'}, 'Invalid precision'),
    ({'depth': 3}, r"unknown model config keys \['depth'\]"),
])
def test_impossible_stored_configs_are_refused(tiny, tmp_path, stored, match):
  """Text is stored as is; a dict changes keys of the real config."""
  params, config = tiny
  if isinstance(stored, dict):
    stored = json.dumps(dict(json.loads(config.to_json()), **stored))
  path = _save(tmp_path / 'p.npz', params, config, stored_config=stored)
  with pytest.raises(ValueError, match=r'p\.npz.*' + match):
    params_io.load_params(path)


def test_a_given_config_is_checked_and_names_the_file(tiny, tmp_path):
  params, config = tiny
  path = _save(tmp_path / 'p.npz', params, config)
  with pytest.raises(ValueError, match=r'p\.npz does not match the model: .*'
                     'has shape'):
    params_io.load_params(path, helpers.tiny_model_config(local_dim=8))
  with pytest.raises(ValueError, match=r'config given for .*p\.npz: '
                     'model.layer_norm_eps'):
    params_io.load_params(path, helpers.tiny_model_config(layer_norm_eps=0.0))
