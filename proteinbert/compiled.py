"""The one place a forward function is transformed and compiled.

    model = compiled.build(model_lib.forward_fn, config)
    params = model.init(rng, tokens, annotations)
    output = model.apply(params, None, tokens, annotations)

`build` takes a factory of untransformed functions and the factory's
arguments: `model.forward_fn(config)` for the pretraining model,
`heads.forward_fn(model_config, spec, head_config)` for the model with a task
head, or any caller's function that wraps the model (prediction, embeddings).
Each (factory, arguments) pair is transformed once per process: the result is
cached, ConfigDicts keyed by their JSON, so every caller with one
architecture (a model and its reloaded copy, the fine-tuning stages, the
prediction after them) shares one `hk.Transformed` and the executables its
jitted `init` and `apply` have compiled.
"""

import copy
import functools
from typing import Any, Callable, NamedTuple

import haiku as hk
import jax
import ml_collections

# Enough for a sweep's variants in one process; each entry holds compiled
# executables.
_CACHE_SIZE = 32


class CompiledModel(NamedTuple):
  """A forward function transformed once, with its jitted init and apply.

  Attributes:
    transformed: the `hk.Transformed`, to compose into other functions that
      are jitted as a whole (the update step differentiates through it).
    init: jitted `init(rng, *inputs) -> params`.
    apply: jitted `apply(params, rng, *inputs)`; rng may be None when the
      function draws no random numbers.
  """
  transformed: hk.Transformed
  init: Callable[..., hk.Params]
  apply: Callable[..., Any]


class _ConfigKey:
  """A private copy of a ConfigDict, equal to another when their JSON is."""

  def __init__(self, config: ml_collections.ConfigDict):
    # A copy: the caller may change its config after building.
    self.config = copy.deepcopy(config)
    self._json = config.to_json()

  def __eq__(self, other) -> bool:
    return isinstance(other, _ConfigKey) and self._json == other._json

  def __hash__(self) -> int:
    return hash(self._json)


def build(make_fn: Callable[..., Callable], *args,
          static_argnums: tuple[int, ...] = ()) -> CompiledModel:
  """The transformed and compiled `make_fn(*args)`, built once per process.

  Args:
    make_fn: a function returning an untransformed Haiku function, such as
      `model.forward_fn`; a module-level function, so that it is the same
      object at every call.
    *args: its arguments: ConfigDicts (compared by value) or hashable
      values (NamedTuples of plain values, numbers, strings).
    static_argnums: positions, among the function's inputs, of Python values
      that select a computation rather than feed one (e.g. `is_training`).

  Returns:
    The CompiledModel.
  """
  return _build(make_fn, tuple(
      _ConfigKey(a) if isinstance(a, ml_collections.ConfigDict) else a
      for a in args), tuple(static_argnums))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _build(make_fn, keys, static_argnums) -> CompiledModel:
  transformed = hk.transform(make_fn(*[
      k.config if isinstance(k, _ConfigKey) else k for k in keys]))
  return CompiledModel(
      transformed,
      jax.jit(transformed.init, static_argnums=[1 + i for i in static_argnums]),
      jax.jit(transformed.apply,
              static_argnums=[2 + i for i in static_argnums]))
