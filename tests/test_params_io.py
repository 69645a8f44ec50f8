"""Flat .npz parameter files with strict key checking."""

import jax
import numpy as np
import pytest

from proteinbert import model as model_lib
from proteinbert import params_io
from tests import helpers


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
