"""Official pickle format: loading, export, round trip and bad files."""

import pickle

import jax
import numpy as np
import pytest

from proteinbert import config as config_lib
from proteinbert import keras_weights
from proteinbert import model as model_lib
from proteinbert import params_io
from tests import helpers


@pytest.fixture(scope='module')
def tiny():
  config = helpers.tiny_model_config()
  return model_lib.init_params(config, jax.random.PRNGKey(0)), config


def _dump(path, contents, protocol=None):
  with open(path, 'wb') as f:
    pickle.dump(contents, f, protocol=protocol)
  return str(path)


def test_round_trip_is_identical(tiny, tmp_path):
  params, config = tiny
  path = str(tmp_path / 'w.pkl')
  keras_weights.save_keras_pickle(path, params, config)
  loaded, loaded_config = keras_weights.load_keras_pickle(path)
  assert params_io.flatten(loaded).keys() == params_io.flatten(params).keys()
  for key, value in params_io.flatten(params).items():
    np.testing.assert_array_equal(params_io.flatten(loaded)[key], value)
  for key in ('num_annotations', 'num_blocks', 'local_dim', 'global_dim',
              'num_heads', 'key_size', 'conv_kernel_size', 'vocab_size'):
    assert loaded_config[key] == config[key]


def test_export_names_numpy_core_for_numpy1_readers(tiny, tmp_path):
  params, config = tiny
  path = tmp_path / 'w.pkl'
  keras_weights.save_keras_pickle(str(path), params, config)
  data = path.read_bytes()
  assert b'numpy.core.multiarray' in data and b'numpy._core' not in data


def test_accepts_numpy2_pickles(tiny, tmp_path):
  """A plain pickle.dump under numpy 2 names numpy._core.*."""
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  for protocol in (2, 4, 5):
    path = _dump(tmp_path / f'p{protocol}.pkl',
                 (config.num_annotations, weights, [np.int64(3)]))
    loaded, _ = keras_weights.load_keras_pickle(path)
    np.testing.assert_array_equal(
        loaded['protein_bert/token_head']['w'],
        params['protein_bert/token_head']['w'])


def test_embedding_first_order_is_recognised(tiny, tmp_path):
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  reordered = [weights[2], weights[0], weights[1]] + weights[3:]
  loaded, _ = keras_weights.params_from_keras_weights(reordered)
  np.testing.assert_array_equal(
      loaded['protein_bert/token_embedding']['embeddings'],
      params['protein_bert/token_embedding']['embeddings'])


def test_truncated_file(tiny, tmp_path):
  params, config = tiny
  path = tmp_path / 'w.pkl'
  keras_weights.save_keras_pickle(str(path), params, config)
  truncated = tmp_path / 'truncated.pkl'
  truncated.write_bytes(path.read_bytes()[:5000])
  with pytest.raises(ValueError, match='truncated.pkl'):
    keras_weights.load_keras_pickle(str(truncated))


def test_wrong_structure(tmp_path):
  with pytest.raises(ValueError, match='triple'):
    keras_weights.load_keras_pickle(_dump(tmp_path / 'a.pkl', [1, 2]))
  with pytest.raises(ValueError, match='floating-point'):
    keras_weights.load_keras_pickle(
        _dump(tmp_path / 'b.pkl', (10, [np.zeros(3, np.int32)], [])))
  with pytest.raises(ValueError, match='cannot be a ProteinBERT'):
    keras_weights.load_keras_pickle(
        _dump(tmp_path / 'c.pkl', (10, [np.zeros(3, np.float32)] * 9, [])))


def test_wrong_shape_names_the_layer(tiny, tmp_path):
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  weights[7] = np.zeros((5, 16, 16), np.float32)  # wide-conv-block1 kernel.
  with pytest.raises(ValueError, match=r'wide-conv-block1/kernel.*\(5, 16, 16\)'):
    keras_weights.load_keras_pickle(
        _dump(tmp_path / 'w.pkl', (config.num_annotations, weights, [])))


def test_annotation_count_mismatch(tiny, tmp_path):
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  with pytest.raises(ValueError, match='n_annotations'):
    keras_weights.load_keras_pickle(_dump(tmp_path / 'w.pkl',
                                          (99, weights, [])))


def test_published_layout_has_145_arrays():
  config = config_lib.get_model_config()
  assert len(keras_weights.keras_layout(config.num_blocks)) == 145


def test_ablated_model_cannot_be_exported(tmp_path):
  config = helpers.tiny_model_config(global_attention=False)
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match='global_attention'):
    keras_weights.save_keras_pickle(str(tmp_path / 'w.pkl'), params, config)
  assert not (tmp_path / 'w.pkl').exists()


@pytest.mark.parametrize('value', [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_weights_are_refused(tiny, tmp_path, value):
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  weights[7] = weights[7].astype(np.float64)  # wide-conv-block1 kernel.
  weights[7][0, 0, 0] = value
  path = _dump(tmp_path / 'w.pkl', (config.num_annotations, weights, []))
  with pytest.raises(ValueError, match=r'w\.pkl.*wide-conv-block1/kernel.*'
                     'infinite'):
    keras_weights.load_keras_pickle(path)


@pytest.mark.parametrize('n_annotations', [True, 0, 10**30, 'ten', [10]])
def test_n_annotations_must_be_a_positive_int(tiny, tmp_path, n_annotations):
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  path = _dump(tmp_path / 'w.pkl', (n_annotations, weights, []))
  with pytest.raises(ValueError, match=r'w\.pkl: n_annotations must be a '
                     'positive int'):
    keras_weights.load_keras_pickle(path)


def test_impossible_inferred_architecture_names_the_file(tiny, tmp_path):
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  # Wq [H, G, K] with 3 heads, which do not divide global_dim 32.
  weights[_WQ_BLOCK1] = np.zeros((3, 32, 8), np.float32)
  path = _dump(tmp_path / 'w.pkl', (config.num_annotations, weights, []))
  with pytest.raises(ValueError, match=r'w\.pkl: model\.global_dim .*'
                     'num_heads'):
    keras_weights.load_keras_pickle(path)


_WQ_BLOCK1 = [w.keras_name for w in keras_weights.keras_layout(1)].index(
    'global-attention-block1/Wq')


def test_optimizer_state_of_the_original_loads(tiny, tmp_path):
  """Keras' Adam state: the step count (int64) and moments (float32)."""
  params, config = tiny
  weights = keras_weights.keras_weights_from_params(params, config)
  optimizer = [np.array(92400, np.int64)] + weights + weights
  for protocol in (2, 4, 5):
    path = _dump(tmp_path / f'w{protocol}.pkl', (config.num_annotations,
                                                 weights, optimizer))
    loaded, _ = keras_weights.load_keras_pickle(path)
    np.testing.assert_array_equal(loaded['protein_bert/token_head']['w'],
                                  params['protein_bert/token_head']['w'])
