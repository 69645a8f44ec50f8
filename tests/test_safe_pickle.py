"""Tests for proteinbert/safe_pickle.py: hostile files, and the round trip."""

import codecs
import os
import pickle
import struct

import numpy as np
import pytest

from proteinbert import safe_pickle
from tests import hostile_files


def _dump(path, contents, protocol=None):
  with open(path, 'wb') as f:
    pickle.dump(contents, f, protocol=protocol)
  return str(path)


def test_round_trip_names_numpy_core_for_numpy1_readers(tmp_path):
  contents = (3, [np.arange(6, dtype=np.float32).reshape(2, 3),
                  np.float64(0.5)], [np.array(7, np.int64)])
  path = str(tmp_path / 'w.pkl')
  safe_pickle.dump(path, contents)
  data = (tmp_path / 'w.pkl').read_bytes()
  assert b'numpy.core.multiarray' in data and b'numpy._core' not in data
  n, weights, optimizer = safe_pickle.load(path)
  assert n == 3
  np.testing.assert_array_equal(weights[0], contents[1][0])
  assert weights[0].dtype == np.float32 and weights[1] == 0.5
  assert optimizer[0] == 7 and optimizer[0].dtype == np.int64


def test_refuses_code_execution(tmp_path):
  marker = tmp_path / 'pwned'

  class Evil:

    def __reduce__(self):
      return (os.system, (f'touch {marker}',))

  path = _dump(tmp_path / 'evil.pkl', (10, [Evil()], []))
  with pytest.raises(ValueError, match='refusing to load global'):
    safe_pickle.load(path)
  assert not marker.exists()


# Hostile files: each is refused before numpy allocates what it declares.

_RECONSTRUCT = np.empty(0).__reduce__()[0]
_FROMBUFFER = np.empty(1).__reduce_ex__(5)[0]
_SCALAR = np.int64(0).__reduce__()[0]


def _refused(path, match):
  def load():
    with pytest.raises(ValueError, match=match) as e:
      safe_pickle.load(path)
    assert path in str(e.value)
  assert hostile_files.peak_traced_bytes(load) < 8 << 20


def test_object_array_is_refused_before_numpy_fills_it(tmp_path):
  """147 bytes that made numpy allocate 2.4 GB of None before the check."""
  path = _dump(tmp_path / 'bomb.pkl', hostile_files.Call(
      _RECONSTRUCT, (np.ndarray, (300_000_000,), np.dtype(object))))
  _refused(path, 'refusing numpy dtype')


def test_only_empty_arrays_are_reconstructed(tmp_path):
  path = _dump(tmp_path / 'bomb.pkl', hostile_files.Call(
      _RECONSTRUCT, (np.ndarray, (300_000_000,), np.dtype(np.float64))))
  _refused(path, 'empty ndarray')


def test_ndarray_cannot_be_called(tmp_path):
  path = _dump(tmp_path / 'bomb.pkl',
               hostile_files.Call(np.ndarray, ((300_000_000,), 'f8')))
  _refused(path, 'cannot unpickle')


@pytest.mark.parametrize('dtype', ['c8', 'U3', 'V8', 'M8[s]', 'b1'])
def test_non_numeric_dtypes_are_refused(tmp_path, dtype):
  path = _dump(tmp_path / 'w.pkl', (10, [np.zeros(3, dtype)], []))
  _refused(path, 'refusing numpy dtype')


def test_declared_shape_must_match_the_data(tmp_path):
  for name, shape in (('big', (10**9,)), ('small', (1,))):
    path = _dump(tmp_path / f'{name}.pkl', hostile_files.Call(
        _RECONSTRUCT, (np.ndarray, (0,), b'b'),
        (1, shape, np.dtype(np.float32), False, bytes(8))))
    _refused(path, 'exactly its bytes')
  path = _dump(tmp_path / 'frombuffer.pkl', hostile_files.Call(
      _FROMBUFFER, (bytearray(8), np.dtype(np.float32), (10**9,), 'C')),
      protocol=5)
  _refused(path, 'exactly its bytes')
  path = _dump(tmp_path / 'scalar.pkl',
               hostile_files.Call(_SCALAR, (np.dtype('i8'),)))
  _refused(path, 'without its 8 bytes')


def test_shared_data_cannot_multiply_memory(tmp_path):
  """One 1 MB bytes object, referenced (5 bytes each) by 100 arrays."""
  data = bytes(1 << 20)
  array = lambda: hostile_files.Call(
      _RECONSTRUCT, (np.ndarray, (0,), b'b'),
      (1, (1 << 18,), np.dtype(np.float32), False, data))
  path = _dump(tmp_path / 'shared.pkl', (10, [array() for _ in range(100)],
                                         []))
  with pytest.raises(ValueError, match='beyond 2x'):
    safe_pickle.load(path)
  text = '\0' * (1 << 20)
  encode = lambda: hostile_files.Call(codecs.encode, (text, 'latin1'))
  with open(tmp_path / 'encode.pkl', 'wb') as f:
    pickle.dump([encode() for _ in range(100)], f, protocol=2)
  with pytest.raises(ValueError, match='beyond 2x'):
    safe_pickle.load(str(tmp_path / 'encode.pkl'))


def test_declared_lengths_allocate_nothing(tmp_path):
  """pickle's own unpicklers allocate a BYTEARRAY8's length before reading,
  and the C one grows its memo to a LONG_BINPUT's index."""
  truncated = {
      'bytearray.pkl': (pickle.PROTO + b'\x05' + pickle.BYTEARRAY8
                        + struct.pack('<Q', 1 << 40) + pickle.STOP),
      'binbytes.pkl': (pickle.PROTO + b'\x04' + pickle.BINBYTES8
                       + struct.pack('<Q', 1 << 40) + pickle.STOP),
  }
  for name, data in truncated.items():
    (tmp_path / name).write_bytes(data)
    _refused(str(tmp_path / name), 'truncated')
  # A valid pickle of None, whose memo index would cost the C unpickler 16 GB.
  memo = tmp_path / 'memo.pkl'
  memo.write_bytes(pickle.NONE + pickle.LONG_BINPUT
                   + struct.pack('<I', (1 << 31) - 1) + pickle.STOP)

  def load():
    assert safe_pickle.load(str(memo)) is None
  assert hostile_files.peak_traced_bytes(load) < 8 << 20


def test_opcodes_are_bounded(tmp_path):
  path = tmp_path / 'many.pkl'
  path.write_bytes(pickle.MARK + pickle.NONE * 300_000 + pickle.LIST
                   + pickle.STOP)
  with pytest.raises(ValueError, match='opcodes'):
    safe_pickle.load(str(path))


def test_build_applies_only_to_arrays_and_dtypes(tmp_path):
  path = _dump(tmp_path / 'w.pkl', hostile_files.Call(
      codecs.encode, ('x', 'latin1'), {'__class__': 1}))
  _refused(path, 'BUILD of a bytes')
