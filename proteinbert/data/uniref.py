"""Streaming reader for the UniRef XML release.

`UniRefReader` walks `uniref{50,90,100}.xml[.gz]` once, holding one entry at a
time. Of each `<entry>` it keeps what pretraining needs:

    <entry id="UniRef90_Q8WZ42">                       -> entry_id
      <property type="GO Molecular Function" value="GO:0005524"/>  -> go_ids
      <representativeMember>
        <dbReference type="UniProtKB ID" id="TITIN_HUMAN">  -> protein_id
          <property type="NCBI taxonomy" value="9606"/>     -> taxonomy_id
        </dbReference>
        <sequence length="34350" checksum="...">MTTQ...</sequence>  -> sequence
      </representativeMember>
      <member>...</member>                               (skipped)
    </entry>

`UniRefReader.blocks()` cuts the decompressed stream into `Block`s of whole
entries with byte searches alone, and `parse_block` parses one block, so the
builder can parse blocks in worker processes while the main process only
decompresses and cuts.

`parse_block` drives expat directly, with Python called only for start tags
outside `<member>`s (see its docstring). Reading the benchmark's synthetic
release (80k entries, one member each, uncompressed) took 43k entries per
CPU-second this way, against 34k for `ElementTree.iterparse` with element
clearing and 23k for `ElementTree.fromstring` per block (2026-11-21). About
40% of it is expat checking the XML (a parse with no handlers), the rest
mostly expat building each start tag's attributes and calling Python: byte
patterns taking the fields after a handler-free expat check were no faster.
Namespaces are not processed (UniRef uses one default namespace), so tags
are plain local names.

Errors name the file and position: malformed XML (expat's line and column), a
truncated or corrupt gzip stream (how far decompression got), an entry without
an `id` or without a representative `dbReference`.

Memory stays bounded and time linear whatever the input: the file is read
in bounded pieces (`text_files`), and an XML entry that holds more than
`MAX_ENTRY_BYTES` outside its `<member>`s is skipped and noted
(`UniRefReader.skipped`). The builder counts these skips ('too_long'), and
drops any sequence over `MAX_RESIDUES`.
"""

import re
from typing import Iterator, List, NamedTuple, Optional, Tuple
from xml.parsers import expat

from proteinbert.data import text_files

GO_PROPERTY_TYPES = frozenset((
    'GO Molecular Function',
    'GO Biological Process',
    'GO Cellular Component',
))

# Residues of the longest sequence kept: real proteins have under 40,000
# (titin, about 35,000). A longer one is damaged or crafted input; the
# builder skips and counts it (in FASTA inputs and the joined FASTA with
# `fasta_reader.FastaReader(max_residues=...)`, in the XML with its own
# check), so no entry can take much memory.
MAX_RESIDUES = 100_000
# Bytes of one XML entry outside its `<member>` elements, at most: room for
# any real one (an entry with a MAX_RESIDUES sequence takes about 0.1 MB); a
# longer entry is skipped (`UniRefReader.skipped`).
MAX_ENTRY_BYTES = 16 << 20
# Line ends an entry may keep in place of its members, at most (a real one
# has about 20 per member): bounds what member-heavy entries hold.
_MAX_BLANK_LINES = 64 << 20


class UniRefEntry(NamedTuple):
  """What pretraining needs from one UniRef cluster.

  Attributes:
    entry_id: the cluster ID (`<entry id>`), e.g. 'UniRef90_Q8WZ42'.
    protein_id: the representative's `dbReference/@id`: a UniProtKB entry
      name ('TITIN_HUMAN', 'A0A023GPI8_9ABAC') or a UniParc ID ('UPI...').
    taxonomy_id: the representative's NCBI taxonomy ID, -1 when absent.
    sequence: the representative's sequence, None when the XML has none.
    go_ids: GO IDs of the entry's GO properties, in file order, no repeats.
    line: 1-based line of the `<entry>` tag in the (decompressed) XML.
  """
  entry_id: str
  protein_id: str
  taxonomy_id: int
  sequence: Optional[str]
  go_ids: Tuple[str, ...]
  line: int


class Block(NamedTuple):
  """Whole `<entry>` elements cut from a UniRef XML file, to parse anywhere.

  Attributes:
    data: the bytes, from an `<entry` to the end of an `</entry>`.
    first_line: line of data[0] in the decompressed file (1-based).
    path: the file, for error messages.
    encoding: the XML declaration's encoding.
  """
  data: bytes
  first_line: int
  path: str
  encoding: str


_ENTRY_START = re.compile(rb'<entry[\s>]')
_ENCODING = re.compile(rb'encoding\s*=\s*["\']([A-Za-z0-9._-]+)["\']')
_ROOT_END = re.compile(rb'\s*</UniRef\w*>\s*')
_ENTRY_END = b'</entry>'


_MEMBER_START = re.compile(rb'<member[\s>]')
_MEMBER_END = b'</member>'
_ENTRY_ID = re.compile(rb'<entry\s[^>]*?\bid\s*=\s*["\']([^"\'>]*)["\']')


def _blank_members(pending: bytearray, start: int) -> Tuple[int, int]:
  """Replaces the finished `<member>`s after `start` by their line ends.

  Nothing reads members, and the entry's lines keep their numbers.

  Returns:
    (where the next call starts: after the last finished member, the line
    ends put in place of members).
  """
  kept, done, blanked = [], start, 0
  while (member := _MEMBER_START.search(pending, done)) is not None:
    end = pending.find(_MEMBER_END, member.end())
    if end < 0:
      break
    end += len(_MEMBER_END)
    lines = pending.count(b'\n', member.start(), end)
    kept += [pending[done:member.start()], b'\n' * lines]
    done, blanked = end, blanked + lines
  if kept:
    pending[start:done] = b''.join(kept)
  return start + sum(map(len, kept)), blanked


def _entry_id(pending: bytearray, start: int) -> str:
  """The `id` of the `<entry>` at `pending[start:]`, or '?'."""
  match = _ENTRY_ID.match(pending, start, start + 4096)
  return match.group(1).decode('utf-8', 'replace') if match else '?'


def _format_error(path: str, line: int,
                  what: str) -> text_files.FileFormatError:
  return text_files.FileFormatError(
      f'{path}:{line}: {what}; expected a UniRef XML release (<entry> '
      'elements inside <UniRef90> or similar).')


class UniRefReader(text_files.FileReader):
  """Reads a UniRef XML file (gzip or plain) in one streaming pass.

  `blocks()` cuts the file into `Block`s of whole entries (cheap byte
  searches, no parsing), which `parse_block` parses, here or in worker
  processes; iterating the reader does both.

  Attributes:
    path: the file.
    release: attributes of the root element, e.g. {'releaseDate': ...,
      'version': ...}, once reading has started.
    skipped: (entry ID, line) of the entries left out as too long (see
      `blocks`), so far.
  """

  def __init__(self, path: str):
    super().__init__(path)
    self.release = {}
    self.skipped = []

  def __iter__(self) -> Iterator[UniRefEntry]:
    for block in self.blocks():
      yield from parse_block(block)

  def blocks(self, read_ahead: bool = False) -> Iterator[Block]:
    """The file's entries, a block per piece read (`text_files`).

    Linear in the file's size, and memory stays bounded: an entry spread
    over many reads loses its finished `<member>`s (which nothing reads) to
    blank lines, and one that still holds more than `MAX_ENTRY_BYTES` is
    left out and noted in `skipped`.

    Args:
      read_ahead: decompress on a thread of its own, beside the caller's
        work on the blocks before. Do not fork while iterating then (start
        worker processes first).

    Raises:
      text_files.FileFormatError: malformed XML around the entries, or a
        damaged gzip stream.
    """
    with self._pieces(read_ahead) as pieces:
      pending, line, encoding = bytearray(), 1, None
      # pending[:searched] holds no entry end (before the first entry: no
      # entry start); pending[:members] no finished <member>, and `blank`
      # line ends in place of members.
      searched = members = blank = 0
      skipping = False  # Reading past an entry that is too long.
      for data in pieces:
        pending += data
        if skipping:
          end = pending.find(_ENTRY_END)
          if end < 0:
            keep = max(0, len(pending) - len(_ENTRY_END) + 1)
            line += pending.count(b'\n', 0, keep)
            del pending[:keep]
            continue
          line += pending.count(b'\n', 0, end)
          del pending[:end + len(_ENTRY_END)]
          skipping, searched, members, blank = False, 0, 0, 0
        if encoding is None:
          first = _ENTRY_START.search(pending, max(0, searched - 7))
          if first is None:
            searched = len(pending)
            if searched > MAX_ENTRY_BYTES:
              raise _format_error(
                  self.path, line,
                  f'no <entry> in the first {searched:,} bytes')
            continue
          encoding = self._read_prolog(bytes(pending[:first.start()]))
          line += pending.count(b'\n', 0, first.start())
          del pending[:first.start()]
        cut = pending.rfind(_ENTRY_END, max(0, searched - len(_ENTRY_END) + 1))
        if cut < 0:  # One entry is longer than a block; read on.
          searched = len(pending)
          if searched - blank > MAX_ENTRY_BYTES:
            members, blanked = _blank_members(pending, members)
            blank += blanked
            searched = len(pending)
            if searched - blank > MAX_ENTRY_BYTES or blank > _MAX_BLANK_LINES:
              start = _ENTRY_START.search(pending)
              begin = start.start() if start else 0
              self.skipped.append((_entry_id(pending, begin),
                                   line + pending.count(b'\n', 0, begin)))
              skipping = True
          continue
        cut += len(_ENTRY_END)
        with memoryview(pending) as view:
          block = bytes(view[:cut])
        yield Block(block, line, self.path, encoding)
        line += block.count(b'\n')
        del pending[:cut]
        searched = members = blank = 0
      if skipping:
        raise _format_error(self.path, line,
                            'the file ends inside an entry (truncated?)')
      if encoding is None:
        self._read_prolog(bytes(pending), final=True)  # No entries.
      elif not _ROOT_END.fullmatch(pending):
        start = _ENTRY_START.search(pending)
        raise _format_error(
            self.path, line + pending.count(b'\n', 0, start.start() if start
                                            else 0),
            'the file ends inside an entry (truncated?)' if start else
            'expected the closing root tag </UniRef...> after the last '
            'entry')

  def _read_prolog(self, prolog: bytes, final: bool = False) -> str:
    """Parses what precedes the first entry; returns the declared encoding."""
    match = _ENCODING.search(prolog[:200])
    encoding = match.group(1).decode() if match else 'UTF-8'
    parser = expat.ParserCreate(encoding)

    def start(name, attrs):
      if not self.release:
        self.release = dict(attrs, root=name)

    parser.StartElementHandler = start
    try:
      parser.Parse(prolog, final)
    except expat.ExpatError as e:
      raise _format_error(self.path, e.lineno,
                          f'malformed XML ({expat.ErrorString(e.code)})'
                          ) from None
    return encoding


def parse_block(block: Block) -> List[UniRefEntry]:
  """Parses the entries of `block` with expat.

  Only start tags drive the parse, as uniref.xsd fixes an entry's order
  (name, properties, representativeMember, members): an element's end
  matters only to tell where a `<member>` stops, and expat calls no Python
  for ends elsewhere, nor for anything inside members. Each region of an
  entry has its own start-tag handler, swapped in as the region begins, so
  a call (about 20 per entry, most of the parse's cost) tests only the tags
  that matter there.

  Raises:
    text_files.FileFormatError: malformed XML, or an entry without an `id`
      or without a representative `dbReference`.
  """
  parser = expat.ParserCreate(block.encoding)
  parser.buffer_text = True
  line_shift = block.first_line - 1
  done = []
  # The entry being read: [entry_id, line, go_ids, protein_id, taxonomy,
  # sequence text pieces or None]; None before the first.
  entry = None
  go_types = GO_PROPERTY_TYPES

  def fail(what, line=None):
    raise _format_error(
        block.path, line or entry[1],
        f'entry {entry[0] if entry else "?"}: {what}')

  def end_sequence():
    parser.CharacterDataHandler = None

  def finish_entry():
    end_sequence()
    entry_id, line, go_ids, protein_id, taxonomy, text = entry
    if not protein_id:
      fail('expected <representativeMember><dbReference id="..."> but found '
           'none')
    done.append(UniRefEntry(
        entry_id, protein_id, int(taxonomy) if taxonomy.isdigit() else -1,
        ''.join(''.join(text).split()) or None if text else None,
        tuple(dict.fromkeys(go_ids)), line))

  def common(name, attrs):
    """Tags that start a region wherever they appear."""
    nonlocal entry
    if name == 'entry':
      if entry is not None:
        finish_entry()
      line = parser.CurrentLineNumber + line_shift
      if 'id' not in attrs:
        entry = None
        fail('<entry> has no id attribute', line)
      entry = [attrs['id'], line, [], None, '', None]
      parser.StartElementHandler = at_entry
    elif name == 'representativeMember':
      parser.StartElementHandler = in_representative
    elif name == 'member':
      end_sequence()
      parser.StartElementHandler = None
      parser.EndElementHandler = member_end

  def at_entry(name, attrs):
    if name == 'property':
      if attrs.get('type') in go_types:
        entry[2].append(attrs.get('value', ''))
    else:
      common(name, attrs)

  def in_representative(name, attrs):
    if name == 'dbReference':
      entry[3] = attrs.get('id')
      parser.StartElementHandler = in_representative_db
    elif name == 'sequence':
      start_sequence()
    else:
      common(name, attrs)

  def in_representative_db(name, attrs):
    if name == 'property':
      if attrs.get('type') == 'NCBI taxonomy':
        entry[4] = attrs.get('value', '')
    elif name == 'sequence':
      start_sequence()
    else:
      common(name, attrs)

  def start_sequence():
    # Its text runs to the next start tag (only blanks follow it).
    entry[5] = text = []
    parser.CharacterDataHandler = text.append
    parser.StartElementHandler = common

  def member_end(name):
    if name == 'member':
      parser.StartElementHandler = common
      parser.EndElementHandler = None

  parser.StartElementHandler = common
  try:
    # The wrapper keeps the block one element; it adds no line. Fed in
    # pieces, it costs no copy of the block.
    parser.Parse(b'<block>', False)
    parser.Parse(block.data, False)
    parser.Parse(b'</block>', True)
  except expat.ExpatError as e:
    raise _format_error(block.path, e.lineno + line_shift,
                        f'malformed XML ({expat.ErrorString(e.code)})'
                        ) from None
  if entry is not None:
    finish_entry()
  return done
