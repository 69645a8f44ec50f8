"""Parity with the original Keras ProteinBERT (protein-bert 1.0.1).

The original model is built with random weights, dumped in the official
pickle format, loaded here, and both models are run on the same sequences at
several lengths. Needs the [parity] extra (TensorFlow + tf-keras) and the
original wheel (see tests/original_package.py); skipped without TensorFlow.
"""

import pickle

import numpy as np
import pytest

import proteinbert
from proteinbert import keras_weights
from proteinbert import tokenization
from tests import original_package

NUM_ANNOTATIONS = 8943  # The published size.
SEQS = [
    'MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ',
    'acdefghiklmnpqrstvwy',            # Lower case: <OTHER> by default.
    'MBZOJXU*-ACD\u00e9K',              # Non-standard letters and symbols.
    'M',
    'GSHMSLFDFFKNKGSAAATTPPPVDPKLEKL' * 30,  # Needs cropping.
]
LENGTHS = (16, 100, 512)


@pytest.fixture(scope='module')
def original():
  model_module = original_package.load_module('conv_and_global_attention_model')
  tokenization_module = original_package.load_module('tokenization')
  return model_module, tokenization_module


@pytest.fixture(scope='module')
def keras_dump(original, tmp_path_factory):
  """An official-format pickle of a Keras model with random weights."""
  model_module, _ = original
  model = model_module.create_model(LENGTHS[0], tokenization.VOCAB_SIZE,
                                    NUM_ANNOTATIONS)
  rng = np.random.default_rng(0)
  # Random, non-trivial values everywhere (biases and LayerNorm offsets too),
  # so a mis-mapped weight cannot hide behind a zero or one initialiser.
  weights = [w + rng.normal(0, 0.05, w.shape).astype(np.float32)
             for w in model.get_weights()]
  path = tmp_path_factory.mktemp('keras') / 'dump.pkl'
  with open(path, 'wb') as f:
    pickle.dump((NUM_ANNOTATIONS, weights, []), f)
  return path, weights


def _original_tokens(tokenization_module, seqs, seq_len, offsets):
  pad = tokenization_module.additional_token_to_index['<PAD>']
  rows = []
  for seq, offset in zip(seqs, offsets):
    tokens = tokenization_module.tokenize_seq(seq)[offset:offset + seq_len]
    rows.append(tokens + [pad] * (seq_len - len(tokens)))
  return np.array(rows, dtype=np.int32)


def _crop_offsets(seq_len):
  lengths = tokenization.tokenized_lengths(SEQS)
  return np.minimum(np.maximum(lengths - seq_len, 0), 7)


def _keras_outputs(original, weights, tokens, annotations):
  model_module, _ = original
  model = model_module.create_model(tokens.shape[1], tokenization.VOCAB_SIZE,
                                    NUM_ANNOTATIONS)
  model.set_weights(weights)
  hidden_model = model_module.get_model_with_hidden_layers_as_outputs(model)
  token_probs, annotation_probs = model.predict([tokens, annotations],
                                                verbose=0)
  local_hidden, global_hidden = hidden_model.predict([tokens, annotations],
                                                     verbose=0)
  return token_probs, annotation_probs, local_hidden, global_hidden


def _annotations(num):
  rng = np.random.default_rng(1)
  return (rng.random((num, NUM_ANNOTATIONS)) < 0.002).astype(np.float32)


def test_tokenizer_matches_original(original):
  _, tokenization_module = original
  assert tokenization_module.ALL_AAS == tokenization.AMINO_ACIDS
  for name, index in tokenization_module.token_to_index.items():
    assert tokenization.VOCAB[index] == name
  for seq_len in LENGTHS:
    offsets = _crop_offsets(seq_len)
    np.testing.assert_array_equal(
        proteinbert.tokenize(SEQS, seq_len, crop_offsets=offsets),
        _original_tokens(tokenization_module, SEQS, seq_len, offsets))
    bytes_seqs = [s.encode('utf-8') for s in SEQS]
    np.testing.assert_array_equal(
        proteinbert.tokenize(bytes_seqs, seq_len, crop_offsets=offsets),
        _original_tokens(tokenization_module, bytes_seqs, seq_len, offsets))


@pytest.mark.parametrize('seq_len', LENGTHS)
def test_outputs_match_keras(original, keras_dump, seq_len):
  path, weights = keras_dump
  tokens = proteinbert.tokenize(SEQS, seq_len,
                                crop_offsets=_crop_offsets(seq_len))
  annotations = _annotations(len(SEQS))
  expected = _keras_outputs(original, weights, tokens, annotations)

  model = proteinbert.load_pretrained(str(path))
  out = model.predict(tokens, annotations, batch_size=4)

  assert out.local_hidden.shape == (len(SEQS), seq_len, 1562)
  assert out.global_hidden.shape == (len(SEQS), 15599)
  np.testing.assert_allclose(out.token_probs, expected[0], rtol=0, atol=1e-5)
  np.testing.assert_allclose(out.annotation_probs, expected[1], rtol=0,
                             atol=1e-5)
  # LayerNorm outputs are O(1) rather than in [0, 1], so float32 round-off
  # reaches ~1.2e-5 there (measured); probabilities are held to 1e-5.
  np.testing.assert_allclose(out.local_hidden, expected[2], rtol=0, atol=5e-5)
  np.testing.assert_allclose(out.global_hidden, expected[3], rtol=0,
                             atol=5e-5)


def test_parameter_count_matches_keras(original, keras_dump):
  _, weights = keras_dump
  model = proteinbert.load_pretrained(str(keras_dump[0]))
  num_params = sum(x.size for x in
                   proteinbert.model.jax.tree_util.tree_leaves(model.params))
  assert num_params == sum(w.size for w in weights) == 15_981_321


def test_export_loads_into_keras(original, keras_dump, tmp_path):
  """Our export is read by plain pickle, as the original package reads it."""
  path, weights = keras_dump
  model = proteinbert.load_pretrained(str(path))
  exported = tmp_path / 'exported.pkl'
  keras_weights.save_keras_pickle(str(exported), model.params, model.config)
  with open(exported, 'rb') as f:
    n_annotations, exported_weights, _ = pickle.load(f)
  assert n_annotations == NUM_ANNOTATIONS
  assert len(exported_weights) == len(weights)
  for got, want in zip(exported_weights, weights):
    np.testing.assert_array_equal(got, want)

  tokens = proteinbert.tokenize(SEQS[:3], 32)
  annotations = _annotations(3)
  keras_token_probs, keras_annotation_probs, _, _ = _keras_outputs(
      original, exported_weights, tokens, annotations)
  out = model.predict(tokens, annotations, with_hidden=False)
  np.testing.assert_allclose(out.token_probs, keras_token_probs, atol=1e-5)
  np.testing.assert_allclose(out.annotation_probs, keras_annotation_probs,
                             atol=1e-5)
