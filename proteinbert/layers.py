"""Small building blocks of the local and global tracks.

The initializers are Keras' defaults, so a model trained from scratch here
starts from the same distribution as the original: Glorot-uniform kernels,
zero biases, embeddings uniform in [-0.05, 0.05].
"""

import math
from typing import Callable, Optional

import haiku as hk
import jax
import jax.numpy as jnp

# Keras' 'glorot_uniform': fans count the receptive field for conv kernels and
# the leading (head) axis for attention weights, as hk.initializers does.
glorot_uniform = hk.initializers.VarianceScaling(1.0, 'fan_avg', 'uniform')


def gelu(x: jnp.ndarray) -> jnp.ndarray:
  """The exact GELU, x * Phi(x), written as Keras writes it.

  Keras' 'gelu' is 0.5 x (1 + erf(x / sqrt(2))). jax.nn.gelu defaults to the
  tanh approximation (which would break parity with the published weights),
  and its exact form goes through erfc, whose XLA:CPU expansion (exponentials
  and selects) costs several times erf's polynomial.
  """
  return 0.5 * x * (1 + jax.lax.erf(x * jnp.asarray(0.5**0.5, x.dtype)))


_ACTIVATIONS = {
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

  def __call__(self, inputs: jnp.ndarray, *, precision=None) -> jnp.ndarray:
    """[..., in] -> [..., size]."""
    flat = super().__call__(inputs.reshape(-1, inputs.shape[-1]),
                            precision=precision)
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


def heads_block_diagonal(x: jnp.ndarray) -> jnp.ndarray:
  """Spreads per-head vectors over a block-diagonal, head-major layout.

  A batched matmul of the result with a head-major [B, N, H * X] tensor
  contracts every head with its own X channels only, with no transposed copy
  of the large operand.

  Args:
    x: [B, H, X].

  Returns:
    [B, H, H * X]: row h holds x[:, h] in columns h * X:(h + 1) * X, zeros
    elsewhere.
  """
  batch, heads, size = x.shape
  eye = jnp.eye(heads, dtype=x.dtype)
  return (x[:, :, None, :] * eye[:, :, None]).reshape(batch, heads,
                                                      heads * size)


def at_least_float32(dtype) -> jnp.dtype:
  """float32 for half-precision dtypes; wider dtypes unchanged."""
  return jnp.promote_types(dtype, jnp.float32)


def attention_weights(logits: jnp.ndarray, key_size: int,
                      mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Softmax over the last (attended) axis of scaled attention logits.

  Computed in at least float32 whatever the compute dtype, since long
  sequences sum many small weights; returned in the logits' dtype.

  Args:
    logits: [..., L] query-key products, unscaled.
    key_size: K; logits are divided by sqrt(K).
    mask: optional bool broadcastable to logits, True where attention may
      look; masked positions get zero weight.

  Returns:
    Weights shaped and typed as `logits`.
  """
  dtype = at_least_float32(logits.dtype)
  scaled = logits.astype(dtype) / math.sqrt(key_size)
  if mask is not None:
    scaled = jnp.where(mask, scaled, jnp.finfo(dtype).min)
  return jax.nn.softmax(scaled, axis=-1).astype(logits.dtype)


class LayerNorm(hk.Module):
  """Normalises over channels, then scales and shifts (Keras' gamma/beta).

  The parameters are hk.LayerNorm's ('scale' [C], 'offset' [C]). The mean and
  variance are taken in two passes, as Keras' tf.nn.moments; unlike
  hk.LayerNorm, scale and offset are not broadcast to the input's shape
  first, which XLA:CPU materialises as full-size tensors in the gradient.
  `precision.policy_scope` runs it in at least float32.
  """

  def __init__(self, eps: float, name: str):
    super().__init__(name=name)
    self._eps = eps

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """[..., C] -> [..., C]."""
    channels = x.shape[-1]
    scale = hk.get_parameter('scale', [channels], x.dtype, init=jnp.ones)
    offset = hk.get_parameter('offset', [channels], x.dtype, init=jnp.zeros)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    variance = jnp.mean(centred * centred, axis=-1, keepdims=True)
    return centred * jax.lax.rsqrt(variance + self._eps) * scale + offset
