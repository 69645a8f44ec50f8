"""One rule for the residues of a protein sequence, applied by every reader.

A residue is a letter A-Z. Readers of sequences (FASTA files for embed,
predict_go and score_variants, fine-tuning and variant CSVs, the dataset
builder) and the entry points that take sequences from a notebook apply
`normalize`:

* letters are upper-cased: FASTA files mark soft-masked regions in lower
  case, and the original tokenizer, which the published model was trained
  with, reads a lower-case letter as `<OTHER>`, so a lower-case file would
  silently run as all-`<OTHER>`;
* one final '*' (a stop codon) is dropped, and ASCII whitespace anywhere
  (FASTA line breaks, sequences pasted in blocks of ten);
* the 22 letters of the vocabulary are tokens; B, J, O and Z (IUPAC: D or N,
  I or L, pyrrolysine, E or Q) are kept and tokenize as `<OTHER>`, as in the
  original; `odd_letters` names them so that callers can report them;
* anything else (digits, gaps '-' and '.', punctuation, an internal '*',
  control characters, anything not ASCII) breaks the rule: a user-facing
  reader raises an error naming the file, the line and the character
  (`describe`), and the builder drops the entry as a counted
  'invalid_sequence' skip.

The tokenizer is not part of this: it maps every unknown character to
`<OTHER>` exactly as the original does, on which Keras parity depends.
"""

import string
from typing import Optional, Sequence

from proteinbert import tokenization

# A reader's errors end with this.
RULE = ("expected letters A-Z (either case) and at most one final '*'; "
        'remove alignment gaps, numbering and other characters.')

_LETTERS = string.ascii_letters.encode()
_UPPER = string.ascii_uppercase.encode()
_WHITESPACE = string.whitespace.encode()
_VOCABULARY = frozenset(tokenization.AMINO_ACIDS)


def normalize_bytes(seq: bytes) -> Optional[bytes]:
  """`seq` under the rule (upper case), or None if a character breaks it.

  The builder's check, run on every protein of a release, so it works on
  bytes with C-speed calls only (a few ms per million residues, see
  WORKSPACE_NOTES.md).
  """
  if not seq.translate(None, _UPPER):  # Real sequences: one scan, no copy.
    return seq
  seq = seq.translate(None, _WHITESPACE)
  if seq.endswith(b'*'):
    seq = seq[:-1]
  if seq.translate(None, _LETTERS):
    return None
  return seq.upper()


def normalize(seq: str) -> Optional[str]:
  """`normalize_bytes` for text: `seq` under the rule, or None."""
  if not seq.isascii():
    return None
  normalized = normalize_bytes(seq.encode('ascii'))
  return None if normalized is None else normalized.decode('ascii')


def first_invalid(seq: str) -> Optional[int]:
  """Index in `seq` of the first character that breaks the rule, or None.

  For error messages (a Python loop, run on the error path only).
  """
  last = len(seq.rstrip(string.whitespace)) - 1
  for i, char in enumerate(seq):
    if not (char.isascii() and (char.isalpha() or char in string.whitespace)
            or (char == '*' and i == last)):
      return i
  return None


def describe(char: str) -> str:
  """A character for an error message: its repr, and code point if not ASCII.

  U+FFFD is what readers that decode bytes as ASCII put for a non-ASCII byte.
  """
  if char == '\ufffd':
    return 'a byte that is not ASCII'
  if char.isascii():
    return repr(char)
  return f'{char!r} (U+{ord(char):04X})'


def check(seq: str, where: str) -> str:
  """`normalize`, raising for a sequence that breaks the rule.

  Args:
    seq: the sequence.
    where: names the sequence in errors (file and line, or index).

  Returns:
    The sequence under the rule.

  Raises:
    ValueError: a character breaks the rule (named, with its place).
  """
  normalized = normalize(seq)
  if normalized is None:
    i = first_invalid(seq)
    raise ValueError(f'{where}: invalid character {describe(seq[i])} '
                     f'(character {i + 1} of the sequence); {RULE}')
  return normalized


def check_all(seqs: Sequence[str]) -> list[str]:
  """`check` for sequences from a notebook; errors name the index.

  Raises:
    TypeError: an element is not str or bytes.
    ValueError: one breaks the rule.
  """
  checked = []
  for i, seq in enumerate(seqs):
    if isinstance(seq, bytes):
      seq = seq.decode('ascii', 'replace')
    if not isinstance(seq, str):
      raise TypeError(f'Sequence {i} has type {type(seq).__name__}; '
                      'expected str or bytes.')
    checked.append(check(seq, f'sequence {i}'))
  return checked


def odd_letters(seq: str) -> set[str]:
  """Letters of a normalized `seq` that tokenize as `<OTHER>` (B, J, O, Z)."""
  return set(seq) - _VOCABULARY
