"""Small building blocks shared by the local and global tracks.

The initializers are Keras' defaults, so a model trained from scratch here
starts from the same distribution as the original: Glorot-uniform kernels,
zero biases, embeddings uniform in [-0.05, 0.05].
"""

from typing import Callable

import haiku as hk
import jax
import jax.numpy as jnp

# Keras' 'glorot_uniform': fans count the receptive field for conv kernels and
# the leading (head) axis for attention weights, as hk.initializers does.
glorot_uniform = hk.initializers.VarianceScaling(1.0, 'fan_avg', 'uniform')

_ACTIVATIONS = {
    # Keras' 'gelu' is the exact, erf-based GELU; jax.nn.gelu defaults to the
    # tanh approximation, which would break parity with the published weights.
    'gelu': lambda x: jax.nn.gelu(x, approximate=False),
    'gelu_tanh': lambda x: jax.nn.gelu(x, approximate=True),
    'relu': jax.nn.relu,
}


def get_activation(name: str) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """The activation function called `name` ('gelu', 'gelu_tanh', 'relu')."""
  try:
    return _ACTIVATIONS[name]
  except KeyError:
    raise ValueError(
        f'Unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}.'
    ) from None


def dense(size: int, name: str) -> hk.Linear:
  """A Keras-initialised dense layer (kernel [in, size], bias [size])."""
  return hk.Linear(size, w_init=glorot_uniform, name=name)


def conv1d(channels: int, kernel_size: int, dilation: int,
           name: str) -> hk.Conv1D:
  """A 'same'-padded, Keras-initialised 1D convolution over [B, L, C].

  Padding is (kernel_size - 1) * dilation // 2 on each side, as Keras'
  padding='same' for odd kernels, so the output keeps length L.
  """
  return hk.Conv1D(
      output_channels=channels,
      kernel_shape=kernel_size,
      rate=dilation,
      padding='SAME',
      w_init=glorot_uniform,
      name=name)


def layer_norm(eps: float, name: str) -> hk.LayerNorm:
  """LayerNorm over the channel axis with scale and offset (Keras gamma/beta)."""
  return hk.LayerNorm(
      axis=-1, create_scale=True, create_offset=True, eps=eps, name=name)
