"""Tests for the building blocks in proteinbert/layers.py."""

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

  def loss(apply):
    return lambda params, x: jnp.sum(jnp.sin(apply(params, x)))

  ours = lambda p, x: conv.apply(p, x)
  for reference in (_loop_conv, _xla_conv):
    theirs = lambda p, x, f=reference: f(x, p['conv']['w'], p['conv']['b'],
                                         dilation)
    np.testing.assert_allclose(ours(params, x), theirs(params, x),
                               rtol=1e-5, atol=1e-5)
    got = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    want = jax.grad(loss(theirs), argnums=(0, 1))(params, x)
    jax.tree_util.tree_map(
        lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5),
        got, want)


def test_dense_flattens_any_rank_like_hk_linear():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 3, 4)),
                  jnp.float32)
  ours = hk.without_apply_rng(hk.transform(
      lambda x: layers.dense(6, 'dense')(x)))
  theirs = hk.without_apply_rng(hk.transform(
      lambda x: hk.Linear(6, name='dense')(x)))
  params = _random_params(ours.init(jax.random.PRNGKey(0), x), seed=1)
  assert jax.tree_util.tree_map(jnp.shape, params) == {
      'dense': {'w': (4, 6), 'b': (6,)}}
  np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x),
                             rtol=1e-6, atol=1e-6)
  grad = lambda t: jax.grad(lambda p, x: jnp.sum(jnp.tanh(t.apply(p, x))),
                            argnums=(0, 1))(params, x)
  jax.tree_util.tree_map(
      lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6),
      grad(ours), grad(theirs))


def test_heads_block_diagonal():
  x = jnp.arange(12, dtype=jnp.float32).reshape(1, 3, 4)
  got = np.asarray(layers.heads_block_diagonal(x))
  assert got.shape == (1, 3, 12)
  for h in range(3):
    np.testing.assert_array_equal(got[0, h, 4 * h:4 * h + 4], x[0, h])
    assert np.count_nonzero(got[0, h]) == np.count_nonzero(x[0, h])


def test_attend_values_and_gradients_match_einsum():
  rng = np.random.default_rng(0)
  weights = jax.nn.softmax(jnp.asarray(rng.normal(size=(2, 3, 7)),
                                       jnp.float32))
  values = jnp.asarray(rng.normal(size=(2, 7, 3, 5)), jnp.float32)
  reference = lambda w, v: jnp.einsum('bhl,blhv->bhv', w, v)
  np.testing.assert_allclose(layers.attend(weights, values),
                             reference(weights, values), rtol=1e-6)
  cotangent = jnp.asarray(rng.normal(size=(2, 3, 5)), jnp.float32)
  grad = lambda f: jax.grad(lambda w, v: jnp.sum(f(w, v) * cotangent),
                            argnums=(0, 1))(weights, values)
  for got, want in zip(grad(layers.attend), grad(reference)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
