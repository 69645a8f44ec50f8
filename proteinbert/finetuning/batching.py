"""Length buckets and fixed-shape batches, so each shape compiles once.

`length_buckets` is the original's `split_dataset_by_len`: sequence length
512, 1024, 2048, ... doubling until every sequence fits, batch size halving
(never below 1). Every sequence lands in exactly one bucket, the first whose
length holds it with <START> and <END>; nothing is cropped or dropped.
"""

from typing import Iterator, NamedTuple, Sequence

import numpy as np

from proteinbert import tokenization


class Bucket(NamedTuple):
  """Sequences evaluated together at one length.

  Attributes:
    seq_len: tokenized length L of the bucket.
    batch_size: sequences per call at that length.
    indices: int64 [n] positions (in the input order) of its sequences.
  """
  seq_len: int
  batch_size: int
  indices: np.ndarray


def length_buckets(seqs: Sequence[str], start_seq_len: int = 512,
                   start_batch_size: int = 32,
                   factor: int = 2) -> list[Bucket]:
  """Groups sequences by the shortest bucket length they fit in.

  Args:
    seqs: [N] sequences.
    start_seq_len: length of the first bucket.
    start_batch_size: batch size of the first bucket; divided by `factor` at
      each longer bucket, never below 1.
    factor: growth of the length from one bucket to the next (>= 2).

  Returns:
    The non-empty buckets in increasing length; their indices partition
    range(N).
  """
  if start_seq_len < tokenization.ADDED_TOKENS_PER_SEQ + 1:
    raise ValueError(f'start_seq_len must be at least 3, got {start_seq_len}.')
  if start_batch_size < 1 or factor < 2:
    raise ValueError(f'Need start_batch_size >= 1 and factor >= 2, got '
                     f'{start_batch_size} and {factor}.')
  lengths = tokenization.tokenized_lengths(seqs) if len(seqs) else np.zeros(
      0, np.int64)
  remaining = np.arange(len(lengths))
  buckets = []
  seq_len, batch_size = start_seq_len, start_batch_size
  while remaining.size:
    fits = lengths[remaining] <= seq_len
    if fits.any():
      buckets.append(Bucket(seq_len, batch_size, remaining[fits]))
    remaining = remaining[~fits]
    seq_len *= factor
    batch_size = max(batch_size // factor, 1)
  return buckets


def batch_slices(num: int, batch_size: int) -> Iterator[slice]:
  """Consecutive slices of at most batch_size covering range(num)."""
  for start in range(0, num, batch_size):
    yield slice(start, min(start + batch_size, num))


def pad_rows(array: np.ndarray, rows: int, value=0) -> np.ndarray:
  """`array` with its first axis padded up to `rows` with `value`."""
  missing = rows - array.shape[0]
  if missing <= 0:
    return array
  widths = [(0, missing)] + [(0, 0)] * (array.ndim - 1)
  return np.pad(array, widths, constant_values=value)
