"""Streaming FASTA reading: records with their header lines, and a join.

`FastaReader` streams the records of a FASTA file (gzip or plain) with their
header lines: the one FASTA parser, for the builder's FASTA route, for
`FastaJoin` and for the model's inputs (`proteinbert.fasta` checks its
records). `FastaReader(max_residues=...)` skips and notes records with
longer sequences, whose residues are read past, never held.

`FastaJoin` supplies sequences from `uniref90.fasta[.gz]` by entry ID for
the UniRef XML entries that have none, reading the FASTA forward in step
with the XML.
"""

import collections
from typing import Iterator, NamedTuple, Optional

from proteinbert.data import text_files


class FastaRecord(NamedTuple):
  """One FASTA record.

  Attributes:
    id: the header's first word ('>UniRef90_Q8WZ42 Titin n=1 ...' ->
      'UniRef90_Q8WZ42'); '' for a header without one.
    description: the rest of the header.
    sequence: the sequence lines joined, blanks at their ends removed.
    line: 1-based line of the header in the (decompressed) file.
  """
  id: str
  description: str
  sequence: str
  line: int


class FastaReader(text_files.FileReader):
  """Reads a FASTA file (gzip or plain) in one streaming pass.

  Iterating it yields `FastaRecord`s, as `records()` does.

  Attributes:
    path: the file.
    skipped: (ID, header line) of the records left out for a sequence longer
      than `max_residues`, so far.
  """

  def __init__(self, path: str, max_residues: Optional[int] = None):
    """Reads `path`; with `max_residues`, longer records are `skipped`.

    Their residues are read past, never held.
    """
    super().__init__(path)
    self._max_residues = max_residues
    self.skipped = []

  def __iter__(self) -> Iterator[FastaRecord]:
    return self.records()

  def records(self, read_ahead: bool = False) -> Iterator[FastaRecord]:
    """The file's records, in file order.

    Lines starting with ';' (old-style comments) are skipped.

    Args:
      read_ahead: decompress on a thread of its own (see
        `text_files.FileReader`).

    Raises:
      text_files.FileFormatError: sequence lines before the first header, an
        ID that is not printable ASCII, a line longer than
        `text_files.MAX_LINE_BYTES`, or a damaged gzip stream.
    """
    # The record being read; parts is None once it has too many residues.
    header, header_line, parts, residues = None, 0, [], 0
    most = self._max_residues or float('inf')

    def record():
      words = header[1:].split(maxsplit=1) + [b'', b'']
      record_id = words[0].decode('ascii', 'replace')
      # IDs key embeddings, predictions and dataset rows: a byte decoded to
      # U+FFFD or a control character would merge or corrupt keys silently.
      if not (record_id.isascii() and record_id.isprintable()):
        raise text_files.FileFormatError(
            f'{self.path}:{header_line}: the ID {record_id!r} has bytes that '
            'are not printable ASCII; IDs key the outputs, so they must be.')
      if parts is None:
        self.skipped.append((record_id, header_line))
        return None
      return FastaRecord(record_id,
                         words[1].decode('utf-8', 'replace').strip(),
                         b''.join(parts).decode('ascii', 'replace'),
                         header_line)

    with self._pieces(read_ahead) as pieces:
      for line_number, line in enumerate(
          text_files.split_lines(self.path, pieces), start=1):
        if line.startswith(b'>'):
          if header is not None and (done := record()):
            yield done
          header, header_line, parts, residues = line, line_number, [], 0
        elif (stripped := line.strip()) and not stripped.startswith(b';'):
          if header is None:
            raise text_files.FileFormatError(
                f"{self.path}:{line_number}: sequence data before the first "
                "'>' header; expected FASTA.")
          residues += len(stripped)
          if residues > most:
            parts = None
          elif parts is not None:
            parts.append(stripped)
      if header is not None and (done := record()):
        yield done


class FastaJoin:
  """Looks up sequences by ID in a FASTA read in step with the XML.

  UniProt writes `uniref90.fasta` and `uniref90.xml` in the same cluster
  order, so a lookup reads forward to the wanted record. Records passed on the
  way wait in a window of at most `window` records (for the XML entries that
  come next), so memory stays bounded however large the files; an ID not
  found within the window counts as missing.

  Attributes:
    num_missing: lookups that found nothing.
  """

  def __init__(self, path: str, max_residues: int, window: int = 100_000):
    """Joins on `path`; records over `max_residues` residues count as absent.

    Args:
      path: the FASTA file.
      max_residues: longer records are read past (`FastaReader`).
      window: records held for later lookups, at most.
    """
    self._records = iter(FastaReader(path, max_residues))
    self._window = collections.OrderedDict()
    self._size = window
    self.num_missing = 0

  def lookup(self, record_id: str) -> Optional[str]:
    """The sequence of `record_id`, or None if it is not within reach."""
    if record_id in self._window:
      return self._window.pop(record_id)
    scanned = 0
    for record in self._records:
      if record.id == record_id:
        return record.sequence
      self._window[record.id] = record.sequence
      if len(self._window) > self._size:
        self._window.popitem(last=False)
      scanned += 1
      if scanned > self._size:
        break
    self.num_missing += 1
    return None
