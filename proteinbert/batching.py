"""Running a model on many proteins: length buckets and fixed-shape batches.

Every model call sees one of a few shapes, so each compiles once:

  `run_batches`   rows of ready inputs (e.g. tokens [N, L]) in batches of a
                  fixed size, the last one padded.
  `run_bucketed`  sequences of any lengths, tokenized per length bucket
                  (`length_buckets`), so short proteins are not padded to the
                  longest and none is cropped; yields each protein's outputs.

Padding rows are cut from the outputs before they are returned.

`length_buckets` is the original's `split_dataset_by_len`: sequence length
512, 1024, 2048, ... doubling until every sequence fits, batch size halving
(never below 1). Every sequence lands in exactly one bucket, the first whose
length holds it with <START> and <END>; nothing is cropped or dropped. A
protein's bucket depends on its own length only, so its outputs never depend
on the proteins it is batched with.
"""

from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence

import jax
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


def batch_size_for_tokens(max_tokens: int, start_seq_len: int) -> int:
  """The batch size at start_seq_len that keeps about max_tokens tokens per
  call (at least one protein).

  Raises:
    ValueError: max_tokens is not positive.
  """
  if max_tokens < 1:
    raise ValueError(f'max_tokens must be positive, got {max_tokens}.')
  return max(max_tokens // start_seq_len, 1)


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


def _run_padded(fn: Callable[..., Any], inputs: Sequence[np.ndarray],
                rows: int, pad_values: Sequence) -> Any:
  """fn on inputs padded to `rows` rows; its outputs (numpy), padding cut."""
  num = inputs[0].shape[0]
  out = jax.device_get(fn(*[pad_rows(x, rows, value)
                            for x, value in zip(inputs, pad_values)]))
  return jax.tree_util.tree_map(lambda x: x[:num], out)


def run_batches(fn: Callable[..., Any], inputs: Sequence[np.ndarray],
                batch_size: int, pad_values: Sequence) -> Iterator[Any]:
  """Calls fn on consecutive batches of the inputs' rows.

  Args:
    fn: takes one [batch_size, ...] array per input; returns a pytree of
      arrays whose leading axis is the batch (None leaves allowed).
    inputs: arrays with a common first axis N.
    batch_size: rows per call; the last batch is padded up to it.
    pad_values: one per input, what its padding rows hold.

  Yields:
    fn's outputs as numpy, one per batch in order, padding rows cut.
  """
  for part in batch_slices(inputs[0].shape[0], batch_size):
    yield _run_padded(fn, [x[part] for x in inputs], batch_size, pad_values)


def run_bucketed(fn: Callable[..., Any], seqs: Sequence[str],
                 start_seq_len: int = 512, start_batch_size: int = 32,
                 row_inputs: Optional[Callable[[np.ndarray], Sequence[
                     np.ndarray]]] = None) -> Iterator[tuple[int, Any]]:
  """Runs fn on every sequence, tokenized in length buckets.

  Args:
    fn: takes int32 tokens [batch size, bucket length] (padding rows all
      `<PAD>`), then the `row_inputs` of the batch if any; returns a pytree
      of arrays whose leading axis is the batch (None leaves allowed).
    seqs: [N] amino-acid sequences.
    start_seq_len: length of the shortest bucket (see `length_buckets`).
    start_batch_size: batch size at that length.
    row_inputs: given int64 [n] indices into seqs of a batch, fn's further
      inputs for those sequences (arrays [n, ...]; padding rows are zeros),
      such as their input annotations.

  Yields:
    (index into seqs, fn's outputs for that sequence as numpy), grouped by
    bucket.
  """
  for bucket in length_buckets(seqs, start_seq_len, start_batch_size):
    for part in batch_slices(len(bucket.indices), bucket.batch_size):
      indices = bucket.indices[part]
      tokens = tokenization.tokenize([seqs[i] for i in indices],
                                     bucket.seq_len)
      extra = list(row_inputs(indices)) if row_inputs else []
      out = _run_padded(fn, [tokens] + extra, bucket.batch_size,
                        [tokenization.PAD] + [0] * len(extra))
      for row, index in enumerate(indices):
        yield int(index), jax.tree_util.tree_map(lambda x, r=row: x[r], out)
