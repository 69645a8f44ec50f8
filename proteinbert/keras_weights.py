"""The official weights format: the original package's pickle dump.

The published pretrained model (and every checkpoint of the original package)
is a pickle of `(n_annotations, model_weights, optimizer_weights)`, where
`model_weights` is the Keras model's `get_weights()`: numpy arrays in the
order of `keras_layout` below (layer by layer as the Keras functional model
lists them; kernels before biases, gamma before beta, Wq, Wk, Wv).

Loading never executes code from the file: a restricted unpickler accepts only
the numpy names needed to rebuild arrays and scalars (numpy 1.x wrote
`numpy.core.*`, numpy 2 writes `numpy._core.*`; both are accepted) besides
pickle's own containers. Exports name `numpy.core.*`, which both numpy 1.x and
numpy 2 read, so the original package can load models trained here whatever
numpy it runs on.

The architecture is inferred from the array shapes; only the wide
convolution's dilation cannot be, and comes from the config (5 by default).
"""

import copy
import importlib
import pickle
from typing import Any, NamedTuple, Optional, Sequence

import haiku as hk
import jax
import ml_collections
import numpy as np

from proteinbert import config as config_lib
from proteinbert import io_utils
from proteinbert import model as model_lib

_ROOT = 'protein_bert'

# (module, name) pairs the restricted unpickler resolves; nothing else loads.
_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    # Protocol-2 pickles written by Python 3 encode bytes with this.
    ('_codecs', 'encode'),
}


class KerasWeight(NamedTuple):
  """One entry of the Keras weight list and where it lives in Haiku."""
  keras_name: str
  module: str
  param: str


def keras_layout(num_blocks: int) -> list[KerasWeight]:
  """The Keras weight order of a model with `num_blocks` blocks."""
  layout = [
      KerasWeight('dense-global-input/kernel', 'annotation_input', 'w'),
      KerasWeight('dense-global-input/bias', 'annotation_input', 'b'),
      KerasWeight('embedding-seq-input/embeddings', 'token_embedding',
                  'embeddings'),
  ]
  per_block = [
      ('global-to-seq-dense', 'local/global_to_local', ('kernel', 'bias')),
      ('narrow-conv', 'local/narrow_conv', ('kernel', 'bias')),
      ('wide-conv', 'local/wide_conv', ('kernel', 'bias')),
      ('seq-merge1-norm', 'local/conv_norm', ('gamma', 'beta')),
      ('seq-dense', 'local/dense', ('kernel', 'bias')),
      ('seq-merge2-norm', 'local/dense_norm', ('gamma', 'beta')),
      ('global-dense1', 'global/dense_1', ('kernel', 'bias')),
      ('global-attention', 'global/global_attention', ('Wq', 'Wk', 'Wv')),
      ('global-merge1-norm', 'global/attention_norm', ('gamma', 'beta')),
      ('global-dense2', 'global/dense_2', ('kernel', 'bias')),
      ('global-merge2-norm', 'global/dense_norm', ('gamma', 'beta')),
  ]
  haiku_names = {'kernel': 'w', 'bias': 'b', 'gamma': 'scale',
                 'beta': 'offset', 'Wq': 'query_w', 'Wk': 'key_w',
                 'Wv': 'value_w'}
  for i in range(1, num_blocks + 1):
    for keras_layer, module, names in per_block:
      for name in names:
        layout.append(KerasWeight(f'{keras_layer}-block{i}/{name}',
                                  f'block_{i}/{module}', haiku_names[name]))
  layout += [
      KerasWeight('output-seq/kernel', 'token_head', 'w'),
      KerasWeight('output-seq/bias', 'token_head', 'b'),
      KerasWeight('output-annotations/kernel', 'annotation_head', 'w'),
      KerasWeight('output-annotations/bias', 'annotation_head', 'b'),
  ]
  return layout


_HEAD, _PER_BLOCK, _TAIL = 3, 23, 4


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only the numpy globals needed to rebuild arrays."""

  def find_class(self, module: str, name: str) -> Any:
    canonical = module.replace('numpy._core', 'numpy.core', 1)
    if (canonical, name) not in _ALLOWED_GLOBALS:
      raise pickle.UnpicklingError(
          f'refusing to load global {module}.{name}: an official weights '
          'file holds only numpy arrays, numbers and lists/tuples.')
    if canonical.startswith('numpy.core'):
      # Resolve to numpy's real module under either numpy major version.
      for candidate in (module.replace('numpy.core', 'numpy._core', 1), module):
        try:
          return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
          continue
    return super().find_class(module, name)


class _Numpy1CompatiblePickler(pickle._Pickler):  # pylint: disable=protected-access
  """Writes numpy's `numpy._core.*` globals as `numpy.core.*`.

  numpy 2 still reads `numpy.core.*`; numpy 1.x cannot read `numpy._core.*`.
  The pure-Python pickler is used because only it lets globals be renamed;
  the arrays' bytes are still written in one piece each.
  """

  def save_global(self, obj, name=None):
    module = getattr(obj, '__module__', None) or ''
    if not module.startswith('numpy._core'):
      return super().save_global(obj, name)
    self.save(module.replace('numpy._core', 'numpy.core', 1))
    self.save(name or obj.__qualname__)
    self.write(pickle.STACK_GLOBAL)
    self.memoize(obj)


def _read_pickle(path: str) -> Any:
  try:
    with open(path, 'rb') as f:
      return _RestrictedUnpickler(f).load()
  except pickle.UnpicklingError as e:
    raise ValueError(f'{path}: not a valid official weights file: {e}') from e
  except (EOFError, ValueError, TypeError, AttributeError, IndexError,
          KeyError, MemoryError) as e:
    raise ValueError(
        f'{path}: cannot unpickle (truncated or corrupt file?): '
        f'{type(e).__name__}: {e}') from e


def _as_weight_list(path: str, contents: Any) -> tuple[int, list[np.ndarray]]:
  """Checks the dump's top-level structure; returns (A, arrays)."""
  if not (isinstance(contents, (tuple, list)) and len(contents) == 3):
    raise ValueError(
        f'{path}: expected a pickled (n_annotations, model_weights, '
        f'optimizer_weights) triple, got {type(contents).__name__}'
        + (f' of length {len(contents)}' if hasattr(contents, '__len__')
           else '') + '.')
  n_annotations, weights, _ = contents
  if isinstance(n_annotations, np.ndarray) and n_annotations.shape == ():
    n_annotations = n_annotations.item()
  if not isinstance(n_annotations, (int, np.integer)) or n_annotations < 1:
    raise ValueError(f'{path}: n_annotations must be a positive int, got '
                     f'{n_annotations!r}.')
  if not isinstance(weights, (list, tuple)):
    raise ValueError(f'{path}: model_weights must be a list of arrays, got '
                     f'{type(weights).__name__}.')
  for i, w in enumerate(weights):
    if not isinstance(w, np.ndarray) or w.dtype.kind != 'f':
      raise ValueError(
          f'{path}: model_weights[{i}] must be a floating-point numpy array, '
          f'got {type(w).__name__}'
          + (f' of dtype {w.dtype}' if isinstance(w, np.ndarray) else '')
          + '.')
  return int(n_annotations), list(weights)


def infer_model_config(
    weights: Sequence[np.ndarray],
    base: Optional[ml_collections.ConfigDict] = None,
    source: str = 'weights',
) -> ml_collections.ConfigDict:
  """The model config whose Keras weight list has these shapes.

  Args:
    weights: the Keras weight list.
    base: config for what shapes cannot tell (dilation, activation, precision,
      padding mask); defaults to `get_model_config()`.
    source: how to name the weights in errors (e.g. the file path).

  Returns:
    A copy of `base` with vocab_size, num_annotations, num_blocks, local_dim,
    global_dim, num_heads, key_size and conv_kernel_size set from the shapes.
  """
  config = copy.deepcopy(base if base is not None
                         else config_lib.get_model_config())
  n_body = len(weights) - _HEAD - _TAIL
  if n_body < _PER_BLOCK or n_body % _PER_BLOCK:
    raise ValueError(
        f'{source}: {len(weights)} arrays cannot be a ProteinBERT model: '
        f'expected {_HEAD} + {_PER_BLOCK} * num_blocks + {_TAIL}.')
  shape = lambda i, ndim: _checked_rank(weights, i, ndim, source)
  num_annotations, global_dim = shape(0, 2)
  vocab_size, local_dim = shape(2, 2)
  kernel_size = shape(_HEAD + 2, 3)[0]
  num_heads, _, key_size = shape(_HEAD + 14, 3)
  with config.unlocked():
    config.num_annotations = num_annotations
    config.global_dim = global_dim
    config.vocab_size = vocab_size
    config.local_dim = local_dim
    config.conv_kernel_size = kernel_size
    config.num_heads = num_heads
    config.key_size = key_size
    config.num_blocks = n_body // _PER_BLOCK
    for ablation in ('narrow_conv', 'wide_conv', 'global_to_local',
                     'global_attention'):
      config[ablation] = True
  return config


def _checked_rank(weights, index, ndim, source):
  w = weights[index]
  if w.ndim != ndim:
    raise ValueError(
        f'{source}: model_weights[{index}] has shape {w.shape}; expected a '
        f'{ndim}-d array there.')
  return w.shape


def _expected_shapes(config: ml_collections.ConfigDict) -> dict:
  shapes = jax.eval_shape(
      lambda: model_lib.init_params(config, jax.random.PRNGKey(0)))
  return {(m, p): tuple(s.shape) for m, ps in shapes.items()
          for p, s in ps.items()}


def params_from_keras_weights(
    weights: Sequence[np.ndarray],
    base: Optional[ml_collections.ConfigDict] = None,
    source: str = 'weights',
) -> tuple[hk.Params, ml_collections.ConfigDict]:
  """Maps a Keras weight list to Haiku params, checking every shape.

  Args:
    weights: the Keras model's `get_weights()` list.
    base: see `infer_model_config`.
    source: how to name the weights in errors.

  Returns:
    (params, model config).
  """
  weights = list(weights)
  # Older Keras versions may list the embedding before the annotation input;
  # the ranks tell the two orders apart.
  if weights[0].ndim == 2 and weights[1].ndim == 2:
    weights = [weights[1], weights[2], weights[0]] + weights[3:]
  config = infer_model_config(weights, base, source)
  expected = _expected_shapes(config)
  params = {}
  for index, (entry, w) in enumerate(zip(keras_layout(config.num_blocks),
                                         weights)):
    key = (f'{_ROOT}/{entry.module}', entry.param)
    if tuple(w.shape) != expected[key]:
      raise ValueError(
          f'{source}: model_weights[{index}] ({entry.keras_name}) has shape '
          f'{tuple(w.shape)}; the architecture inferred from the other '
          f'shapes needs {expected[key]}.')
    params.setdefault(key[0], {})[key[1]] = np.asarray(w, dtype=np.float32)
  return params, config


def keras_weights_from_params(params: hk.Params,
                              config: ml_collections.ConfigDict
                              ) -> list[np.ndarray]:
  """The Keras weight list (float32 numpy arrays) of Haiku params."""
  for ablation in ('narrow_conv', 'wide_conv', 'global_to_local',
                   'global_attention'):
    if not config[ablation]:
      raise ValueError(
          f'model.{ablation}=False has no counterpart in the original Keras '
          'model; only the full architecture can be exported.')
  weights = []
  for entry in keras_layout(config.num_blocks):
    try:
      value = params[f'{_ROOT}/{entry.module}'][entry.param]
    except KeyError:
      raise ValueError(
          f'params lack {_ROOT}/{entry.module}//{entry.param} '
          f'(Keras {entry.keras_name}).') from None
    weights.append(np.asarray(value, dtype=np.float32))
  return weights


def load_keras_pickle(
    path: str,
    base: Optional[ml_collections.ConfigDict] = None,
) -> tuple[hk.Params, ml_collections.ConfigDict]:
  """Loads an official-format pickle (e.g. the published pretrained model).

  Args:
    path: the pickle file.
    base: see `infer_model_config`.

  Returns:
    (params, model config); the optimizer weights are ignored.

  Raises:
    ValueError: the file is not a valid ProteinBERT dump (the message says
      which array or which part of the structure is wrong).
  """
  n_annotations, weights = _as_weight_list(path, _read_pickle(path))
  if len(weights) < _HEAD + _TAIL:
    raise ValueError(f'{path}: model_weights has only {len(weights)} arrays.')
  params, config = params_from_keras_weights(weights, base, source=path)
  if config.num_annotations != n_annotations:
    raise ValueError(
        f'{path}: n_annotations is {n_annotations} but the annotation layers '
        f'have {config.num_annotations} units.')
  return params, config


def save_keras_pickle(path: str, params: hk.Params,
                      config: ml_collections.ConfigDict,
                      optimizer_weights: Sequence[np.ndarray] = ()) -> None:
  """Writes params in the official format, atomically.

  Args:
    path: destination.
    params: Haiku params of a full (unablated) model.
    config: its model config.
    optimizer_weights: stored as the third element; the original package
      ignores them unless asked to restore its Adam state.
  """
  contents = (int(config.num_annotations),
              keras_weights_from_params(params, config),
              list(optimizer_weights))
  with io_utils.atomic_path(path) as tmp, open(tmp, 'wb') as f:
    _Numpy1CompatiblePickler(f, protocol=4).dump(contents)
