"""The notebook entry point: load_pretrained, tokenize, predict."""

import jax
import numpy as np
import pytest

import proteinbert
from proteinbert import keras_weights
from proteinbert import model as model_lib
from proteinbert import params_io
from tests import helpers

SEQS = ['MKTAYIAKQRQISFVKSHFSRQ', 'ACDEFGHIKLMNPQRSTVWY', 'M', 'GGGSGGGS' * 4]


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  config = helpers.tiny_model_config()
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  directory = tmp_path_factory.mktemp('weights')
  npz, pkl = str(directory / 'p.npz'), str(directory / 'p.pkl')
  params_io.save_params(npz, params, config)
  keras_weights.save_keras_pickle(pkl, params, config)
  return config, params, npz, pkl


def test_both_formats_give_the_same_predictions(tiny):
  _, _, npz, pkl = tiny
  tokens = proteinbert.tokenize(SEQS, seq_len=40)
  a = proteinbert.load_pretrained(npz).predict(tokens)
  b = proteinbert.load_pretrained(pkl).predict(tokens)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def test_predict_shapes_and_batching(tiny):
  config, _, npz, _ = tiny
  model = proteinbert.load_pretrained(npz)
  tokens = proteinbert.tokenize(SEQS, seq_len=40)
  annotations = np.eye(4, config.num_annotations)
  whole = model.predict(tokens, annotations, batch_size=8)
  pieces = model.predict(tokens, annotations, batch_size=3)
  assert whole.token_probs.shape == (4, 40, 26)
  assert whole.annotation_probs.shape == (4, 10)
  assert whole.local_hidden.shape == (4, 40, 2 * 2 * 16 + 26)
  assert whole.global_hidden.shape == (4, 5 * 32 + 10)
  for x, y in zip(whole, pieces):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(whole.token_probs.sum(-1), 1.0, rtol=1e-5)
  lean = model.predict(tokens, with_hidden=False)
  assert lean.local_hidden is None and lean.global_hidden is None


def test_forward_gives_per_layer_access(tiny):
  _, _, npz, _ = tiny
  model = proteinbert.load_pretrained(npz)
  out = model.forward(proteinbert.tokenize(SEQS, seq_len=24))
  assert len(out.local_hidden) == 4 and out.local_hidden[0].shape == (4, 24, 16)
  assert len(out.global_hidden) == 5 and out.global_hidden[0].shape == (4, 32)


def test_bad_inputs(tiny):
  config, _, npz, _ = tiny
  model = proteinbert.load_pretrained(npz)
  tokens = proteinbert.tokenize(SEQS, seq_len=24)
  with pytest.raises(ValueError, match='annotations must have shape'):
    model.predict(tokens, np.zeros((4, 3)))
  with pytest.raises(ValueError, match='int array'):
    model.predict(tokens.astype(np.float32))
  with pytest.raises(ValueError, match='token indices'):
    model.predict(tokens + 30)
  with pytest.raises(ValueError, match='at least one'):
    model.predict(np.zeros((0, 8), np.int32))


def test_config_mismatch_is_a_clear_error(tiny):
  _, params, _, _ = tiny
  other = helpers.tiny_model_config(local_dim=8)
  with pytest.raises(ValueError, match='does not match the model'):
    proteinbert.PretrainedModel(params, other)


def test_export_converts_between_formats(tiny, tmp_path):
  config, params, npz, pkl = tiny
  proteinbert.inference.export(npz, str(tmp_path / 'out.pkl'), 'keras')
  proteinbert.inference.export(str(tmp_path / 'out.pkl'),
                               str(tmp_path / 'back.npz'), 'npz')
  back, back_config = params_io.load_params(str(tmp_path / 'back.npz'))
  assert back_config.local_dim == config.local_dim
  for key, value in params_io.flatten(params).items():
    np.testing.assert_array_equal(params_io.flatten(back)[key], value)
  with pytest.raises(ValueError, match='Unknown format'):
    proteinbert.inference.export(npz, str(tmp_path / 'x'), 'onnx')
  assert not (tmp_path / 'x').exists()
