"""The self-attention reference mixer: exactness, positions, masking, config."""

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proteinbert import model as model_lib
from proteinbert import self_attention
from proteinbert import tokenization
from tests import helpers


def _numpy_self_attention(x, params, num_heads, key_size, mask):
  """Reference: rotary positions as complex rotations, softmax over keys."""
  batch, length, channels = x.shape
  value_size = channels // num_heads

  def project(name, size):
    w, b = params[f'self_attention/{name}']['w'], params[
        f'self_attention/{name}']['b']
    return (x @ w + b).reshape(batch, length, num_heads, size)

  def rotate(y):
    half = key_size // 2
    angles = np.arange(length)[:, None] * 10_000.0 ** (
        -np.arange(half) / half)
    z = (y[..., :half] + 1j * y[..., half:]) * np.exp(1j * angles)[
        None, :, None, :]
    return np.concatenate([z.real, z.imag], axis=-1)

  q = rotate(project('query', key_size))
  k = rotate(project('key', key_size))
  v = project('value', value_size)
  logits = np.einsum('blhk,bmhk->bhlm', q, k) / np.sqrt(key_size)
  logits = np.where(mask[:, None, None, :], logits, -np.inf)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  heads = np.einsum('bhlm,bmhv->blhv', weights, v).reshape(
      batch, length, channels)
  out = params['self_attention/output']
  return heads @ out['w'] + out['b']


def test_matches_a_numpy_reference_with_and_without_a_mask():
  num_heads, key_size = 2, 6
  layer = hk.transform(lambda x, m: self_attention.SelfAttention(
      num_heads, key_size)(x, m))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 7, 8)).astype(np.float32)
  mask = np.arange(7)[None, :] < np.array([[7], [4]])
  params = jax.jit(layer.init)(jax.random.PRNGKey(0), x, mask)
  assert {k: v['w'].shape for k, v in params.items()} == {
      'self_attention/query': (8, 12), 'self_attention/key': (8, 12),
      'self_attention/value': (8, 8), 'self_attention/output': (8, 8)}
  for m in (mask, None):
    got = jax.jit(layer.apply)(params, None, x, m)
    want = _numpy_self_attention(
        x.astype(np.float64), jax.tree_util.tree_map(np.asarray, params),
        num_heads, key_size, np.ones((2, 7), bool) if m is None else m)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_rotary_scores_depend_only_on_the_offset():
  rng = np.random.default_rng(1)
  q = np.broadcast_to(rng.normal(size=(1, 1, 1, 8)), (1, 40, 1, 8))
  k = np.broadcast_to(rng.normal(size=(1, 1, 1, 8)), (1, 40, 1, 8))
  scores = np.einsum('blhk,bmhk->lm',
                     self_attention.rotary_embedding(jnp.asarray(q)),
                     self_attention.rotary_embedding(jnp.asarray(k)))
  for offset in (-7, 0, 3, 20):
    diagonal = np.diagonal(scores, offset)
    np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-4, atol=1e-4)
  # ...and do depend on it.
  assert np.ptp(scores[0]) > 1e-2


def test_replaces_the_convolutions_and_moves_no_other_path():
  conv, attention = (jax.eval_shape(lambda c=c: model_lib.init_params(
      helpers.tiny_model_config(local_mixer=c), jax.random.PRNGKey(0)))
                      for c in ('conv', 'self_attention'))
  blocks = [f'protein_bert/block_{i}/local' for i in (1, 2)]
  assert set(conv) - set(attention) == {
      f'{block}/{name}' for block in blocks
      for name in ('narrow_conv', 'wide_conv')}
  assert set(attention) - set(conv) == {
      f'{block}/self_attention/{name}' for block in blocks
      for name in ('query', 'key', 'value', 'output')}
  for path in set(conv) & set(attention):
    chex.assert_trees_all_equal_shapes(conv[path], attention[path])


def test_mask_padding_makes_outputs_independent_of_padding():
  config = helpers.tiny_model_config(local_mixer='self_attention',
                                     mask_padding=True, num_blocks=1)
  forward = hk.without_apply_rng(hk.transform(model_lib.forward_fn(config)))
  params = jax.jit(forward.init)(jax.random.PRNGKey(2),
                                 jnp.zeros((1, 8), jnp.int32),
                                 jnp.zeros((1, 10)))
  outs = []
  for seq_len in (12, 64):
    out = jax.jit(forward.apply)(
        params, tokenization.tokenize(['MKTAYIAK'], seq_len),
        jnp.zeros((1, 10)))
    outs.append((out.token_logits[0, :10], out.annotation_logits))
  chex.assert_trees_all_close(outs[0], outs[1], atol=1e-5)
  chex.assert_tree_all_finite(outs)


@pytest.mark.parametrize('overrides,match', [
    (dict(local_mixer='transformer'), 'local_mixer'),
    (dict(local_mixer='self_attention', local_dim=15, num_heads=2),
     'divisible'),
    (dict(local_mixer='self_attention', key_size=7), 'even'),
])
def test_bad_mixer_config_is_a_clear_error(overrides, match):
  with pytest.raises(ValueError, match=match):
    model_lib.forward_fn(helpers.tiny_model_config(**overrides))


def test_cost_grows_quadratically_with_length_unlike_the_convolutions():
  def flops(mixer, length):
    config = helpers.tiny_model_config(local_mixer=mixer, num_blocks=1)
    return model_lib.lower_forward(config, 1, length).cost_analysis()['flops']

  for mixer, low, high in (('conv', 3.5, 4.5), ('self_attention', 8, 16)):
    growth = flops(mixer, 2048) / flops(mixer, 512)
    assert low < growth < high, (mixer, growth)
