"""FASTA reading for the model's inputs: `fasta_reader`'s records, checked.

A record is a '>' header line (its first word is the ID, the rest the
description) followed by any number of sequence lines; lines starting with
';' are old-style comments. Plain and gzip files are told apart by their
first bytes. Sequence lines may hold letters of either case (any letter:
those outside the model's vocabulary, such as B, Z, J or O, become `<OTHER>`
when tokenized; `odd_letters` lists them), spaces, and one trailing '*' (a
stop codon). Anything else — digits, gaps ('-', '.'), punctuation — is an
error naming the line, since silently mapping it to `<OTHER>` would hide a
wrong input file.
"""

import itertools
import re
from typing import NamedTuple

from absl import logging

from proteinbert import tokenization
from proteinbert.data import fasta_reader
from proteinbert.data import text_files

_INVALID = re.compile(r'[^A-Za-z*]')
_VOCABULARY = frozenset(tokenization.AMINO_ACIDS)


class FastaRecord(NamedTuple):
  """One record: ID (the header's first word), description and sequence."""
  id: str
  description: str
  seq: str


def _line_of_invalid(path: str, record: fasta_reader.FastaRecord) -> int:
  """The line of the record's first invalid character.

  The reader joins a record's lines, so they are read again to find it (on
  this error path only).
  """
  lines = itertools.islice(text_files.read_lines(path), record.line, None)
  for number, line in enumerate(lines, start=record.line + 1):
    text = line.decode('ascii', 'replace').strip()
    if not text.startswith(';') and _INVALID.search(''.join(text.split())):
      return number
  raise AssertionError(f'{path}: no invalid line in record {record.id!r}.')


def _checked(path: str, record: fasta_reader.FastaRecord) -> FastaRecord:
  if not record.id:
    raise ValueError(f'{path}:{record.line}: header without an ID.')
  if '\ufffd' in record.id:  # The reader decodes IDs as ASCII.
    raise ValueError(f'{path}:{record.line}: the ID {record.id!r} has bytes '
                     'that are not ASCII; IDs key the outputs, so they must '
                     'be ASCII.')
  seq = ''.join(record.sequence.split())
  bad = _INVALID.search(seq)
  if bad:
    raise ValueError(
        f'{path}:{_line_of_invalid(path, record)}: invalid character '
        f'{bad.group()!r} in record {record.id!r}; sequences may hold '
        "letters only (and a final '*'). Remove alignment gaps and "
        'numbering.')
  if '*' in seq[:-1]:
    raise ValueError(f"{path}: record {record.id!r} has a '*' before its "
                     'end; only a final stop codon is allowed.')
  return FastaRecord(record.id, record.description, seq.rstrip('*'))


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
      an ID or with one that is not ASCII, a sequence character that is not
      a letter (line given), or a file that cannot be read (a damaged gzip
      stream among them).
  """
  try:
    records = [_checked(path, r) for r in fasta_reader.FastaReader(path)]
  except OSError as e:
    raise ValueError(f'{path}: cannot read: {e}') from e
  if not records:
    raise ValueError(f'{path}: no FASTA records (no line starts with >).')
  return records


def odd_letters(seq: str) -> set[str]:
  """Letters of `seq` (upper-cased) that the vocabulary maps to <OTHER>."""
  return set(seq.upper()) - _VOCABULARY


class KeyedRecords(NamedTuple):
  """A FASTA file's records for an output keyed by ID (`read_keyed`).

  Attributes:
    records: the records with a sequence, in file order.
    empty: IDs of the records without one.
    odd_letters: ID -> the letters of its sequence read as <OTHER>.
  """
  records: list
  empty: list
  odd_letters: dict


class JobSummary(NamedTuple):
  """What a job over a FASTA file's records did (IDs of records in each case).

  Attributes:
    written: records processed in this run.
    skipped_existing: records an earlier run had written.
    empty: records without a sequence (skipped).
    odd_letters: ID -> letters read as <OTHER>.
  """
  written: list
  skipped_existing: list
  empty: list
  odd_letters: dict


def read_keyed(path: str) -> KeyedRecords:
  """`read_fasta` for outputs keyed by ID; warns of empty and odd records.

  Raises:
    ValueError: what `read_fasta` raises, or IDs that repeat (outputs are
      keyed by ID).
  """
  records = read_fasta(path)
  seen, duplicates = set(), []
  for record in records:
    if record.id in seen:
      duplicates.append(record.id)
    seen.add(record.id)
  if duplicates:
    raise ValueError(f'{path}: repeated IDs {duplicates[:10]}; outputs are '
                     'keyed by ID.')
  empty = [r.id for r in records if not r.seq]
  odd = {r.id: ''.join(sorted(odd_letters(r.seq)))
         for r in records if odd_letters(r.seq)}
  if empty:
    logging.warning('%d empty record(s) skipped: %s', len(empty), empty[:10])
  if odd:
    logging.warning('%d record(s) have letters outside the vocabulary, read as '
                    '<OTHER>: %s', len(odd), dict(list(odd.items())[:10]))
  return KeyedRecords([r for r in records if r.seq], empty, odd)
