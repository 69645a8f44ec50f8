"""Small building blocks shared by the local and global tracks.

The initializers are Keras' defaults, so a model trained from scratch here
starts from the same distribution as the original: Glorot-uniform kernels,
zero biases, embeddings uniform in [-0.05, 0.05].
"""

from typing import Callable

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

# Keras' 'glorot_uniform': fans count the receptive field for conv kernels and
# the leading (head) axis for attention weights, as hk.initializers does.
glorot_uniform = hk.initializers.VarianceScaling(1.0, 'fan_avg', 'uniform')



def gelu(x: jnp.ndarray) -> jnp.ndarray:
  """The exact GELU, x * Phi(x), as Keras' 'gelu' (any shape).

  Written with erf rather than jax.nn.gelu(approximate=False)'s erfc, whose
  XLA:CPU expansion (exp plus two rational branches) costs about twice as
  much; the two agree to ~1e-6 in float32 (Keras' own erfc form included).
  """
  return 0.5 * x * (1.0 + jax.lax.erf(x * np.sqrt(0.5).astype(x.dtype)))


_ACTIVATIONS = {
    # Keras' 'gelu' is the exact, erf-based GELU; jax.nn.gelu defaults to the
    # tanh approximation, which would break parity with the published weights.
    'gelu': gelu,
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


class Dense(hk.Linear):
  """hk.Linear that multiplies as one [N, in] x [in, size] matrix product.

  Inputs of any rank are flattened to two dimensions first. XLA:CPU emits the
  gradient of a rank-3 product followed by an elementwise op (GELU, tanh) as
  a transposing fusion that is ~10x slower than the product itself; the
  rank-2 form keeps every operand row-major.
  """

  def __call__(self, inputs: jnp.ndarray, **kwargs) -> jnp.ndarray:
    """[..., in] -> [..., size]."""
    flat = super().__call__(inputs.reshape(-1, inputs.shape[-1]), **kwargs)
    return flat.reshape(*inputs.shape[:-1], flat.shape[-1])


def dense(size: int, name: str) -> Dense:
  """A Keras-initialised dense layer (kernel [in, size], bias [size])."""
  return Dense(size, w_init=glorot_uniform, name=name)


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
