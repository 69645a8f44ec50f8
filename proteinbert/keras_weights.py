"""The official weights format: the original package's pickle dump.

The published pretrained model (and every checkpoint of the original package)
is a pickle of `(n_annotations, model_weights, optimizer_weights)`, where
`model_weights` is the Keras model's `get_weights()`: numpy arrays in the
order of `keras_layout` below (layer by layer as the Keras functional model
lists them; kernels before biases, gamma before beta, Wq, Wk, Wv).

Files are read and written by `safe_pickle`: loading never executes code
from the file nor lets it claim memory it does not hold, and exports are
readable by the original package under numpy 1.x or 2. Beyond that, this
module checks the structure: floating-point arrays whose shapes fit one
architecture, and no NaN or infinite weights.

The architecture is inferred from the array shapes; only the wide
convolution's dilation cannot be, and comes from the config (5 by default).
"""

import copy
from typing import Any, NamedTuple, Optional, Sequence

import haiku as hk
import ml_collections
import numpy as np

from proteinbert import config as config_lib
from proteinbert import params_io
from proteinbert import safe_pickle

_ROOT = 'protein_bert'


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


def _describe(value: Any) -> str:
  """A short description of an untrusted value for an error message."""
  if isinstance(value, (int, np.integer)) and abs(value) < 2**63:
    return repr(int(value))
  return f'a {type(value).__name__}'


def _as_weight_list(path: str, contents: Any) -> tuple[int, list[np.ndarray]]:
  """Checks the dump's top-level structure; returns (A, arrays)."""
  if not (isinstance(contents, (tuple, list)) and len(contents) == 3):
    raise ValueError(
        f'{path}: expected a pickled (n_annotations, model_weights, '
        f'optimizer_weights) triple, got {type(contents).__name__}'
        + (f' of length {len(contents)}' if isinstance(contents, (tuple, list))
           else '') + '.')
  n_annotations, weights, _ = contents
  if isinstance(n_annotations, np.ndarray) and n_annotations.shape == ():
    n_annotations = n_annotations.item()
  if (isinstance(n_annotations, bool)
      or not isinstance(n_annotations, (int, np.integer))
      or not 1 <= n_annotations < 2**63):
    raise ValueError(f'{path}: n_annotations must be a positive int, got '
                     f'{_describe(n_annotations)}.')
  if not isinstance(weights, (list, tuple)):
    raise ValueError(f'{path}: model_weights must be a list of arrays, got '
                     f'{type(weights).__name__}.')
  for i, w in enumerate(weights):
    if not isinstance(w, np.ndarray) or w.dtype.kind != 'f':
      raise ValueError(
          f'{path}: model_weights[{i}] must be a floating-point numpy array, '
          + (f'got an array of dtype {w.dtype}.' if isinstance(w, np.ndarray)
             else f'got {type(w).__name__}.'))
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
  config_lib.validate_model_config(config, source)
  return config


def _checked_rank(weights, index, ndim, source):
  w = weights[index]
  if w.ndim != ndim:
    raise ValueError(
        f'{source}: model_weights[{index}] has shape {w.shape}; expected a '
        f'{ndim}-d array there.')
  return w.shape


def _expected_shapes(config: ml_collections.ConfigDict) -> dict:
  shapes = params_io.param_shapes(config)
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

  Raises:
    ValueError: a shape that does not fit, or NaN or infinite weights (also
      those float64 weights beyond float32's range), naming the array.
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
    with np.errstate(over='ignore'):  # Refused just below.
      value = np.asarray(w, dtype=np.float32)
    if not np.isfinite(value).all():
      raise ValueError(
          f'{source}: model_weights[{index}] ({entry.keras_name}) has NaN or '
          'infinite values (in float32).')
    params.setdefault(key[0], {})[key[1]] = value
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
  n_annotations, weights = _as_weight_list(path, safe_pickle.load(path))
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
  safe_pickle.dump(path, contents)
