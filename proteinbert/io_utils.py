"""Atomic file writes: a crash never leaves a file that looks complete."""

import contextlib
import os
import tempfile


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
