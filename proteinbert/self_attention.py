"""Standard multi-head self-attention over the residues: a quadratic reference.

Axis letters: B batch, L query positions, M key positions (the same residues),
C local channels, H heads, K key size, V value size (C / H).

ProteinBERT mixes residues with convolutions and lets only the global vector
attend over the sequence, so its cost grows linearly with length. This module
is the Transformer's alternative (Vaswani et al. 2017): every residue attends
to every other, [B, H, L, L] weights. `model.local_mixer='self_attention'`
puts it in place of the narrow and wide convolutions, to ask what the convs
buy against it at equal depth and width, and at what cost in length.

Position: the convolutions are the model's only source of position, so
attention in their place needs its own. Rotary embeddings (Su et al. 2021,
RoFormer; ESM-2 uses them) are relative, add no parameters and apply at any
length, as the convolutions do; learned absolute embeddings would bound the
length and add a layer the paper's model does not have.
"""

from typing import Optional

import chex
import haiku as hk
import jax.numpy as jnp

from proteinbert import layers

# Wavelengths of the rotary frequencies run geometrically from 2 pi to
# 2 pi * _ROTARY_BASE positions (RoFormer's choice).
_ROTARY_BASE = 10_000.0


def rotary_embedding(x: jnp.ndarray) -> jnp.ndarray:
  """Rotates channel pairs of queries or keys by position-dependent angles.

  Channel i of the first half and channel i of the second half form a pair,
  rotated by position * _ROTARY_BASE ** (-i / (K / 2)), so the dot product of
  a rotated query and key depends on their positions only through their
  offset.

  Args:
    x: [B, L, H, K] queries or keys; K even.

  Returns:
    [B, L, H, K] in x's dtype (angles are computed in at least float32).
  """
  length, key_size = x.shape[1], x.shape[-1]
  half = key_size // 2
  chex.assert_equal(2 * half, key_size)
  dtype = layers.at_least_float32(x.dtype)
  frequencies = _ROTARY_BASE ** (-jnp.arange(half, dtype=dtype) / half)
  angles = jnp.arange(length, dtype=dtype)[:, None] * frequencies
  cos = jnp.cos(angles)[None, :, None, :]
  sin = jnp.sin(angles)[None, :, None, :]
  first, second = jnp.split(x.astype(dtype), 2, axis=-1)
  rotated = jnp.concatenate(
      [first * cos - second * sin, first * sin + second * cos], axis=-1)
  return rotated.astype(x.dtype)


class SelfAttention(hk.Module):
  """Multi-head self-attention with rotary positions; output has C channels."""

  def __init__(self, num_heads: int, key_size: int,
               name: str = 'self_attention'):
    """Constructs the layer.

    Args:
      num_heads: H; must divide the input channels C.
      key_size: K, the query and key size per head; even.
      name: module name.
    """
    super().__init__(name=name)
    self._num_heads = num_heads
    self._key_size = key_size

  def __call__(self, local: jnp.ndarray,
               mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
    """Lets every residue attend to every residue.

    Args:
      local: [B, L, C] per-residue representation.
      mask: optional [B, L] bool, True at positions that may be attended.
        None attends to every position, <PAD> included, as the global
        attention does.

    Returns:
      [B, L, C] the output projection of the heads' concatenated values.
    """
    h, k = self._num_heads, self._key_size
    batch, length, channels = local.shape
    v = channels // h
    chex.assert_equal(h * v, channels)

    def heads(size, name):
      return layers.dense(h * size, name)(local).reshape(
          batch, length, h, size)

    query = rotary_embedding(heads(k, 'query'))
    keys = rotary_embedding(heads(k, 'key'))
    values = heads(v, 'value')

    if mask is not None:
      chex.assert_shape(mask, (batch, length))
      mask = mask[:, None, None, :]
    weights = layers.attention_weights(
        jnp.einsum('blhk,bmhk->bhlm', query, keys), k, mask)

    out = jnp.einsum('bhlm,bmhv->blhv', weights, values)
    out = layers.dense(channels, 'output')(out.reshape(batch, length, h * v))
    chex.assert_shape(out, (batch, length, channels))
    return out
