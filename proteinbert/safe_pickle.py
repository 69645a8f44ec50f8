"""Pickles of numeric numpy arrays: a safe reader and a numpy 1.x writer.

The official weights format (`keras_weights`) is a pickle, and weights files
come from anywhere, so reading one must never execute code from it or let it
claim memory it does not hold. `load` uses a restricted unpickler that
accepts only the numpy names needed to rebuild arrays and scalars (numpy 1.x
wrote `numpy.core.*`, numpy 2 writes `numpy._core.*`; both are accepted)
besides pickle's own containers, and resolves them to stand-ins that check
each array's dtype (numbers only) and that its data are exactly the bytes its
shape needs before numpy allocates it: a file cannot materialise more bytes
of arrays than twice its size, whatever sizes it declares, and the opcodes it
may execute are bounded too.

`dump` names `numpy.core.*`, which both numpy 1.x and numpy 2 read, so the
original package can load what is written here whatever numpy it runs on.
"""

import math
import os
import pickle
import struct
from typing import Any, BinaryIO, Callable

import numpy as np

from proteinbert import io_utils


# Dtypes (numpy type strings) that arrays and scalars in a weights file may
# have: the model's floats and the optimizer state's integers (Keras' step
# count). Object, text, complex and structured dtypes are refused before any
# array exists; `keras_weights` then requires the model weights be floats.
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


def load(path: str) -> Any:
  """The contents of the pickle at `path`, read without executing its code.

  Raises:
    ValueError: naming `path`, for anything the reader refuses (see the
      module docstring) and for a truncated or corrupt file.
  """
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


def dump(path: str, contents: Any) -> None:
  """Pickles `contents` to `path` atomically, for numpy 1.x and 2 readers."""
  with io_utils.atomic_path(path) as tmp, open(tmp, 'wb') as f:
    _Numpy1CompatiblePickler(f, protocol=4).dump(contents)
