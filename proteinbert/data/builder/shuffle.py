"""Pass 2: the staged proteins as buckets in output order.

Consecutive key ranges make a bucket; workers sort each bucket by key and
map its annotations to the vocabulary (`Shuffler`). A range with more than
`bucket_size` proteins (the estimate was low, or the mode stages everything
as one range) is first split into buckets by key. The output order depends
only on the seed and the input (not on workers, ranges or buckets).
"""

import math
import os
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np

from proteinbert.data import dataset as dataset_lib
from proteinbert.data.builder import annotate
from proteinbert.data.builder import order
from proteinbert.data.builder import scratch
from proteinbert.data.builder import workers

# A part size no bucket file reaches.
_NO_SPLIT = 1 << 62


class Shuffler:
  """Pass 2, on workers: puts staged proteins in key order, bucket by bucket.

  `distribute` splits a key range with more proteins than a bucket holds
  (from a group of its staging parts) into per-bucket files by key; then
  `prepare` merges one bucket's files, sorts the bucket by key and maps its
  annotations to the vocabulary.

  Attributes:
    keys: the sort keys.
  """

  def __init__(self, keys: order.SortKeys, lookup: np.ndarray,
               duplicate_error: Optional[Callable[[str], Exception]]):
    """Shuffles by `keys`; with `duplicate_error`, IDs must be unique.

    Args:
      keys: the sort keys (or the mode's equivalent, `Mode.output_keys`).
      lookup: int32 [T] term index -> vocabulary index or -1.
      duplicate_error: for 'id' keys: makes the error that an ID of two
        proteins raises.
    """
    self.keys = keys
    self._lookup = lookup
    self._duplicate_error = duplicate_error

  def distribute(self, task: Tuple[str, List[str], int, int, int]) -> None:
    """Splits staging parts into buckets by key.

    Args:
      task: (prefix, parts, low, width, count): the proteins of `parts` with
        keys in [low + b * width, low + (b + 1) * width) go to the file
        `bucket_path(prefix, b)`, for b < count.
    """
    prefix, parts, low, width, count = task
    files = [scratch.BlockFile(f'{prefix}.{b}', part_bytes=_NO_SPLIT)
             for b in range(count)]
    for records, sources in scratch.drain(parts):
      for b, part, part_sources in scratch.split(
          records, sources, (self.keys(records, sources) - low) // width):
        files[b].append(part, part_sources)

  @staticmethod
  def bucket_path(prefix: str, bucket: int) -> str:
    """The file of `bucket` that `distribute` wrote for `prefix`."""
    # A bucket file never splits, so its one part is part 0.
    return scratch.part_path(f'{prefix}.{bucket}', 0)

  def prepare(self, parts: List[str]) -> dataset_lib.Records:
    """The proteins of `parts` in key order, with vocabulary annotations."""
    blocks = list(scratch.drain(parts))
    records = dataset_lib.Records.concatenate([r for r, _ in blocks])
    keys = self.keys(records, np.concatenate([np.zeros(0, np.int64)] +
                                             [s for _, s in blocks]))
    permutation = np.argsort(keys, kind='stable')
    records = records.take(permutation)
    if self._duplicate_error:
      order.check_unique(records.entry_ids, keys[permutation],
                         self._duplicate_error)
    return dataset_lib.Records(
        annotate.to_vocabulary(records.proteins, self._lookup), *records[1:])


def shuffled(staged: List[scratch.BlockFile], shuffler: Shuffler,
             bucket_size: int, directory: str,
             num_workers: int) -> Iterator[dataset_lib.Records]:
  """The staged key ranges' proteins as buckets in output order.

  Consecutive ranges that together hold at most `bucket_size` proteins make
  a bucket; a range holding more is first split into buckets of its own
  (`Shuffler.distribute`, a task per group of its parts).

  Args:
    staged: per key range, the file of its proteins (`stage.Stager.staged`).
    shuffler: sorts and maps buckets.
    bucket_size: proteins per bucket, at most.
    directory: the scratch directory.
    num_workers: worker processes (see `workers.ordered_map`).
  """
  width = order.range_width(shuffler.keys.space, len(staged))  # As `Ranges`.
  buckets, splits = [], []  # Bucket -> its files; distribute tasks.
  group, size = [], 0
  for r, ranged in enumerate(staged):
    if group and size + ranged.size > bucket_size:
      buckets.append(group)
      group, size = [], 0
    if ranged.size <= bucket_size:
      group += ranged.parts
      size += ranged.size
      continue
    count = math.ceil(ranged.size / bucket_size)
    groups = np.array_split(ranged.parts, min(max(num_workers, 1),
                                              len(ranged.parts)))
    prefixes = [os.path.join(directory, f'range{r}.group{g}')
                for g in range(len(groups))]
    splits += [(prefix, list(parts), r * width,
                order.range_width(width, count), count)
               for prefix, parts in zip(prefixes, groups)]
    buckets += [[shuffler.bucket_path(prefix, b) for prefix in prefixes]
                for b in range(count)]
  if group or not buckets:
    buckets.append(group)
  for _ in workers.ordered_map(shuffler.distribute, splits, num_workers):
    pass
  # Prepared buckets wait in memory for the writer: two at most.
  yield from workers.ordered_map(shuffler.prepare, buckets, num_workers,
                                 in_flight=2)
