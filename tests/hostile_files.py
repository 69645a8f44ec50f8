"""Hostile weights files for tests: pickled calls, deflate bombs, memory."""

import math
import tracemalloc
import zipfile

import numpy as np


class Call:
  """Pickles as `fn(*args)`, then BUILD with `state` if given."""

  def __init__(self, fn, args, state=None):
    self.fn, self.args, self.state = fn, args, state

  def __reduce__(self):
    return (self.fn, self.args) + (() if self.state is None
                                   else (self.state,))


def add_zeros_entry(path: str, name: str, shape: tuple,
                    dtype=np.float32) -> None:
  """Appends the entry `name` of zeros to an .npz file, deflated.

  The data are streamed, so a file of ~1/1000 of the entry's size is written
  without ever holding the entry in memory: a zip bomb.
  """
  header = {'descr': np.lib.format.dtype_to_descr(np.dtype(dtype)),
            'fortran_order': False, 'shape': tuple(shape)}
  chunk = bytes(1 << 20)
  nbytes = math.prod(shape) * np.dtype(dtype).itemsize
  with zipfile.ZipFile(path, 'a', zipfile.ZIP_DEFLATED,
                       compresslevel=1) as zf:
    with zf.open(name + '.npy', 'w', force_zip64=True) as f:
      np.lib.format.write_array_header_1_0(f, header)
      for start in range(0, nbytes, len(chunk)):
        f.write(chunk[:nbytes - start])


def peak_traced_bytes(fn) -> int:
  """Peak bytes Python and numpy allocated while fn() ran (or raised)."""
  tracemalloc.start()
  try:
    fn()
  finally:
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
  return peak
