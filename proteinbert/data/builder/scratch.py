"""Scratch files of staged proteins, and cutting record blocks among them.

Staged proteins travel as pickled (records, int64 sources) blocks (see
`order.SOURCE_BITS` for sources). A `BlockFile` appends blocks to part files
and `drain` reads them back in order, deleting each part once read.

A build's scratch files live in a hidden directory of their own
(`directory`), which the build holds an exclusive `flock` on for its whole
life. The kernel drops the lock when the build dies, however it dies
(SIGKILL, the OOM killer), so a later build can tell a dead build's scratch
directory from a running one's, and removes it, with the temporary output
file it noted (`note_output`), before it starts.
"""

import contextlib
import fcntl
import os
import pickle
import shutil
import tempfile
import time
from typing import Iterator, List, Optional, Tuple

from absl import logging
import numpy as np

from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib


_PREFIX = '.build_dataset.'
_LOCK = 'lock'
# Holds the path of the build's temporary output file.
_OUTPUT_NOTE = 'output'
# A scratch directory is without its lock only between its creation and the
# locking; one unlocked for longer is a dead build's (or an older builder's).
_UNLOCKED_GRACE_SECONDS = 60


@contextlib.contextmanager
def directory(parent: str) -> Iterator[str]:
  """A fresh scratch directory in `parent`, locked and removed at the end.

  Dead builds' scratch directories in `parent` are removed first
  (`remove_stale`).
  """
  remove_stale(parent)
  path = tempfile.mkdtemp(prefix=_PREFIX, dir=parent)
  with open(os.path.join(path, _LOCK), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield path
    finally:
      # Removed while still locked, so no other build takes it for a dead
      # one's.
      shutil.rmtree(path)


def note_output(scratch: str, output: str) -> None:
  """Notes the temporary output file that a dead build would leave behind."""
  with open(os.path.join(scratch, _OUTPUT_NOTE), 'w') as f:
    f.write(output)


def remove_stale(parent: str) -> None:
  """Removes the scratch directories (and outputs) of dead builds in `parent`.

  Logs each removal.
  """
  for name in sorted(os.listdir(parent)):
    path = os.path.join(parent, name)
    if not name.startswith(_PREFIX) or not os.path.isdir(path):
      continue
    with contextlib.ExitStack() as stack:
      if not _is_dead(path, stack):
        continue
      output = _noted_output(path)
      removed = []
      if output and os.path.exists(output):
        os.remove(output)
        removed.append(output)
      shutil.rmtree(path, ignore_errors=True)
      logging.warning(
          'Removed %s, the scratch space of a build that died (killed, or '
          'out of memory)%s.', path,
          f', and its unfinished output {removed[0]}' if removed else '')


def _is_dead(path: str, stack: contextlib.ExitStack) -> bool:
  """Whether the build of scratch directory `path` is dead.

  If so, its lock (if any) is held until `stack` closes.
  """
  try:
    lock = stack.enter_context(open(os.path.join(path, _LOCK), 'r+'))
  except FileNotFoundError:
    return time.time() - os.path.getmtime(path) > _UNLOCKED_GRACE_SECONDS
  try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return False  # A running build holds it.
  return True


def _noted_output(path: str) -> Optional[str]:
  try:
    with open(os.path.join(path, _OUTPUT_NOTE)) as f:
      return f.read()
  except FileNotFoundError:
    return None


class BlockFile:
  """Scratch space for pickled blocks: appended, then drained in order.

  Blocks go to part files of about `part_bytes` each; `drain` deletes each
  part once read, so copying staged proteins into buckets needs little more
  disk than one copy of them, and parts can be drained by different workers.

  Attributes:
    parts: the part files, in order.
    size: proteins appended.
  """

  def __init__(self, path: str, part_bytes: int = 1 << 26):
    self._path = path
    self._part_bytes = part_bytes
    self._part_size = 0
    self.parts = []
    self.size = 0

  def append(self, records: dataset_lib.Records, sources: np.ndarray) -> None:
    self.append_pickled(pickled(records, sources), len(records))

  def append_pickled(self, block: bytes, size: int) -> None:
    """Appends a `pickled` block of `size` proteins."""
    if not self.parts or self._part_size >= self._part_bytes:
      self.parts.append(part_path(self._path, len(self.parts)))
      self._part_size = 0
    with open(self.parts[-1], 'ab') as f:
      f.write(block)
    self._part_size += len(block)
    self.size += size


def part_path(path: str, index: int) -> str:
  """The `index`-th part file of the `BlockFile` at `path`."""
  return f'{path}.{index}'


def drain(
    parts: List[str]) -> Iterator[Tuple[dataset_lib.Records, np.ndarray]]:
  """The (records, sources) blocks of `parts` in order; deletes each part read.

  Parts that were never written (empty buckets) are skipped.
  """
  for part in parts:
    if not os.path.exists(part):
      continue
    with open(part, 'rb') as f:
      while f.peek(1):
        yield pickle.load(f)
    os.remove(part)


def pickled(records: dataset_lib.Records, sources: np.ndarray) -> bytes:
  """A block as `BlockFile.append_pickled` takes it."""
  return pickle.dumps((records, sources), protocol=pickle.HIGHEST_PROTOCOL)


def split(records: dataset_lib.Records, sources: np.ndarray,
          which: np.ndarray) -> Iterator[Tuple[int, dataset_lib.Records,
                                               np.ndarray]]:
  """(w, the records and sources where `which` is w), for each w, ascending.

  Args:
    records: N proteins.
    sources: int64 [N] their sources.
    which: int [N] where each protein goes, >= 0.
  """
  if not len(which):
    return
  if np.all(which == which[0]):
    yield int(which[0]), records, sources
    return
  # One reordering, then a slice per value: cheaper than a `take` each.
  order = np.argsort(which, kind='stable')
  records, sources, which = records.take(order), sources[order], which[order]
  starts = np.flatnonzero(np.diff(which, prepend=-1)).tolist()
  for start, stop in zip(starts, starts[1:] + [len(which)]):
    yield (int(which[start]), _slice(records, start, stop),
           sources[start:stop])


def _slice(records: dataset_lib.Records, start: int,
           stop: int) -> dataset_lib.Records:
  """Records [start, stop) of `records`."""
  proteins = records.proteins
  offsets = proteins.annotation_offsets[start:stop + 1]
  return dataset_lib.Records(
      chunk_lib.ProteinChunk(
          seqs=proteins.seqs[start:stop],
          annotation_offsets=offsets - offsets[0],
          annotation_indices=proteins.annotation_indices[
              offsets[0]:offsets[-1]],
          is_test=proteins.is_test[start:stop]),
      records.protein_ids[start:stop], records.entry_ids[start:stop],
      records.taxonomy_ids[start:stop])
