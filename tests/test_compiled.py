"""The model builder: one transform per architecture, configs by value."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from proteinbert import compiled
from proteinbert import model as model_lib
from tests import helpers


def _scaled_fn(config, scale):
  """An untransformed function with a parameter and a static input."""

  def forward(x, double):
    w = hk.get_parameter('w', [x.shape[-1]], init=jnp.ones)
    return w * x * scale * config.num_blocks * (2 if double else 1)

  return forward


def test_built_once_per_value_of_the_arguments():
  config = helpers.tiny_model_config(num_blocks=1)
  first = compiled.build(model_lib.forward_fn, config)
  assert compiled.build(model_lib.forward_fn, config) is first
  # Another ConfigDict of the same values shares the build.
  assert compiled.build(model_lib.forward_fn,
                        helpers.tiny_model_config(num_blocks=1)) is first
  assert compiled.build(model_lib.forward_fn,
                        helpers.tiny_model_config(num_blocks=2)) is not first


def test_later_changes_to_the_config_do_not_reach_a_build():
  config = helpers.tiny_model_config(num_blocks=1)
  model = compiled.build(_scaled_fn, config, 3.0, static_argnums=(1,))
  config.num_blocks = 5
  x = jnp.ones((2, 4))
  params = model.init(jax.random.PRNGKey(0), x, False)
  np.testing.assert_array_equal(model.apply(params, None, x, False), 3.0)
  np.testing.assert_array_equal(model.apply(params, None, x, True), 6.0)
  rebuilt = compiled.build(_scaled_fn, config, 3.0, static_argnums=(1,))
  np.testing.assert_array_equal(rebuilt.apply(params, None, x, False), 15.0)

