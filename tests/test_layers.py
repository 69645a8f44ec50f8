"""Tests for the building blocks in proteinbert/layers.py."""

import math

import haiku as hk
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from proteinbert import layers

_KERNEL = 9


def _random_params(params, seed):
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)


def _loop_conv(x, w, b, dilation):
  """'same' dilated convolution as a loop over output positions and taps."""
  length, kernel = x.shape[1], w.shape[0]
  half = (kernel - 1) * dilation // 2
  rows = []
  for i in range(length):
    row = b
    for k in range(kernel):
      j = i - half + k * dilation
      if 0 <= j < length:
        row = row + x[:, j] @ w[k]
    rows.append(jnp.broadcast_to(row, (x.shape[0], w.shape[2])))
  return jnp.stack(rows, axis=1)


def _assert_same_gradients(ours, theirs, params, x, squash, rtol, atol):
  """d sum(squash(f(params, x))) / d(params, x) agree for f = ours, theirs."""
  grad = lambda f: jax.grad(lambda p, x: jnp.sum(squash(f(p, x))),
                            argnums=(0, 1))(params, x)
  jax.tree_util.tree_map(
      lambda g, w: np.testing.assert_allclose(g, w, rtol=rtol, atol=atol),
      grad(ours), grad(theirs))


def _xla_conv(x, w, b, dilation):
  half = (w.shape[0] - 1) * dilation // 2
  return lax.conv_general_dilated(
      x, w, window_strides=(1,), padding=[(half, half)],
      rhs_dilation=(dilation,),
      dimension_numbers=('NWC', 'WIO', 'NWC')) + b


# Lengths: odd, and shorter than the receptive field of either conv (9 and
# 41 positions), down to a single position.
@pytest.mark.parametrize('length', [37, 6, 1])
@pytest.mark.parametrize('dilation', [1, 5])
def test_conv1d_matches_loop_and_xla_conv(dilation, length):
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, length, 4)),
                  jnp.float32)
  conv = hk.without_apply_rng(hk.transform(
      lambda x: layers.conv1d(3, _KERNEL, dilation, 'conv')(x)))
  params = _random_params(conv.init(jax.random.PRNGKey(0), x), seed=1)
  assert set(params['conv']) == {'w', 'b'}
  assert params['conv']['w'].shape == (_KERNEL, 4, 3)

  ours = lambda p, x: conv.apply(p, x)
  for reference in (_loop_conv, _xla_conv):
    theirs = lambda p, x, f=reference: f(x, p['conv']['w'], p['conv']['b'],
                                         dilation)
    np.testing.assert_allclose(ours(params, x), theirs(params, x),
                               rtol=1e-5, atol=1e-5)
    _assert_same_gradients(ours, theirs, params, x, jnp.sin, rtol=1e-4,
                           atol=1e-5)


def test_heads_projection_is_the_plain_einsum():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 4, 6)), jnp.float32)
  plain = lambda w, x: jnp.einsum('blc,hcx->bhlx', x, w)
  ours = lambda w, x: layers.heads_projection(x, w)
  np.testing.assert_allclose(ours(w, x), plain(w, x), rtol=1e-6, atol=1e-6)
  _assert_same_gradients(ours, plain, w, x, jnp.tanh, rtol=1e-5, atol=1e-6)


def test_gelu_is_the_exact_erf_gelu():
  x = jnp.linspace(-8.0, 8.0, 1001, dtype=jnp.float32)
  x64 = np.float64(x)
  cdf = 0.5 * (1 + np.vectorize(math.erf)(x64 / math.sqrt(2)))
  pdf = np.exp(-x64**2 / 2) / math.sqrt(2 * math.pi)
  np.testing.assert_allclose(layers.gelu(x), x64 * cdf, rtol=0, atol=2e-6)
  # Its autodiff derivative is Phi(x) + x phi(x).
  np.testing.assert_allclose(jax.vmap(jax.grad(layers.gelu))(x),
                             cdf + x64 * pdf, rtol=0, atol=2e-6)


def test_layer_norm_is_keras_layer_normalization():
  # A small spread, so that the epsilon (1e-3, Keras' default) matters.
  x = np.random.default_rng(0).normal(3.0, 0.1, size=(2, 5, 8))
  norm = hk.without_apply_rng(hk.transform(
      lambda x: layers.LayerNorm(1e-3, 'norm')(x)))
  params = norm.init(jax.random.PRNGKey(0), jnp.asarray(x, jnp.float32))
  assert jax.tree_util.tree_map(jnp.shape, params) == {
      'norm': {'scale': (8,), 'offset': (8,)}}
  params = _random_params(params, seed=1)
  mean = x.mean(-1, keepdims=True)
  variance = ((x - mean)**2).mean(-1, keepdims=True)
  want = ((x - mean) / np.sqrt(variance + 1e-3) * params['norm']['scale']
          + params['norm']['offset'])
  np.testing.assert_allclose(
      norm.apply(params, jnp.asarray(x, jnp.float32)), want, rtol=0,
      atol=1e-4)


def test_attention_weights_scale_mask_and_keep_the_dtype():
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 5)) * 40,
                       jnp.bfloat16)
  mask = jnp.asarray([[True, True, False, True, False],
                      [True, False, False, False, False]])[:, None, :]
  got = layers.attention_weights(logits, 16, mask)
  assert got.dtype == jnp.bfloat16
  want = jax.nn.softmax(
      jnp.where(mask, logits.astype(jnp.float32) / 4, -jnp.inf), axis=-1)
  np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=0,
                             atol=4e-3)
  assert not np.any(np.asarray(got)[~np.broadcast_to(mask, got.shape)])
