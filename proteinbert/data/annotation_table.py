"""Protein -> GO ID tables for the builder's FASTA route: TSV and GAF 2.x.

Two formats, gzip or plain (told apart by the first bytes), and told apart
from each other by their first line:

* TSV: the header `accession<TAB>go_ids`, then a line per protein, its
  GO IDs comma-separated:

      accession	go_ids
      P12345	GO:0005524,GO:0016301

* GAF 2.x as UniProt-GOA distributes it: '!' comment lines (among them
  `!gaf-version: 2.2`), then rows of 15-17 tab-separated columns, several
  per protein and in any order. Of a row we use column 2 (the protein's
  accession), 4 (the qualifier) and 5 (the GO ID); a row whose qualifier
  holds NOT ('NOT', 'NOT|enables') says the protein does *not* have the
  term, so it is counted and left out.

Anything else is an `AnnotationTableError` naming the file and line: a
first line that is neither (a TSV without its header), a row with the
wrong number of columns, a value that is not a GO ID (`GO:` and digits).

The whole table is held in memory (a dict entry per annotated protein, the
GO IDs interned), so the builder can join it to a FASTA streamed in any
order.
"""

import itertools
import re
import sys
from typing import Dict, Iterator, List, Tuple

from proteinbert.data import text_files

TSV_HEADER = 'accession\tgo_ids'
# GAF 2.x rows have 15 to 17 columns (the last two optional).
_GAF_COLUMNS = (15, 17)
_GO_ID = re.compile(rb'GO:[0-9]+')


class AnnotationTableError(ValueError):
  """A malformed annotation table; the message names the file and line."""


class AnnotationTable:
  """Accession -> GO IDs, read from a TSV or GAF file (see the module doc).

  `take` hands out (and forgets) a protein's GO IDs as the FASTA names it;
  what is left at the end is what the FASTA lacks (`counts`).

  Attributes:
    path: the file.
    format: 'tsv' or 'gaf'.
    header: the GAF header's '!tag: value' lines (e.g. 'gaf-version').
  """

  def __init__(self, path: str):
    """Reads the whole table.

    Raises:
      AnnotationTableError: a malformed table (file and line named).
      text_files.FileFormatError: a damaged gzip stream.
    """
    self.path = path
    self.header = {}
    # Accession -> a GO ID per reference (GAF row or TSV list item), repeats
    # kept, so that len() counts the references.
    self._go_ids: Dict[str, List[str]] = {}
    self._rows = self._not_rows = self._references = 0
    self._taken = self._taken_references = 0
    lines = enumerate(text_files.read_lines(path), start=1)
    first = next(lines, (1, b''))[1].rstrip(b'\r')
    if first.startswith(b'!') or _GAF_COLUMNS[0] <= len(
        first.split(b'\t')) <= _GAF_COLUMNS[1]:
      self.format = 'gaf'
      self._read_gaf(itertools.chain([(1, first)], lines))
    elif first == TSV_HEADER.encode():
      self.format = 'tsv'
      self._read_tsv(lines)
    else:
      raise AnnotationTableError(
          f'{path}:1: expected the header line '
          f'{TSV_HEADER.replace(chr(9), "<TAB>")!r} of an annotation TSV, or '
          "a GAF file ('!gaf-version: 2.2' and rows of 15-17 tab-separated "
          f'columns); found {first[:80].decode("utf-8", "replace")!r}.')

  def take(self, accession: str) -> Tuple[str, ...]:
    """The GO IDs of `accession` (no repeats; () when it has none).

    The protein leaves the table, so a later `take` of it gets ().
    """
    go_ids = self._go_ids.pop(accession, None)
    if go_ids is None:
      return ()
    self._taken += 1
    self._taken_references += len(go_ids)
    return tuple(dict.fromkeys(go_ids))

  def absent(self, most: int) -> List[str]:
    """Up to `most` accessions never taken, for messages."""
    return [a for a, _ in zip(self._go_ids, range(most))]

  def counts(self) -> Dict[str, int]:
    """What the table held, and how much of it was taken.

    Keys: 'rows' (GAF rows or TSV lines read, header aside), 'not_rows' (GAF
    rows left out for a NOT qualifier), 'references' (GO references kept:
    GAF rows, TSV list items), 'proteins', 'proteins_taken',
    'references_taken', 'proteins_absent' and 'references_absent' (never
    taken).
    """
    return {
        'rows': self._rows,
        'not_rows': self._not_rows,
        'references': self._references,
        'proteins': self._taken + len(self._go_ids),
        'proteins_taken': self._taken,
        'references_taken': self._taken_references,
        'proteins_absent': len(self._go_ids),
        'references_absent': self._references - self._taken_references,
    }

  def _error(self, line: int, what: str) -> AnnotationTableError:
    return AnnotationTableError(f'{self.path}:{line}: {what}')

  def _add(self, line: int, accession: bytes, go_ids: List[bytes],
           where: str) -> None:
    """Records a row's references; `where` names the GO IDs' column."""
    if not accession:
      raise self._error(line, 'no protein accession.')
    try:
      key = accession.decode('utf-8')
    except UnicodeDecodeError:
      # Replacing the bytes would merge accessions and join none.
      raise self._error(
          line, f'the accession {accession[:40]!r} is not UTF-8 text.'
          ) from None
    for go_id in go_ids:
      if not _GO_ID.fullmatch(go_id):
        raise self._error(
            line, f'{where} holds {go_id[:40].decode("utf-8", "replace")!r}, '
            "which is not a GO ID ('GO:' and digits).")
    self._go_ids.setdefault(key, []).extend(
        sys.intern(g.decode('ascii')) for g in go_ids)
    self._references += len(go_ids)

  def _read_tsv(self, lines: Iterator[Tuple[int, bytes]]) -> None:
    for number, line in lines:
      line = line.rstrip(b'\r')
      if not line.strip():
        continue
      columns = line.split(b'\t')
      if len(columns) != 2:
        raise self._error(
            number, f'expected 2 tab-separated columns (accession, GO IDs), '
            f'found {len(columns)}.')
      self._rows += 1
      accession, go_ids = columns[0].strip(), columns[1].strip()
      self._add(number, accession,
                [g.strip() for g in go_ids.split(b',')] if go_ids else [],
                'column 2 (comma-separated GO IDs)')

  def _read_gaf(self, lines: Iterator[Tuple[int, bytes]]) -> None:
    low, high = _GAF_COLUMNS
    for number, line in lines:
      line = line.rstrip(b'\r')
      if line.startswith(b'!'):
        tag, colon, value = line[1:].decode('utf-8', 'replace').partition(':')
        if colon and tag.strip() and ' ' not in tag.strip():
          self.header.setdefault(tag.strip(), value.strip())
        continue
      if not line.strip():
        continue
      columns = line.split(b'\t')
      if not low <= len(columns) <= high:
        raise self._error(
            number, f'expected {low}-{high} tab-separated GAF columns, found '
            f'{len(columns)}.')
      self._rows += 1
      if b'NOT' in columns[3].split(b'|'):
        self._not_rows += 1
        continue
      self._add(number, columns[1].strip(), [columns[4].strip()],
                'column 5 (GO ID)')

