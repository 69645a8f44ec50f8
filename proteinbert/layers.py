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


def dense(size: int, name: str) -> hk.Linear:
  """A Keras-initialised dense layer (kernel [in, size], bias [size])."""
  return hk.Linear(size, w_init=glorot_uniform, name=name)


def heads_projection(x: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
  """Every head's linear map of every position, heads first.

  The plain form is einsum('blc,hcx->bhlx', x, w). It is computed as one
  rank-2 product of the [B * L, C] rows with the heads' kernels side by side,
  [C, H * X], then transposed: XLA:CPU emits the gradient of the 4-D einsum
  followed by an activation (tanh, GELU) as transposing loops several times
  slower than the product. With the einsum in global attention the whole
  training step took 1.38x as long (WORKSPACE_NOTES.md, "CPU training
  speed", 2026-12-01).

  Args:
    x: [B, L, C].
    w: [H, C, X].

  Returns:
    [B, H, L, X].
  """
  batch, length, channels = x.shape
  heads, _, size = w.shape
  kernels = jnp.moveaxis(w, 0, 1).reshape(channels, heads * size)
  rows = x.reshape(batch * length, channels) @ kernels
  return jnp.transpose(rows.reshape(batch, length, heads, size), (0, 2, 1, 3))


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


class LayerNorm(hk.LayerNorm):
  """hk.LayerNorm over the channel axis, as Keras' LayerNormalization.

  Parameters 'scale' [C] and 'offset' [C] (Keras' gamma and beta); the
  variance is taken about the mean, as Keras' tf.nn.moments. Its own class so
  that `precision.policy_scope` can run every norm in at least float32.
  """

  def __init__(self, eps: float, name: str):
    """Constructs the layer.

    Args:
      eps: added to the variance (the original uses Keras' default, 1e-3).
      name: module name.
    """
    super().__init__(axis=-1, create_scale=True, create_offset=True, eps=eps,
                     name=name)
