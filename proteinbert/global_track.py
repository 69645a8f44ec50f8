"""The global (per-protein) half of a ProteinBERT block, and global attention.

Axis letters: B batch, L length, C local channels, G global channels,
H heads, K key size, V value size (G / H).

Global attention (Brandes et al. 2022, Fig. 1 and Methods) lets the single
global vector query the whole sequence in time linear in L: each head's query
comes from the global representation, its keys and values from the residues,
and the heads' outputs are concatenated into a new global vector.
"""

from typing import Optional

import chex
import haiku as hk
import jax.numpy as jnp
import ml_collections

from proteinbert import layers


class GlobalAttention(hk.Module):
  """Multi-head attention from the global vector over the residues.

  Per head h, with g the [G] global vector and x_l the [C] residue l:
    q_h = tanh(g W_q[h]),  k_hl = tanh(x_l W_k[h]),  v_hl = gelu(x_l W_v[h]),
    a_hl = softmax_l(q_h . k_hl / sqrt(K)),
    output = concat_h sum_l a_hl v_hl.
  As the original's GlobalAttention layer: GELU (exact) on the values
  whatever the model's activation, no biases.
  """

  def __init__(self, num_heads: int, key_size: int, value_size: int,
               name: str = 'global_attention'):
    """Constructs the layer.

    Args:
      num_heads: H.
      key_size: K, the query and key size per head.
      value_size: V, the value size per head; the output has H * V channels.
      name: module name.
    """
    super().__init__(name=name)
    self._num_heads = num_heads
    self._key_size = key_size
    self._value_size = value_size

  def __call__(
      self,
      global_: jnp.ndarray,
      local: jnp.ndarray,
      mask: Optional[jnp.ndarray] = None,
  ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Attends from the global representation over the residues.

    Args:
      global_: [B, G] per-protein representation (the queries' source).
      local: [B, L, C] per-residue representation (keys' and values' source).
      mask: optional [B, L] bool, True at positions that may be attended.
        None attends to every position, <PAD> included, as the original.

    Returns:
      ([B, H * V] the heads' outputs, concatenated head by head;
      [B, H, L] the attention weights a_hl, summing to 1 over l).
    """
    h, k, v = self._num_heads, self._key_size, self._value_size
    batch, length, channels = local.shape
    chex.assert_shape(global_, (batch, None))
    dtype = local.dtype
    w_q = hk.get_parameter('query_w', [h, global_.shape[-1], k], dtype,
                           init=layers.glorot_uniform)
    w_k = hk.get_parameter('key_w', [h, channels, k], dtype,
                           init=layers.glorot_uniform)
    w_v = hk.get_parameter('value_w', [h, channels, v], dtype,
                           init=layers.glorot_uniform)

    query = jnp.tanh(jnp.einsum('bg,hgk->bhk', global_, w_q))
    keys = jnp.tanh(layers.heads_projection(local, w_k))
    values = layers.gelu(layers.heads_projection(local, w_v))
    logits = jnp.einsum('bhk,bhlk->bhl', query, keys)
    if mask is not None:
      chex.assert_shape(mask, (batch, length))
      mask = mask[:, None, :]
    weights = layers.attention_weights(logits, k, mask)
    out = jnp.einsum('bhl,bhlv->bhv', weights, values)
    chex.assert_shape(out, (batch, h, v))
    return out.reshape(batch, h * v), weights


class GlobalBlock(hk.Module):
  """Updates the per-protein representation from itself and the residues."""

  def __init__(self, config: ml_collections.ConfigDict, name: str = 'global'):
    """Constructs the block.

    Args:
      config: the model config (`proteinbert.config.get_model_config()`).
      name: module name.
    """
    super().__init__(name=name)
    self._config = config

  def __call__(
      self,
      global_: jnp.ndarray,
      local: jnp.ndarray,
      mask: Optional[jnp.ndarray] = None,
  ) -> tuple[tuple[jnp.ndarray, jnp.ndarray], Optional[jnp.ndarray]]:
    """Applies the block.

    Args:
      global_: [B, G] per-protein representation.
      local: [B, L, C] the block's updated per-residue representation.
      mask: optional [B, L] bool of positions the attention may see.

    Returns:
      (([B, G] after the attention merge and norm, [B, G] output),
      [B, H, L] the global attention's weights, or None without it).
    """
    c = self._config
    act = layers.get_activation(c.activation)
    chex.assert_shape(global_, (None, c.global_dim))

    merged = global_ + act(layers.dense(c.global_dim, 'dense_1')(global_))
    weights = None
    if c.global_attention:
      attended, weights = GlobalAttention(
          c.num_heads, c.key_size, c.global_dim // c.num_heads,
          name='global_attention')(global_, local, mask)
      merged = merged + attended
    after_attention = layers.LayerNorm(c.layer_norm_eps,
                                       'attention_norm')(merged)

    dense = act(layers.dense(c.global_dim, 'dense_2')(after_attention))
    out = layers.LayerNorm(c.layer_norm_eps,
                           'dense_norm')(after_attention + dense)
    chex.assert_equal_shape([global_, after_attention, out])
    return (after_attention, out), weights
