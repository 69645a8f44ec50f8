"""Scratch files of staged proteins, and cutting record blocks among them.

Staged proteins travel as pickled (records, int64 sources) blocks (see
`order.SOURCE_BITS` for sources). A `BlockFile` appends blocks to part files
and `drain` reads them back in order, deleting each part once read.
"""

import os
import pickle
from typing import Iterator, List, Tuple

import numpy as np

from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib


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
