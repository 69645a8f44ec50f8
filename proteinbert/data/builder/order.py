"""The output order: a sort key per staged protein, and key ranges.

Each kept protein gets a sort key, a pure function of the seed and the
protein's source (its position in the input: 'position' order) or ID ('id'
order), so workers can compute keys in any order and the output order
depends only on the seed and the input. Sorting by key is a pseudo-random
permutation, so any contiguous shard of the output (one per host) is a
uniform sample. (Compatibility mode has keys of its own: `modes`.)

Pass 1 stages proteins by key range (`Ranges`), about `RANGES_PER_BUCKET`
ranges per bucket of `bucket_size`, so that pass 2 can make buckets of whole
ranges.
"""

import hashlib
import math
from typing import Callable, List, Optional, Tuple

import numpy as np

from proteinbert.data import dataset as dataset_lib
from proteinbert.data.builder import scratch

# An entry's source: its block's index above these bits, its position in
# the block below.
SOURCE_BITS = 32
# Key ranges that pass 1 stages into at most (see `Ranges`): more would cut
# blocks into pieces too small to pickle efficiently.
MAX_RANGES = 256
# Staged key ranges per bucket, about: enough that buckets of whole ranges
# come close to `bucket_size`.
RANGES_PER_BUCKET = 4
# Bits of the hashed sort keys; collisions are negligible and break by
# staging order.
_KEY_BITS = 62
_KEY_SPACE = 1 << _KEY_BITS


def _splitmix64(x: np.ndarray) -> np.ndarray:
  """A bijective mix of uint64 [K] values (Steele et al.'s SplitMix64)."""
  x = x + np.uint64(0x9E3779B97F4A7C15)
  x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


class SortKeys:
  """A hashed sort key in [0, space) per staged protein.

  Attributes:
    space: keys are below this.
  """
  space = _KEY_SPACE

  def __init__(self, order: str, seed: int):
    """Keys hashing each protein's source ('position') or ID ('id')."""
    self._order = order
    if order == 'id':
      self._hash = hashlib.blake2b(digest_size=8,
                                   key=seed.to_bytes(4, 'little'))
    else:
      self._salt = _splitmix64(np.array([seed], np.uint64))[0]

  def __call__(self, records: dataset_lib.Records,
               sources: np.ndarray) -> np.ndarray:
    """int64 [N] keys of N staged `records` with int64 [N] `sources`."""
    if self._order == 'id':
      mixed = np.frombuffer(b''.join(map(self._digest, records.entry_ids)),
                            np.uint64)
    else:
      mixed = _splitmix64(sources.astype(np.uint64) ^ self._salt)
    return (mixed >> np.uint64(64 - _KEY_BITS)).astype(np.int64)

  def _digest(self, entry_id: str) -> bytes:
    digest = self._hash.copy()
    digest.update(entry_id.encode())
    return digest.digest()


def check_unique(entry_ids: List[str], keys: np.ndarray,
                 error: Callable[[str], Exception]) -> None:
  """Raises `error(ID)` for an ID of two proteins sorted by 'id' keys.

  Equal IDs have equal keys, so they are neighbours.
  """
  for i in np.flatnonzero(keys[1:] == keys[:-1]).tolist():
    if entry_ids[i] == entry_ids[i + 1]:
      raise error(entry_ids[i])


def range_width(space: int, count: int) -> int:
  """The width of `count` equal ranges that together cover [0, space)."""
  return -(-space // count)


class Ranges:
  """Pass 1's split of the sort-key space into `count` equal ranges.

  When a protein's sort key is known as soon as it is staged, each key range
  is staged in files of its own and the shuffle makes buckets of whole
  ranges: the staged proteins are written and read once. Without staging
  keys (compatibility mode, whose keys need the number of entries, known
  only at the end) everything is staged as one range, which the shuffle
  first splits into buckets.

  Attributes:
    count: the number of ranges.
  """

  def __init__(self, keys: Optional[SortKeys], count: int):
    self._keys = keys
    self.count = count if keys else 1
    if keys:
      self._width = range_width(keys.space, count)

  def pickled(self, records: dataset_lib.Records,
              sources: np.ndarray) -> List[Tuple[int, bytes, int]]:
    """(range, `scratch.pickled` records and sources, size) per range."""
    which = (self._keys(records, sources) // self._width if self._keys
             else np.zeros(len(records), np.int64))
    return [(r, scratch.pickled(part, part_sources), len(part))
            for r, part, part_sources in scratch.split(records, sources,
                                                       which)]


def range_count(estimate: float, bucket_size: int) -> int:
  """Key ranges to stage `estimate` proteins in (see `Ranges`).

  About `RANGES_PER_BUCKET` per bucket, so that buckets of whole ranges
  come near `bucket_size`; one when everything fits in a bucket. A poor
  estimate costs time only: a range with more than `bucket_size` proteins
  is split into buckets of its own.
  """
  if estimate <= bucket_size:
    return 1
  return min(MAX_RANGES, math.ceil(RANGES_PER_BUCKET * estimate /
                                   bucket_size))
