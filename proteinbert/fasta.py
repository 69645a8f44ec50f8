"""FASTA reading for the model's inputs: `fasta_reader`'s records, checked.

A record is a '>' header line (its first word is the ID, the rest the
description) followed by any number of sequence lines; lines starting with
';' are old-style comments. Plain and gzip files are told apart by their
first bytes. Sequences follow `proteinbert.residues`: upper-cased, spaces and
one final '*' (a stop codon) dropped, letters outside the model's vocabulary
(B, J, O, Z) kept and reported (`KeyedRecords.odd_letters`), since they
tokenize as `<OTHER>`. Anything else (digits, gaps '-' and '.', punctuation,
an internal '*') is an error naming the line and the character: silently
mapping it to `<OTHER>` would hide a wrong input file.
"""

import itertools
from typing import NamedTuple

from absl import logging

from proteinbert import residues
from proteinbert.data import fasta_reader
from proteinbert.data import text_files


class FastaRecord(NamedTuple):
  """One record: ID (the header's first word), description and sequence."""
  id: str
  description: str
  seq: str


def _invalid_place(path: str, record: fasta_reader.FastaRecord,
                   index: int) -> tuple[int, str]:
  """(line, described character) of `record.sequence[index]`.

  The reader joins a record's lines (their ends stripped, one character per
  byte), so they are read again to find it, on this error path only.
  """
  lines = itertools.islice(text_files.read_lines(path), record.line, None)
  for number, line in enumerate(lines, start=record.line + 1):
    line = line.strip()
    if not line or line.startswith(b';'):
      continue
    if index < len(line):
      if line[index] < 0x80:
        return number, residues.describe(chr(line[index]))
      # The whole character, if the bytes from here are UTF-8.
      return number, residues.describe(
          line[index:index + 4].decode('utf-8', 'replace')[0])
    index -= len(line)
  raise AssertionError(f'{path}: record {record.id!r} has no residue '
                       f'{index}.')


def _checked(path: str, record: fasta_reader.FastaRecord) -> FastaRecord:
  if not record.id:
    raise ValueError(f'{path}:{record.line}: header without an ID.')
  seq = residues.normalize(record.sequence)
  if seq is None:
    line, char = _invalid_place(path, record,
                                residues.first_invalid(record.sequence))
    raise ValueError(f'{path}:{line}: invalid character {char} in record '
                     f'{record.id!r}; {residues.RULE}')
  return FastaRecord(record.id, record.description, seq)


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
      an ID or with one that is not ASCII, a sequence that breaks
      `residues`' rule (line and character given), or a file that cannot be
      read (a damaged gzip stream among them).
  """
  try:
    records = [_checked(path, r) for r in fasta_reader.FastaReader(path)]
  except OSError as e:
    raise ValueError(f'{path}: cannot read: {e}') from e
  if not records:
    raise ValueError(f'{path}: no FASTA records (no line starts with >).')
  return records


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
  odd = {r.id: ''.join(sorted(residues.odd_letters(r.seq)))
         for r in records if residues.odd_letters(r.seq)}
  if empty:
    logging.warning('%d empty record(s) skipped: %s', len(empty), empty[:10])
  if odd:
    logging.warning('%d record(s) have letters outside the vocabulary, read as '
                    '<OTHER>: %s', len(odd), dict(list(odd.items())[:10]))
  return KeyedRecords([r for r in records if r.seq], empty, odd)
