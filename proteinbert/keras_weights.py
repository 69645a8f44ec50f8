"""The official weights format: the original package's pickle dump.

The published pretrained model (and every checkpoint of the original package)
is a pickle of `(n_annotations, model_weights, optimizer_weights)`, where
`model_weights` is the Keras model's `get_weights()`: numpy arrays in the
order of `keras_layout` below (layer by layer as the Keras functional model
lists them; kernels before biases, gamma before beta, Wq, Wk, Wv).

Loading never executes code from the file: a restricted unpickler accepts only
the numpy names needed to rebuild arrays and scalars (numpy 1.x wrote
`numpy.core.*`, numpy 2 writes `numpy._core.*`; both are accepted) besides
pickle's own containers, and resolves them to stand-ins that check each
array's dtype (numbers only) and that its data are exactly the bytes its shape
needs before numpy allocates it: a file cannot materialise more bytes of
arrays than twice its size, whatever sizes it declares. NaN or infinite
weights are refused. Exports name `numpy.core.*`, which both numpy 1.x and
numpy 2 read, so the original package can load models trained here whatever
numpy it runs on.

The architecture is inferred from the array shapes; only the wide
convolution's dilation cannot be, and comes from the config (5 by default).
"""

import copy
import math
import os
import pickle
import struct
from typing import Any, BinaryIO, Callable, NamedTuple, Optional, Sequence

import haiku as hk
import ml_collections
import numpy as np

from proteinbert import config as config_lib
from proteinbert import io_utils
from proteinbert import params_io

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


# Dtypes (numpy type strings) that arrays and scalars in a weights file may
# have: the model's floats and the optimizer state's integers (Keras' step
# count). Object, text, complex and structured dtypes are refused before any
# array exists; the model weights must be floats (`_as_weight_list`).
_DTYPES = frozenset(['f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2',
                     'u4', 'u8'])
_MAX_NDIM = 32
# Opcodes one file may execute. Pickles of numpy arrays take 6 to 24 per
# array (by protocol), so the published model with its Adam state (3 x 145 + 1
# arrays) takes at most ~10,000; this allows models with 20x as many arrays
# while bounding the Python objects a hostile file can create (at most one per
# opcode, ~100 bytes) to ~20 MB.
_MAX_OPCODES = 200_000
# Array bytes one file may materialise, as a multiple of its size: each
# array's data are bytes of the file, used once; files of protocol 2 pass
# them through `_codecs.encode` first, which counts too. (Larger models are
# larger files; no declared size is trusted beyond the bytes behind it.)
_MAX_EXPANSION = 2


def _refusal(what: str) -> pickle.UnpicklingError:
  return pickle.UnpicklingError(
      f'refusing {what}: an official weights file holds only numeric numpy '
      'arrays, numbers and lists/tuples.')


def _checked_shape(shape: Any) -> tuple[int, ...]:
  if (type(shape) is not tuple or len(shape) > _MAX_NDIM
      or any(type(d) is not int or not 0 <= d < 2**63 for d in shape)):
    raise _refusal('an array shape that is not a tuple of sizes')
  return shape


class _NdarrayStandIn:
  """Stands for `numpy.ndarray` as `_reconstruct`'s first argument.

  Unlike the class, it cannot be called to allocate an array of any size.
  """


_NDARRAY = _NdarrayStandIn()


class _PendingArray(np.ndarray):
  """The empty array `_reconstruct` makes; BUILD then gives it its data."""


class _PendingDtype:
  """`numpy.dtype(typestr)`, whose byte order BUILD then sets."""

  def __init__(self, typestr: str):
    self._typestr = typestr
    self._byteorder = '='

  def set_state(self, state: Any) -> None:
    # numpy writes (version 3 or 4, byteorder, subarray, names, fields,
    # elsize, alignment, flags[, metadata]); plain numbers have no subarray,
    # names or fields.
    if not (type(state) is tuple and len(state) in (8, 9)
            and type(state[0]) is int and type(state[1]) is str
            and state[1] in ('<', '>', '|', '=')
            and all(x is None for x in state[2:5])):
      raise _refusal('a numpy dtype state other than a byte order')
    self._byteorder = state[1]

  def resolve(self) -> np.dtype:
    return np.dtype(self._typestr).newbyteorder(self._byteorder)


def _make_dtype(typestr: Any, align: Any = False, copy: Any = False
                ) -> _PendingDtype:
  del align, copy  # Irrelevant to plain numbers.
  if type(typestr) is not str or typestr not in _DTYPES:
    raise _refusal(f'numpy dtype {typestr!r:.40}')
  return _PendingDtype(typestr)


def _resolved(dtype: Any) -> np.dtype:
  if type(dtype) is not _PendingDtype:
    raise _refusal(f'a {type(dtype).__name__} as a numpy dtype')
  return dtype.resolve()


def _counted(load: Callable[[Any], None]) -> Callable[[Any], None]:
  def counted(unpickler):
    unpickler.opcodes += 1
    if unpickler.opcodes > _MAX_OPCODES:
      raise _refusal(f'more than {_MAX_OPCODES:,} pickle opcodes')
    load(unpickler)
  return counted


class _ClampedFile:
  """Reads that never ask for more than what is left of the file.

  A length declared in the file then cannot make Python allocate more than
  the file holds.
  """

  def __init__(self, file: BinaryIO, size: int):
    self._file, self._left = file, size

  def read(self, n: int) -> bytes:
    data = self._file.read(min(n, self._left))
    self._left -= len(data)
    return data

  def readline(self) -> bytes:
    line = self._file.readline()
    self._left -= len(line)
    return line


class _RestrictedUnpickler(pickle._Unpickler):  # pylint: disable=protected-access
  """Builds numeric numpy arrays, numbers and pickle's containers, nothing else.

  The pure-Python unpickler, so that every opcode can be checked: the numpy
  globals resolve to stand-ins that check dtype, shape and data length before
  numpy allocates anything, BUILD applies only to the arrays and dtypes they
  make, the bytes arrays take are bounded by the file's size and the opcodes
  by `_MAX_OPCODES`.
  """

  def __init__(self, file: BinaryIO, size: int):
    super().__init__(_ClampedFile(file, size))
    self.opcodes = 0
    self._budget = _MAX_EXPANSION * size
    # (module, name) -> what it resolves to; numpy 1.x wrote `numpy.core.*`,
    # numpy 2 writes `numpy._core.*`; both are accepted.
    self._globals = {
        ('numpy.core.multiarray', '_reconstruct'): self._reconstruct,
        ('numpy.core.multiarray', 'scalar'): self._scalar,
        ('numpy.core.numeric', '_frombuffer'): self._frombuffer,
        ('numpy', 'ndarray'): _NDARRAY,
        ('numpy', 'dtype'): _make_dtype,
        # Protocol-2 pickles written by Python 3 encode bytes with this.
        ('_codecs', 'encode'): self._encode,
    }

  def find_class(self, module: str, name: str) -> Any:
    canonical = module.replace('numpy._core', 'numpy.core', 1)
    if (canonical, name) not in self._globals:
      raise pickle.UnpicklingError(
          f'refusing to load global {module:.100}.{name:.100}: an official '
          'weights file holds only numpy arrays, numbers and lists/tuples.')
    return self._globals[canonical, name]

  def _charge(self, nbytes: int) -> None:
    self._budget -= nbytes
    if self._budget < 0:
      raise _refusal(f'array data beyond {_MAX_EXPANSION}x the '
                     "file's size")

  def _reconstruct(self, subtype: Any, shape: Any, typecode: Any
                   ) -> _PendingArray:
    del typecode  # numpy writes 'b'; the dtype comes with BUILD.
    if subtype is not _NDARRAY or _checked_shape(shape) != (0,):
      raise _refusal('numpy _reconstruct other than of an empty ndarray')
    return np.ndarray.__new__(_PendingArray, (0,), np.uint8)

  def _scalar(self, dtype: Any, data: Any = None) -> np.generic:
    dtype = _resolved(dtype)
    if type(data) is not bytes or len(data) != dtype.itemsize:
      raise _refusal(f'a numpy {dtype} scalar without its {dtype.itemsize} '
                     'bytes')
    self._charge(len(data))
    return np.frombuffer(data, dtype)[0]

  def _frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any
                  ) -> np.ndarray:
    shape, dtype = _checked_shape(shape), _resolved(dtype)
    if (type(buffer) not in (bytes, bytearray, memoryview)
        or type(order) is not str or order not in ('C', 'F')
        or memoryview(buffer).nbytes != math.prod(shape) * dtype.itemsize):
      raise _refusal(f'a numpy {dtype} {shape} array whose data are not '
                     'exactly its bytes')
    self._charge(memoryview(buffer).nbytes)
    return np.frombuffer(buffer, dtype).reshape(shape, order=order)

  def _encode(self, text: Any, encoding: Any = 'utf-8') -> bytes:
    if (type(text) is not str or type(encoding) is not str
        or encoding not in ('latin1', 'latin-1')):
      raise _refusal('_codecs.encode other than of text to latin1 bytes')
    data = text.encode('latin1')
    self._charge(len(data))
    return data

  def _build_array(self, array: _PendingArray, state: Any) -> None:
    # numpy writes (version 1, shape, dtype, is_fortran, data).
    if not (type(state) is tuple and len(state) == 5
            and type(state[0]) is int and state[0] == 1):
      raise _refusal('a numpy array state other than version 1')
    _, shape, dtype, fortran, data = state
    shape, dtype = _checked_shape(shape), _resolved(dtype)
    if (type(fortran) is not bool or type(data) not in (bytes, bytearray)
        or len(data) != math.prod(shape) * dtype.itemsize):
      raise _refusal(f'a numpy {dtype} {shape} array whose data are not '
                     'exactly its bytes')
    self._charge(len(data))
    np.ndarray.__setstate__(array, (1, shape, dtype, fortran, data))

  def load_build(self) -> None:
    state = self.stack.pop()
    target = self.stack[-1]
    if type(target) is _PendingArray:
      self._build_array(target, state)
    elif type(target) is _PendingDtype:
      target.set_state(state)
    else:
      raise _refusal(f'BUILD of a {type(target).__name__}')

  def load_bytearray8(self) -> None:
    # pickle's own allocates the declared length before reading.
    size, = struct.unpack('<Q', self.read(8))
    data = self.read(size)
    if len(data) != size:
      raise pickle.UnpicklingError('pickle data was truncated')
    self.append(bytearray(data))

  dispatch = {code: _counted(load) for code, load in {
      **pickle._Unpickler.dispatch,  # pylint: disable=protected-access
      pickle.BUILD[0]: load_build,
      pickle.BYTEARRAY8[0]: load_bytearray8,
  }.items()}


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
  with open(path, 'rb') as f:
    try:
      return _RestrictedUnpickler(f, os.fstat(f.fileno()).st_size).load()
    except pickle.UnpicklingError as e:
      raise ValueError(
          f'{path}: not a valid official weights file: {e}') from e
    except Exception as e:  # Damaged input makes pickle raise assorted types.
      raise ValueError(
          f'{path}: cannot unpickle (truncated or corrupt file?): '
          f'{type(e).__name__}: {e}') from e


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
