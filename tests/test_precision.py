"""Mixed-precision policies: output dtypes, float32 norms, finiteness."""

import chex
import haiku as hk
import jax
import jax.numpy as jnp
from jax.extend import core as jax_core
import numpy as np
import pytest

from proteinbert import layers
from proteinbert import model as model_lib
from proteinbert import precision
from proteinbert import tokenization
from tests import helpers


@pytest.mark.parametrize('compute', ['float32', 'bfloat16', 'float16'])
def test_outputs_follow_the_policy(compute):
  config = helpers.tiny_model_config(
      precision=f'params=float32,compute={compute},output=float32')
  forward = hk.transform(model_lib.forward_fn(config))
  tokens = jnp.asarray(tokenization.tokenize(['MKTAYIAKQR', 'ACD'], 16))
  annotations = jnp.ones((2, config.num_annotations))
  params = forward.init(jax.random.PRNGKey(0), tokens, annotations)
  for leaf in jax.tree_util.tree_leaves(params):
    assert leaf.dtype == jnp.float32

  seen = {}

  def record_norm_dtypes(next_f, args, kwargs, context):
    if (isinstance(context.module, layers.LayerNorm)
        and context.method_name == '__call__'):
      seen.setdefault('norm_in', set()).add(args[0].dtype)
    return next_f(*args, **kwargs)

  def apply(params, tokens, annotations):
    with hk.intercept_methods(record_norm_dtypes):
      return forward.apply(params, None, tokens, annotations)

  out = apply(params, tokens, annotations)
  for leaf in jax.tree_util.tree_leaves(out):
    assert leaf.dtype == jnp.float32
  chex.assert_tree_all_finite(out)
  # The interceptor sees the inputs after the policy cast them to float32.
  assert seen['norm_in'] == {jnp.dtype(jnp.float32)}


def _float_dtypes(jaxpr) -> set:
  """Float dtypes of every value a jaxpr (and its sub-jaxprs) computes."""
  found = set()
  for eqn in jaxpr.eqns:
    for var in eqn.outvars:
      dtype = getattr(var.aval, 'dtype', None)
      if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        found.add(jnp.dtype(dtype))
    for param in eqn.params.values():
      for sub in param if isinstance(param, (list, tuple)) else [param]:
        if isinstance(sub, jax_core.ClosedJaxpr):
          found |= _float_dtypes(sub.jaxpr)
        elif isinstance(sub, jax_core.Jaxpr):
          found |= _float_dtypes(sub)
  return found


@pytest.mark.parametrize('local_mixer', ['conv', 'self_attention'])
def test_float64_policy_computes_everything_in_float64(local_mixer):
  """The float32 round-off reference of tests/test_keras_parity.py.

  Norms and softmaxes compute in "at least float32", so no op of a float64
  model may drop to float32.
  """
  with jax.enable_x64(True):
    config = helpers.tiny_model_config(
        precision='params=float64,compute=float64,output=float64',
        local_mixer=local_mixer)
    forward = hk.transform(model_lib.forward_fn(config))
    tokens = jnp.asarray(tokenization.tokenize(['MKTAYIAKQR'], 16))
    annotations = jnp.ones((1, config.num_annotations))
    params = forward.init(jax.random.PRNGKey(0), tokens, annotations)
    jaxpr = jax.make_jaxpr(forward.apply)(params, None, tokens, annotations)
  assert _float_dtypes(jaxpr.jaxpr) == {jnp.dtype(jnp.float64)}


def test_half_precision_is_close_to_float32():
  tokens = jnp.asarray(tokenization.tokenize(['MKTAYIAKQRQISFVKSHFSRQ'], 32))
  annotations = jnp.zeros((1, 10))
  outs = {}
  params = None
  for compute in ('float32', 'bfloat16'):
    config = helpers.tiny_model_config(
        precision=f'params=float32,compute={compute},output=float32')
    forward = hk.transform(model_lib.forward_fn(config))
    params = params or forward.init(jax.random.PRNGKey(0), tokens, annotations)
    outs[compute] = forward.apply(params, None, tokens, annotations)
  probs = {k: jax.nn.softmax(v.token_logits) for k, v in outs.items()}
  np.testing.assert_allclose(probs['bfloat16'], probs['float32'], atol=0.05)


def test_policy_does_not_leak_out_of_the_forward_pass():
  config = helpers.tiny_model_config(
      precision='params=float32,compute=bfloat16,output=bfloat16')
  model_lib.init_params(config, jax.random.PRNGKey(0))
  assert hk.mixed_precision.get_policy(model_lib.ProteinBert) is None
  assert hk.mixed_precision.get_policy(layers.LayerNorm) is None


def test_invalid_policy_string():
  with pytest.raises(ValueError, match='Expected e.g.'):
    precision.get_policy('compute=float17')
