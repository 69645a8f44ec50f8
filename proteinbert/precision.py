"""Mixed precision: one jmp policy string per model, applied where it is traced.

The policy comes from the config (`model.precision`), e.g.
'params=float32,compute=bfloat16,output=float32'. LayerNorm always computes in
at least float32 (its output is cast back to the compute dtype); the attention
softmaxes do the same themselves (`layers.attention_weights`). A float64
policy (with jax_enable_x64) runs every op in float64: the tests' reference
for float32 round-off.

Haiku's policies are process-global state, so they are pushed only for the
duration of a forward pass (`policy_scope`) and never leak into other models
built in the same notebook or test.
"""

import contextlib

import haiku as hk
import jmp

from proteinbert import layers


def get_policy(precision: str) -> jmp.Policy:
  """Parses a jmp policy string, with an error that shows the expected form."""
  try:
    return jmp.get_policy(precision)
  except Exception as e:  # jmp raises assorted errors for malformed strings.
    raise ValueError(
        f'Invalid precision policy {precision!r}: {e}. Expected e.g. '
        "'params=float32,compute=bfloat16,output=float32'.") from e


@contextlib.contextmanager
def policy_scope(module_cls: type, precision: str):
  """Applies `precision` to `module_cls` (and >= float32 LayerNorm) inside.

  Args:
    module_cls: the outermost hk.Module class of the model being traced.
    precision: a jmp policy string.

  Yields:
    The parsed jmp.Policy.
  """
  policy = get_policy(precision)
  norm_dtype = layers.at_least_float32(policy.compute_dtype)
  norm_policy = jmp.Policy(
      param_dtype=norm_dtype,
      compute_dtype=norm_dtype,
      output_dtype=policy.compute_dtype)
  with hk.mixed_precision.push_policy(module_cls, policy), \
      hk.mixed_precision.push_policy(layers.LayerNorm, norm_policy):
    yield policy
