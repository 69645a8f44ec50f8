"""Atomic file writes (a crash never leaves a file that looks complete), and
strict JSON."""

import contextlib
import json
import math
import os
import tempfile
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str):
  """Yields a temporary path beside `path`; renames it to `path` on success.

  The temporary file lives in the same directory, so the final rename is
  atomic on POSIX file systems. On any exception the temporary file is
  removed and `path` (if it existed) is left untouched.

  Args:
    path: the final destination.

  Yields:
    The temporary path to write to.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
      dir=directory, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
  os.close(fd)
  # mkstemp creates 0600 files; results should be readable like any other.
  os.chmod(tmp, 0o644)
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def starts_with(path: str, magic: bytes) -> bool:
  """Whether the file at `path` begins with the bytes `magic`."""
  with open(path, 'rb') as f:
    return f.read(len(magic)) == magic


def _finite_or_none(value: Any) -> Any:
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  if isinstance(value, dict):
    return {k: _finite_or_none(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite_or_none(v) for v in value]
  return value


def json_dumps(value: Any, **kwargs) -> str:
  """`json.dumps` for files other programs parse: NaN and infinities, which
  JSON lacks (Python would write a bare NaN), become null.

  Args:
    value: dicts, lists, tuples, strings, numbers (numpy floats become
      Python floats), booleans and None.
    **kwargs: passed to `json.dumps` (indent, sort_keys, default, ...).
  """
  return json.dumps(_finite_or_none(value), allow_nan=False, **kwargs)
