"""Tokenization with the original ProteinBERT vocabulary.

The vocabulary and its indices are those of the original package (and so of
the published weights): the 22 amino-acid letters `ACDEFGHIKLMNPQRSTUVWXY`
(indices 0-21), then `<OTHER>` (22), `<START>` (23), `<END>` (24) and `<PAD>`
(25). Every sequence becomes `<START> residues... <END>`, then is cropped or
padded with `<PAD>` to the requested length.

Any character outside the 22 upper-case letters, lower case included,
becomes `<OTHER>`, exactly as in the original (Keras parity depends on it):
the published model never saw lower-case letters. The readers of sequences
apply `proteinbert.residues` first (upper case, a final '*' dropped, other
characters an error), so the tokenizer sees lower case only when called
directly; `normalize_case=True` then upper-cases first.

Batch encoding is vectorised: all sequences are joined into one byte buffer and
mapped through a 256-entry lookup table at once; each row of the output is then
one slice copy (throughput in WORKSPACE_NOTES.md).
"""

from typing import Optional, Sequence, Union

import numpy as np

AMINO_ACIDS = 'ACDEFGHIKLMNPQRSTUVWXY'
SPECIAL_TOKENS = ('<OTHER>', '<START>', '<END>', '<PAD>')
VOCAB = tuple(AMINO_ACIDS) + SPECIAL_TOKENS
VOCAB_SIZE = len(VOCAB)  # 26

OTHER = VOCAB.index('<OTHER>')
START = VOCAB.index('<START>')
END = VOCAB.index('<END>')
PAD = VOCAB.index('<PAD>')

# <START> and <END> around every sequence.
ADDED_TOKENS_PER_SEQ = 2

SeqLike = Union[str, bytes]


def _lookup_table(normalize_case: bool) -> np.ndarray:
  table = np.full(256, OTHER, dtype=np.int32)
  for index, letter in enumerate(AMINO_ACIDS):
    table[ord(letter)] = index
    if normalize_case:
      table[ord(letter.lower())] = index
  return table


_TABLES = {False: _lookup_table(False), True: _lookup_table(True)}


def _as_single_byte_chars(seq: SeqLike, position: int) -> bytes:
  """One byte per character of the sequence, as the original counts them.

  The original decodes bytes as UTF-8 and maps every character on its own, so
  a non-ASCII character is one `<OTHER>` token, not one per UTF-8 byte.
  """
  if isinstance(seq, (bytes, bytearray, np.bytes_)):
    seq = bytes(seq)
    if seq.isascii():
      return seq
    try:
      seq = seq.decode('utf-8')
    except UnicodeDecodeError as e:
      raise ValueError(f'Sequence {position} is not valid UTF-8: {e}') from e
  elif not isinstance(seq, str):
    raise TypeError(
        f'Sequence {position} has type {type(seq).__name__}; expected str or '
        'bytes.')
  # '?' is outside the vocabulary, so any non-ASCII character maps to <OTHER>.
  return seq.encode('ascii', errors='replace')


def _as_batch(seqs) -> Sequence[SeqLike]:
  if isinstance(seqs, (str, bytes, bytearray, np.bytes_)):
    return [seqs]
  if isinstance(seqs, np.ndarray):
    return list(seqs.reshape(-1))
  try:
    return list(seqs)
  except TypeError as e:
    raise TypeError(
        f'Expected a sequence or a list of sequences (str or bytes), got '
        f'{type(seqs).__name__}.') from e


def tokenized_lengths(seqs) -> np.ndarray:
  """Length of each sequence after tokenization (residues + 2), int64 [B]."""
  batch = _as_batch(seqs)
  return np.array(
      [len(_as_single_byte_chars(s, i)) for i, s in enumerate(batch)],
      dtype=np.int64) + ADDED_TOKENS_PER_SEQ


def tokenize(
    seqs,
    seq_len: Optional[int] = None,
    *,
    crop_offsets: Optional[np.ndarray] = None,
    normalize_case: bool = False,
) -> np.ndarray:
  """Encodes protein sequences as token indices.

  Args:
    seqs: a list (or array) of sequences, each str or bytes; a single str or
      bytes is treated as a batch of one.
    seq_len: length L of the output, `<START>` and `<END>` included. Longer
      sequences are cropped, shorter ones padded with `<PAD>`. None pads to the
      longest tokenized sequence in the batch.
    crop_offsets: int [B], where each window of length L starts inside the
      tokenized sequence (0 keeps `<START>`). Defaults to 0 for every sequence,
      so cropping keeps the N-terminus. Pretraining passes random offsets, as
      the original does, in [0, max(0, tokenized length - L)].
    normalize_case: map lower-case amino-acid letters to their tokens instead
      of to `<OTHER>` (the original's behaviour, and the default).

  Returns:
    int32 [B, L] token indices.

  Raises:
    TypeError: an element is not str or bytes.
    ValueError: seq_len < 1, or crop_offsets has the wrong shape or is negative.
  """
  batch = _as_batch(seqs)
  chars = [_as_single_byte_chars(s, i) for i, s in enumerate(batch)]
  residues = np.array([len(c) for c in chars], dtype=np.int64)
  if seq_len is None:
    seq_len = int(residues.max(initial=0)) + ADDED_TOKENS_PER_SEQ
  if seq_len < 1:
    raise ValueError(f'seq_len must be positive, got {seq_len}.')

  num_seqs = len(chars)
  if crop_offsets is None:
    crop_offsets = np.zeros(num_seqs, dtype=np.int64)
  crop_offsets = np.asarray(crop_offsets, dtype=np.int64)
  if crop_offsets.shape != (num_seqs,):
    raise ValueError(
        f'crop_offsets has shape {crop_offsets.shape}; expected ({num_seqs},).')
  if np.any(crop_offsets < 0):
    raise ValueError('crop_offsets must be non-negative.')

  # One flat buffer holding every `<START> residues <END>`: the lookup table
  # maps all residues at once, and each row is then a single slice copy.
  tokenized = residues + ADDED_TOKENS_PER_SEQ
  seq_starts = np.cumsum(tokenized) - tokenized
  flat = np.empty(int(tokenized.sum()), dtype=np.int32)
  flat[seq_starts] = START
  flat[seq_starts + tokenized - 1] = END
  residue_positions = (np.arange(int(residues.sum()), dtype=np.int64) +
                       np.repeat(2 * np.arange(num_seqs) + 1, residues))
  flat[residue_positions] = _TABLES[bool(normalize_case)][
      np.frombuffer(b''.join(chars), dtype=np.uint8)]

  copy_lengths = np.clip(tokenized - crop_offsets, 0, seq_len)
  tokens = np.full((num_seqs, seq_len), PAD, dtype=np.int32)
  for row, (begin, count) in enumerate(
      zip((seq_starts + crop_offsets).tolist(), copy_lengths.tolist())):
    tokens[row, :count] = flat[begin:begin + count]
  return tokens


def detokenize(tokens: np.ndarray) -> list[str]:
  """Inverse of `tokenize`, for inspection.

  Special tokens are dropped except `<OTHER>`, which is written as '?', so the
  result never pretends to know a residue that was not in the vocabulary.

  Args:
    tokens: int [B, L] token indices.

  Returns:
    A list of B strings.
  """
  letters = np.array(list(AMINO_ACIDS) + ['?', '', '', ''], dtype=object)
  tokens = np.asarray(tokens)
  if tokens.ndim != 2:
    raise ValueError(f'tokens must be [B, L], got shape {tokens.shape}.')
  return [''.join(letters[row]) for row in tokens]
