"""The local (per-residue) half of a ProteinBERT block.

Axis letters: B batch, L length, C local channels, G global channels.

Brandes et al. 2022, Fig. 1: the global representation is broadcast to every
residue through a dense layer, added to a narrow and a wide (dilated)
convolution of the sequence and to the residual, normalised, then passed
through a position-wise dense layer with another residual and normalisation.
With `local_mixer='self_attention'`, self-attention over the residues
(`self_attention.py`) takes the convolutions' place in that sum.
"""

from typing import Optional

import chex
import haiku as hk
import jax.numpy as jnp
import ml_collections

from proteinbert import layers
from proteinbert import self_attention

# Values of `model.local_mixer`.
LOCAL_MIXERS = ('conv', 'self_attention')


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the key when the local mixer cannot be built."""
  if config.local_mixer not in LOCAL_MIXERS:
    raise ValueError(f'Unknown model.local_mixer {config.local_mixer!r}; '
                     f'expected one of {LOCAL_MIXERS}.')
  if config.local_mixer != 'self_attention':
    return
  if config.local_dim % config.num_heads:
    raise ValueError(
        f'model.local_dim ({config.local_dim}) must be divisible by '
        f'model.num_heads ({config.num_heads}) for local_mixer='
        "'self_attention': each head gets local_dim / num_heads values.")
  if config.key_size % 2:
    raise ValueError(
        f'model.key_size must be even for local_mixer=\'self_attention\' '
        f'(rotary positions rotate channel pairs), got {config.key_size}.')


class LocalBlock(hk.Module):
  """Updates the per-residue representation from itself and the global one."""

  def __init__(self, config: ml_collections.ConfigDict, name: str = 'local'):
    """Constructs the block.

    Args:
      config: the model config (`proteinbert.config.get_model_config()`).
      name: module name.
    """
    super().__init__(name=name)
    self._config = config

  def __call__(
      self,
      local: jnp.ndarray,
      global_: jnp.ndarray,
      mask: Optional[jnp.ndarray] = None,
  ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Applies the block.

    Args:
      local: [B, L, C] per-residue representation.
      global_: [B, G] per-protein representation.
      mask: optional [B, L] bool, True at real (non-<PAD>) positions; when
        given, <PAD> positions are zeroed before the convolutions so they act
        like the zero padding beyond the sequence's end, and self-attention
        does not attend to them.

    Returns:
      ([B, L, C] after the convolutional merge and norm, [B, L, C] output).
    """
    c = self._config
    act = layers.get_activation(c.activation)
    batch, length, channels = local.shape
    chex.assert_shape(global_, (batch, None))
    chex.assert_equal(channels, c.local_dim)

    mixer_input = local if mask is None else local * mask[..., None].astype(
        local.dtype)
    merged = local
    if c.global_to_local:
      broadcast = act(layers.dense(c.local_dim, 'global_to_local')(global_))
      merged = merged + broadcast[:, None, :]
    if c.local_mixer == 'self_attention':
      merged = merged + self_attention.SelfAttention(
          c.num_heads, c.key_size, name='self_attention')(mixer_input, mask)
    else:
      if c.narrow_conv:
        merged = merged + act(layers.conv1d(
            c.local_dim, c.conv_kernel_size, 1, 'narrow_conv')(mixer_input))
      if c.wide_conv:
        merged = merged + act(layers.conv1d(
            c.local_dim, c.conv_kernel_size, c.wide_conv_dilation,
            'wide_conv')(mixer_input))
    after_convs = layers.LayerNorm(c.layer_norm_eps, 'conv_norm')(merged)

    dense = act(layers.dense(c.local_dim, 'dense')(after_convs))
    out = layers.LayerNorm(c.layer_norm_eps, 'dense_norm')(after_convs + dense)
    chex.assert_shape([after_convs, out], (batch, length, c.local_dim))
    return after_convs, out
