"""Tests for the global track: global attention and the global block."""

import math

import haiku as hk
import jax
import numpy as np
import pytest

from proteinbert import global_track

_HEADS, _KEY_SIZE, _VALUE_SIZE = 2, 3, 4


def _numpy_global_attention(g, x, params, mask):
  """The paper's equations, head by head and protein by protein."""
  gelu = np.vectorize(lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))))
  out = []
  for b in range(g.shape[0]):
    heads = []
    for h in range(_HEADS):
      q = np.tanh(g[b] @ params['query_w'][h])
      k = np.tanh(x[b] @ params['key_w'][h])
      v = gelu(x[b] @ params['value_w'][h])
      logits = np.where(mask[b], k @ q / np.sqrt(_KEY_SIZE), -np.inf)
      weights = np.exp(logits - logits.max())
      heads.append((weights / weights.sum()) @ v)
    out.append(np.concatenate(heads))
  return np.stack(out)


def _attention(g, x, mask):
  rng = np.random.default_rng(1)
  attention = hk.without_apply_rng(hk.transform(
      lambda g, x, m: global_track.GlobalAttention(
          _HEADS, _KEY_SIZE, _VALUE_SIZE)(g, x, m)))
  params = attention.init(jax.random.PRNGKey(0), g, x, mask)
  assert jax.tree_util.tree_map(np.shape, params) == {'global_attention': {
      'query_w': (_HEADS, g.shape[-1], _KEY_SIZE),
      'key_w': (_HEADS, x.shape[-1], _KEY_SIZE),
      'value_w': (_HEADS, x.shape[-1], _VALUE_SIZE)}}
  params = jax.tree_util.tree_map(
      lambda p: rng.normal(size=p.shape).astype(np.float32), params)
  out, _ = attention.apply(params, g, x, mask)
  return out, params['global_attention']


@pytest.mark.parametrize('masked', [False, True])
def test_global_attention_matches_the_equations(masked):
  rng = np.random.default_rng(0)
  g = rng.normal(size=(2, 6)).astype(np.float32)
  x = rng.normal(size=(2, 7, 5)).astype(np.float32)
  mask = np.ones((2, 7), bool)
  if masked:
    mask[0, 4:] = mask[1, 1:3] = False
  got, params = _attention(g, x, mask if masked else None)
  assert got.shape == (2, _HEADS * _VALUE_SIZE)
  np.testing.assert_allclose(got, _numpy_global_attention(g, x, params, mask),
                             rtol=1e-5, atol=1e-5)


def test_global_attention_mask_equals_truncation():
  rng = np.random.default_rng(0)
  g = rng.normal(size=(1, 6)).astype(np.float32)
  x = rng.normal(size=(1, 7, 5)).astype(np.float32)
  mask = np.array([[True] * 4 + [False] * 3])
  masked, _ = _attention(g, x, mask)
  truncated, _ = _attention(g, x[:, :4], mask[:, :4])
  np.testing.assert_allclose(masked, truncated, rtol=0, atol=1e-6)
