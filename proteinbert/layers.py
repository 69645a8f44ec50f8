"""Small building blocks of the local and global tracks.

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


@jax.custom_vjp
def attend(weights: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
  """Every head's weighted sum of its values over the sequence.

  Args:
    weights: [B, H, L] attention weights.
    values: [B, L, H, V].

  Returns:
    [B, H, V], out[b, h] = sum_l weights[b, h, l] * values[b, l, h].
  """
  # A batched (b, h) product over L, like the original's batch_dot, keeps the
  # float32 round-off as close to Keras as the plain port's (annotation
  # probabilities within 5e-6 to 8e-6 at length 512 for four random weight
  # draws). A [B, H, L] x [B, L, H * V] product is as accurate against
  # float64 but lands ~1.3e-5 from Keras, beyond tests/test_keras_parity.py.
  return jnp.einsum('bhl,blhv->bhv', weights, values)


def _attend_fwd(weights, values):
  return attend(weights, values), (weights, values)


def _attend_bwd(residuals, d_out):
  # Autodiff of the einsum transposes values to [B, H, V, L] and back; these
  # two gradients read values where they lie.
  weights, values = residuals
  batch, length, heads, size = values.shape
  d_weights = jnp.einsum('bhj,blj->bhl', heads_block_diagonal(d_out),
                         values.reshape(batch, length, heads * size))
  d_values = jnp.swapaxes(weights, 1, 2)[..., None] * d_out[:, None]
  return d_weights, d_values


attend.defvjp(_attend_fwd, _attend_bwd)


def layer_norm(eps: float, name: str) -> hk.LayerNorm:
  """LayerNorm over the channel axis with scale and offset (Keras gamma/beta)."""
  return hk.LayerNorm(
      axis=-1, create_scale=True, create_offset=True, eps=eps, name=name)
