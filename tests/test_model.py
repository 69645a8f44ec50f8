"""Tests for the Haiku ProteinBERT model and its blocks."""

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proteinbert import config as config_lib
from proteinbert import model as model_lib
from proteinbert import tokenization
from tests import helpers


def _apply(config, params, tokens, annotations=None):
  if annotations is None:
    annotations = np.zeros((tokens.shape[0], config.num_annotations))
  return hk.without_apply_rng(hk.transform(model_lib.forward_fn(config))).apply(
      params, jnp.asarray(tokens), jnp.asarray(annotations, jnp.float32))


def test_published_size_has_the_keras_parameter_count():
  config = config_lib.get_model_config()
  shapes = jax.eval_shape(
      lambda: model_lib.init_params(config, jax.random.PRNGKey(0)))
  assert model_lib.num_params(shapes) == 15_981_321


def test_same_params_apply_at_any_length():
  config = config_lib.get_model_config()
  params = model_lib.init_params(config, jax.random.PRNGKey(0), seq_len=16)
  for seq_len in (16, 100, 1024):
    tokens = tokenization.tokenize(['MKV' * 2000], seq_len)
    out = _apply(config, params, tokens)
    chex.assert_shape(out.token_logits, (1, seq_len, 26))
    chex.assert_shape(out.annotation_logits, (1, 8943))
    assert len(out.local_hidden) == 12 and len(out.global_hidden) == 13
    chex.assert_tree_all_finite(out)


def test_concatenated_hidden_has_the_originals_widths():
  config = config_lib.get_model_config()
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  out = _apply(config, params, tokenization.tokenize(['MKV'], 10))
  local, global_ = model_lib.concatenated_hidden(out)
  chex.assert_shape(local, (1, 10, 1562))
  chex.assert_shape(global_, (1, 15599))
  # The last channels are the token softmax and the annotation sigmoid.
  np.testing.assert_allclose(local[..., -26:].sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(global_[:, -8943:],
                             jax.nn.sigmoid(out.annotation_logits), rtol=1e-6)


def test_params_do_not_depend_on_length_or_batch():
  config = helpers.tiny_model_config()
  a = jax.eval_shape(lambda: model_lib.init_params(
      config, jax.random.PRNGKey(0), seq_len=8, batch_size=1))
  b = jax.eval_shape(lambda: model_lib.init_params(
      config, jax.random.PRNGKey(0), seq_len=300, batch_size=5))
  assert jax.tree_util.tree_map(lambda x: x.shape, a) == (
      jax.tree_util.tree_map(lambda x: x.shape, b))


@pytest.mark.parametrize('key,value,match', [
    ('num_heads', 3, 'divisible'),
    ('conv_kernel_size', 8, 'odd'),
    ('num_blocks', 0, 'positive'),
    ('activation', 'swish', 'activation'),
    ('precision', 'params=float32,compute=foo', 'precision'),
])
def test_bad_config_is_a_clear_error(key, value, match):
  config = helpers.tiny_model_config(**{key: value})
  with pytest.raises(ValueError, match=match):
    model_lib.forward_fn(config)


def test_wrong_annotation_width_fails_the_shape_assertion():
  config = helpers.tiny_model_config()
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  with pytest.raises(AssertionError):
    _apply(config, params, tokenization.tokenize(['MK'], 6), np.zeros((1, 3)))


def _padded_outputs(config, params, seq, lengths):
  outs = []
  for seq_len in lengths:
    out = _apply(config, params, tokenization.tokenize([seq], seq_len))
    n = len(seq) + 2
    outs.append((out.token_logits[0, :n], out.annotation_logits[0]))
  return outs


def test_mask_padding_makes_outputs_independent_of_padding():
  config = helpers.tiny_model_config(mask_padding=True)
  params = model_lib.init_params(config, jax.random.PRNGKey(1))
  (t1, a1), (t2, a2) = _padded_outputs(config, params, 'MKTAYIAK', (12, 200))
  np.testing.assert_allclose(t1, t2, atol=1e-5)
  np.testing.assert_allclose(a1, a2, atol=1e-5)


def test_without_mask_padding_outputs_depend_on_padding_as_in_original():
  config = helpers.tiny_model_config(mask_padding=False)
  params = model_lib.init_params(config, jax.random.PRNGKey(1))
  (_, a1), (_, a2) = _padded_outputs(config, params, 'MKTAYIAK', (12, 200))
  assert np.abs(a1 - a2).max() > 1e-4


@pytest.mark.parametrize('switch,removed', [
    ('narrow_conv', 'local/narrow_conv'),
    ('wide_conv', 'local/wide_conv'),
    ('global_to_local', 'local/global_to_local'),
    ('global_attention', 'global/global_attention'),
])
def test_ablation_removes_only_its_layer(switch, removed):
  full = model_lib.init_params(helpers.tiny_model_config(),
                               jax.random.PRNGKey(0))
  ablated_config = helpers.tiny_model_config(**{switch: False})
  ablated = model_lib.init_params(ablated_config, jax.random.PRNGKey(0))
  assert set(full) - set(ablated) == {f'protein_bert/block_{i}/{removed}'
                                      for i in (1, 2)}
  assert set(ablated) < set(full)
  out = _apply(ablated_config, ablated, tokenization.tokenize(['MKV'], 8))
  chex.assert_tree_all_finite(out)


def test_annotation_input_off_ignores_annotations():
  config = helpers.tiny_model_config(annotation_input=False)
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  tokens = tokenization.tokenize(['MKV'], 8)
  a = _apply(config, params, tokens, np.zeros((1, 10)))
  b = _apply(config, params, tokens, np.ones((1, 10)))
  np.testing.assert_array_equal(a.annotation_logits, b.annotation_logits)
