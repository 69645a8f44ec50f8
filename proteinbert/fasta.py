"""FASTA reading: multi-line records, gzip, checked characters.

A record is a '>' header line (its first word is the ID, the rest the
description) followed by any number of sequence lines. Plain and gzip files
are told apart by their first bytes. Sequence lines may hold letters of
either case (any letter: those outside the model's vocabulary, such as B, Z,
J or O, become `<OTHER>` when tokenized; `odd_letters` lists them), spaces,
and one trailing '*' (a stop codon). Anything else — digits, gaps ('-', '.'),
punctuation — is an error naming the line, since silently mapping it to
`<OTHER>` would hide a wrong input file.
"""

import gzip
import re
from typing import NamedTuple

from proteinbert import tokenization

_GZIP_MAGIC = b'\x1f\x8b'
_INVALID = re.compile(r'[^A-Za-z*]')
_VOCABULARY = frozenset(tokenization.AMINO_ACIDS)


class FastaRecord(NamedTuple):
  """One record: ID (the header's first word), description and sequence."""
  id: str
  description: str
  seq: str


def _open_text(path: str):
  with open(path, 'rb') as f:
    magic = f.read(len(_GZIP_MAGIC))
  if magic == _GZIP_MAGIC:
    return gzip.open(path, 'rt', encoding='utf-8', errors='replace')
  return open(path, 'rt', encoding='utf-8', errors='replace')


def read_fasta(path: str) -> list[FastaRecord]:
  """Reads every record of a (possibly gzipped) FASTA file.

  Records with an empty sequence are returned too (with seq ''), so callers
  can report them.

  Args:
    path: the file.

  Returns:
    The records in file order.

  Raises:
    ValueError: no records, text before the first header, a header without
      an ID, or a sequence character that is not a letter (line given).
  """
  records = []
  header, lines = None, []

  def finish():
    if header is None:
      return
    seq = ''.join(lines)
    if '*' in seq[:-1]:
      raise ValueError(f"{path}: record {header[0]!r} has a '*' before its "
                       'end; only a final stop codon is allowed.')
    records.append(FastaRecord(header[0], header[1], seq.rstrip('*')))

  try:
    with _open_text(path) as f:
      for number, line in enumerate(f, start=1):
        line = line.strip()
        if line.startswith('>'):
          finish()
          words = line[1:].strip().split(None, 1)
          if not words:
            raise ValueError(f'{path}:{number}: header without an ID.')
          header, lines = (words[0], words[1] if len(words) > 1 else ''), []
          continue
        if not line or line.startswith(';'):  # ';' lines are old comments.
          continue
        if header is None:
          raise ValueError(f'{path}:{number}: sequence text before the first '
                           "'>' header; is this a FASTA file?")
        residues = ''.join(line.split())
        bad = _INVALID.search(residues)
        if bad:
          raise ValueError(
              f'{path}:{number}: invalid character {bad.group()!r} in record '
              f'{header[0]!r}; sequences may hold letters only (and a final '
              "'*'). Remove alignment gaps and numbering.")
        lines.append(residues)
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    raise ValueError(f'{path}: cannot read: {e}') from e
  finish()
  if not records:
    raise ValueError(f'{path}: no FASTA records (no line starts with >).')
  return records


def odd_letters(seq: str) -> set[str]:
  """Letters of `seq` (upper-cased) that the vocabulary maps to <OTHER>."""
  return set(seq.upper()) - _VOCABULARY
