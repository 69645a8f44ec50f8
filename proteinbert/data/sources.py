"""Where a build's proteins come from: a UniRef XML release, or a FASTA file.

The builder (`build.py`) reads either source the same way: the main process
iterates `blocks()`, `parse` turns a block into `uniref.UniRefEntry`s (in
worker processes too), and everything after that (annotation, staging,
shuffle, writing, the summary) is shared. `choose` checks which inputs make
a source.

`XmlSource`: a UniRef XML release (`uniref.UniRefReader`); each entry
carries its cluster ID, representative and GO IDs, and usually its
sequence. The output order is a seeded hash of the XML position.

`FastaSource`: any FASTA file, with GO IDs from an optional annotation table
(`annotation_table`, TSV or GAF) joined on each record's ID:

    >sp|P12345|NAME_HUMAN Desc OS=Homo sapiens OX=9606 GN=ABC
        entry_id 'P12345' (the accession, the join key), protein_id
        'NAME_HUMAN' (the accession when the header has no entry name),
        taxonomy_id 9606
    >tr|A0A023GPI8|A0A023GPI8_9ABAC ...     likewise
    >anything else ...
        entry_id = protein_id = the first word; taxonomy_id from 'OX=' if
        present, else -1

The table is read into memory first; the FASTA streams. Without a table the
build is sequence-only (no GO IDs, an empty vocabulary). The output order is
a seeded hash of the entry ID rather than of the position, so two records
with one ID meet in the shuffle, which rejects them (`duplicate_error`)
without keeping every ID in memory.
"""

import re
from typing import Any, Dict, List, Optional, Tuple, Union

from absl import logging

from proteinbert.data import annotation_table
from proteinbert.data import fasta_reader
from proteinbert.data import text_files
from proteinbert.data import uniref

# Records per block: big enough that per-block numpy work amortizes, small
# enough to be a negligible amount of memory.
_RECORDS_PER_BLOCK = 4096
_UNIPROT_ID = re.compile(r'(?:sp|tr)\|([^|]+)\|([^|]*)')
_TAXONOMY = re.compile(r'(?:^|\s)OX=([0-9]+)(?:\s|$)')
# Absent accessions named in the log, at most.
_MAX_LOGGED = 10


def choose(uniref_xml: Optional[str], fasta: Optional[str],
           annotations: Optional[str], go_obo: Optional[str],
           compat: Optional[str]) -> str:
  """The route the inputs choose: 'xml' or 'fasta'.

  Raises:
    ValueError: no route, both, or inputs the route does not take.
  """
  if uniref_xml:
    if annotations:
      raise ValueError(
          'annotations goes with the FASTA route (fasta=...); a UniRef XML '
          'release carries its own GO annotations (with uniref_xml, fasta '
          'only supplies missing sequences).')
    if not go_obo:
      raise ValueError('uniref_xml needs go_obo (the GO in OBO format).')
    return 'xml'
  if not fasta:
    raise ValueError(
        'No input: give uniref_xml (a UniRef XML release, with go_obo) or '
        'fasta (a FASTA file, with annotations and go_obo for GO terms, or '
        'alone for a sequence-only dataset).')
  if annotations and not go_obo:
    raise ValueError('annotations needs go_obo (the GO in OBO format).')
  if compat:
    raise ValueError(f'compat={compat!r} reproduces the original UniRef XML '
                     'pipeline; it needs uniref_xml.')
  return 'fasta'


class XmlSource:
  """A UniRef XML release.

  Attributes:
    path: the file.
    kind: what the file is, for messages.
    order: what the output order hashes: 'position' in the file.
    test_id_hint: what the test-ID file should hold, for messages.
    duplicate_error: None: the output order does not make repeated IDs
      meet; the builder checks them on its own (`builder.unique_ids`).
  """
  kind = 'UniRef XML'
  order = 'position'
  test_id_hint = ('UniRef cluster IDs (UniRef90_...), accessions or '
                  'representative IDs (e.g. TITIN_HUMAN, UPI...)')
  duplicate_error = None

  def __init__(self, path: str):
    self.path = path
    self._reader = uniref.UniRefReader(path)

  @property
  def fraction_read(self) -> float:
    return self._reader.fraction_read

  @property
  def skipped(self) -> List[Tuple[str, int]]:
    """(entry ID, line) of the entries left out as too long, so far."""
    return self._reader.skipped

  def blocks(self, read_ahead: bool):
    """`uniref.Block`s of whole entries (see `UniRefReader.blocks`)."""
    return self._reader.blocks(read_ahead)

  @staticmethod
  def parse(block: uniref.Block) -> List[uniref.UniRefEntry]:
    return uniref.parse_block(block)

  def estimate_entries(self, first: Optional[uniref.Block]) -> float:
    """The release's entries, extrapolated from its first block."""
    if first is None:
      return 0.0
    return first.data.count(b'<entry') / max(self.fraction_read, 1e-9)

  @staticmethod
  def test_names(entry: uniref.UniRefEntry) -> List[str]:
    """The names under which `entry` may appear in the test-ID file.

    Its cluster ID ('UniRef90_Q8WZ42'), that ID's accession ('Q8WZ42') and
    its representative's ID ('TITIN_HUMAN', 'UPI...').
    """
    return [entry.protein_id, entry.entry_id, entry.entry_id.partition('_')[2]]

  def metadata(self) -> Dict[str, Any]:
    return {'uniref_release': self._reader.release}

  def annotation_counts(self) -> Dict[str, int]:
    """No annotation table: {}."""
    return {}


def header_ids(record: fasta_reader.FastaRecord) -> Tuple[str, str, int]:
  """(entry_id, protein_id, taxonomy_id) of a FASTA record (module doc)."""
  match = _UNIPROT_ID.fullmatch(record.id)
  if match:
    entry_id, protein_id = match.group(1), match.group(2) or match.group(1)
  else:
    entry_id = protein_id = record.id
  taxonomy = _TAXONOMY.search(record.description)
  if not taxonomy:
    return entry_id, protein_id, -1
  digits = taxonomy.group(1)
  return entry_id, protein_id, (int(digits) if uniref.taxonomy_id_fits(digits)
                                else uniref.MAX_TAXONOMY_ID + 1)


class FastaSource:
  """A FASTA file, with GO IDs from an optional annotation table.

  Attributes:
    path: the FASTA file.
    kind: what the file is, for messages.
    order: what the output order hashes: 'id', the entry ID.
    test_id_hint: what the test-ID file should hold, for messages.
  """
  kind = 'FASTA'
  order = 'id'
  test_id_hint = ('FASTA IDs (UniProt accessions of sp|...| and tr|...| '
                  'headers, or UniProt entry names; else the first word)')

  def __init__(self, path: str, annotations: Optional[str]):
    """Reads the annotation table, if any (the FASTA is read by `blocks`).

    Raises:
      annotation_table.AnnotationTableError: a malformed table.
      text_files.FileFormatError: a damaged gzip stream.
    """
    self.path = path
    self._reader = fasta_reader.FastaReader(path, uniref.MAX_RESIDUES)
    self._table = None
    if annotations:
      self._table = annotation_table.AnnotationTable(annotations)
      counts = self._table.counts()
      logging.info('%s: %s table, %d proteins, %d GO references (%d NOT rows '
                   'left out).', annotations, self._table.format,
                   counts['proteins'], counts['references'],
                   counts['not_rows'])

  @property
  def fraction_read(self) -> float:
    return self._reader.fraction_read

  @property
  def skipped(self) -> List[Tuple[str, int]]:
    """(ID, line) of the records left out as too long, so far."""
    return self._reader.skipped

  def blocks(self, read_ahead: bool):
    """Lists of entries, their GO IDs taken from the table.

    Raises:
      text_files.FileFormatError: a record without an ID, or a malformed
        FASTA.
    """
    block = []
    for record in self._reader.records(read_ahead):
      block.append(self._entry(record))
      if len(block) == _RECORDS_PER_BLOCK:
        yield block
        block = []
    if block:
      yield block

  def _entry(self, record: fasta_reader.FastaRecord) -> uniref.UniRefEntry:
    entry_id, protein_id, taxonomy_id = header_ids(record)
    if not entry_id:
      raise text_files.FileFormatError(
          f"{self.path}:{record.line}: a '>' header without an ID; expected "
          "'>ID description'.")
    if taxonomy_id > uniref.MAX_TAXONOMY_ID:
      raise text_files.FileFormatError(
          f'{self.path}:{record.line}: the header\'s OX= taxonomy ID is over '
          f'{uniref.MAX_TAXONOMY_ID:,}, the largest the dataset stores; '
          'expected a real NCBI taxonomy ID.')
    go_ids = self._table.take(entry_id) if self._table is not None else ()
    return uniref.UniRefEntry(entry_id, protein_id, taxonomy_id,
                              record.sequence or None, go_ids, record.line)

  @staticmethod
  def parse(block: List[uniref.UniRefEntry]) -> List[uniref.UniRefEntry]:
    """The block's entries (`blocks` made them)."""
    return block

  def estimate_entries(self, first: Optional[list]) -> float:
    """The file's records, extrapolated from its first block."""
    if first is None:
      return 0.0
    return len(first) / max(self.fraction_read, 1e-9)

  @staticmethod
  def test_names(entry: uniref.UniRefEntry) -> List[str]:
    """Its ID (accession or first word) and UniProt entry name."""
    return [entry.entry_id, entry.protein_id]

  def metadata(self) -> Dict[str, Any]:
    if self._table is None:
      return {}
    return {'annotation_table': {'format': self._table.format,
                                 'header': self._table.header}}

  def annotation_counts(self) -> Dict[str, int]:
    """The table's `counts` once the FASTA is read ({} without a table).

    Logs the proteins that the table names and the FASTA lacks.
    """
    if self._table is None:
      return {}
    counts = self._table.counts()
    if counts['proteins_absent']:
      logging.warning(
          '%s: %d of its %d proteins (%d GO references) are not in %s; '
          'first: %s', self._table.path, counts['proteins_absent'],
          counts['proteins'], counts['references_absent'], self.path,
          ', '.join(self._table.absent(_MAX_LOGGED)))
    return counts

  def duplicate_error(self, entry_id: str) -> text_files.FileFormatError:
    """The error for an ID that two records share (reads the FASTA again)."""
    lines = [r.line for r in fasta_reader.FastaReader(self.path)
             if header_ids(r)[0] == entry_id][:2]
    where = f'{self.path}:{lines[-1]}' if lines else self.path
    first = f' (first at line {lines[0]})' if len(lines) > 1 else ''
    return text_files.FileFormatError(
        f'{where}: duplicate ID {entry_id!r}{first}; every record needs an ID '
        'of its own, as annotations and test IDs join on it.')


Source = Union[XmlSource, FastaSource]
