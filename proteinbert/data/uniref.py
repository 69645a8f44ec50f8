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
are plain local names; entries named with a prefix (`<u:entry>`) would go
unseen, and are refused. The byte searches need ASCII-compatible text, so
UTF-16 and UTF-32 files (told by their first bytes, as XML 1.0 appendix F
says) are transcoded to UTF-8 as they are read; other encodings are expat's
(the XML declaration's, UTF-8 by default).

Errors name the file and position: malformed XML (expat's line and column), a
truncated or corrupt gzip stream (how far decompression got), an encoding
that cannot be read, an entry without an `id`, without a representative
`dbReference` or with two `<sequence>`s, a taxonomy ID over int32.

Memory stays bounded and time linear whatever the input: the file is read
in bounded pieces (`text_files`), and an XML entry that holds more than
`MAX_ENTRY_BYTES` outside its `<member>`s is skipped and noted
(`UniRefReader.skipped`). The builder counts these skips ('too_long'), and
drops any sequence over `MAX_RESIDUES`.
"""

import codecs
import itertools
import re
from typing import (Callable, Iterable, Iterator, List, NamedTuple, Optional,
                    Tuple)
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
# The largest NCBI taxonomy ID the dataset stores (int32; real ones are
# under 10 million).
MAX_TAXONOMY_ID = 2**31 - 1
# How XML whose text is not ASCII-compatible starts (XML 1.0, appendix F):
# (first bytes, the codec that reads it, the length of its byte order mark).
# UTF-32's marks come first, as they begin with UTF-16's.
_WIDE_STARTS = (
    (b'\x00\x00\xfe\xff', 'utf-32-be', 4),
    (b'\xff\xfe\x00\x00', 'utf-32-le', 4),
    (b'\x00\x00\x00<', 'utf-32-be', 0),
    (b'<\x00\x00\x00', 'utf-32-le', 0),
    (b'\xfe\xff', 'utf-16-be', 2),
    (b'\xff\xfe', 'utf-16-le', 2),
    (b'\x00<\x00?', 'utf-16-be', 0),
    (b'<\x00?\x00', 'utf-16-le', 0),
)


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
_PREFIXED_ENTRY = re.compile(rb'<([A-Za-z_][\w.-]*):entry[\s>/]')
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


_RELEASE = ('a UniRef XML release (<entry> elements inside <UniRef90> or '
            'similar)')


def _format_error(path: str, line: int, what: str,
                  expected: str = _RELEASE) -> text_files.FileFormatError:
  return text_files.FileFormatError(
      f'{path}:{line}: {what}; expected {expected}.')


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
      pieces, wide = _as_utf8(self.path, pieces)
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
          self._refuse_prefixes(pending, line, max(0, searched - 64), first)
          if first is None:
            searched = len(pending)
            if searched > MAX_ENTRY_BYTES:
              raise _format_error(
                  self.path, line,
                  f'no <entry> in the first {searched:,} bytes')
            continue
          encoding = self._read_prolog(bytes(pending[:first.start()]), wide)
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
        self._read_prolog(bytes(pending), wide, final=True)  # No entries.
      elif not _ROOT_END.fullmatch(pending):
        start = _ENTRY_START.search(pending)
        raise _format_error(
            self.path, line + pending.count(b'\n', 0, start.start() if start
                                            else 0),
            'the file ends inside an entry (truncated?)' if start else
            'expected the closing root tag </UniRef...> after the last '
            'entry')

  def _refuse_prefixes(self, pending: bytearray, line: int, searched: int,
                       first: Optional[re.Match]) -> None:
    """Refuses entries named with a namespace prefix (`<u:entry>`).

    Tags are compared as plain names (see the module doc), so such entries
    would all go unseen.

    Args:
      pending: the file's text so far, from line `line`.
      line: the line of pending[0].
      searched: where to look from (what came before was looked at).
      first: the first unprefixed `<entry` in `pending`, if any.
    """
    prefixed = _PREFIXED_ENTRY.search(
        pending, searched, first.start() if first else len(pending))
    if prefixed is not None:
      prefix = prefixed.group(1).decode('ascii')
      raise _format_error(
          self.path, line + pending.count(b'\n', 0, prefixed.start()),
          f'entries are named with the namespace prefix {prefix!r} '
          f'(<{prefix}:entry>), which this reader does not resolve',
          '<entry> in the default namespace, as UniProt writes it '
          '(xmlns="http://uniprot.org/uniref"); rewrite the file without '
          'prefixes')

  def _read_prolog(self, prolog: bytes, wide: Optional[str],
                   final: bool = False) -> str:
    """Parses what precedes the first entry; returns the text's encoding.

    Args:
      prolog: the text before the first entry (all of it, when `final`).
      wide: the codec of a file `_as_utf8` transcoded, else None.
      final: there is no entry.

    Raises:
      text_files.FileFormatError: malformed XML, or an encoding that the
        file's start contradicts or expat cannot read.
    """
    match = _ENCODING.search(prolog[:200])
    declared = match.group(1).decode() if match else 'UTF-8'
    encoding = 'UTF-8' if wide else declared
    try:
      codec = codecs.lookup(declared).name
    except LookupError:
      codec = None
    if codec and codec.startswith(('utf-16', 'utf-32')) and not wide:
      raise text_files.FileFormatError(
          f'{self.path}:1: the XML declaration says encoding="{declared}", '
          'but the file does not start as such text does (a byte order '
          'mark, or "<?" in 2- or 4-byte characters); expected the '
          'encoding the text is in (UTF-8 for UniProt\'s files).')
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
    except (LookupError, ValueError) as e:  # Unknown, or multi-byte.
      raise text_files.FileFormatError(
          f'{self.path}:1: the XML declaration\'s encoding="{declared}" '
          f'cannot be read ({e}); expected UTF-8, UTF-16, UTF-32 or a '
          'single-byte encoding such as ISO-8859-1.') from None
    if final:
      self._refuse_prefixes(bytearray(prolog), 1, 0, None)
    return encoding


def _as_utf8(path: str, pieces: Iterable[bytes]
             ) -> Tuple[Iterator[bytes], Optional[str]]:
  """The file's text as UTF-8 pieces, and the codec it was read with.

  UTF-16 and UTF-32 files (told by their first bytes, `_WIDE_STARTS`) are
  transcoded piece by piece, so the byte searches and expat read UTF-8
  whatever the file; line ends stay where they were. Other files pass
  through as they are (codec None), their declared encoding read by expat.

  Raises:
    text_files.FileFormatError: a transcoded file that is not valid text in
      its codec.
  """
  pieces = iter(pieces)
  start = b''
  for piece in pieces:
    start += piece
    if len(start) >= 4:
      break
  for first_bytes, codec, mark in _WIDE_STARTS:
    if start.startswith(first_bytes):
      return _transcoded(path, start[mark:], pieces, codec), codec
  return itertools.chain([start] if start else [], pieces), None


def _transcoded(path: str, start: bytes, pieces: Iterator[bytes],
                codec: str) -> Iterator[bytes]:
  """UTF-8 of `start` and then `pieces`, read as `codec` (see `_as_utf8`)."""
  decoder = codecs.getincrementaldecoder(codec)()
  lines = 0
  for piece in itertools.chain([start], pieces):
    try:
      text = decoder.decode(piece)
    except UnicodeDecodeError as e:
      # e.start counts from the bytes the decoder held back too (at most a
      # character's), so the line is exact but for a line end right there.
      line = lines + 1 + piece[:e.start].decode(codec, 'ignore').count('\n')
      raise text_files.FileFormatError(
          f'{path}:{line}: not valid {codec} text ({e.reason}); expected '
          'XML in the encoding its first bytes give.') from None
    lines += text.count('\n')
    yield text.encode('utf-8')
  try:
    decoder.decode(b'', final=True)
  except UnicodeDecodeError as e:
    raise text_files.FileFormatError(
        f'{path}: the file ends inside a {codec} character ({e.reason}).'
        ) from None


def taxonomy_id_fits(digits: str) -> bool:
  """Whether the ASCII digits `digits` name an ID the dataset can store.

  The length is checked first: `int` of a long digit string is slow (and
  refused past 4,300 digits).
  """
  return len(digits) <= 10 and int(digits) <= MAX_TAXONOMY_ID


def _taxonomy_id(value: str, fail: Callable[[str, int, str], None],
                 line: int) -> int:
  """An NCBI taxonomy property's value as an ID; -1 when not a number.

  Args:
    value: the property's value.
    fail: raises the error for a number over `MAX_TAXONOMY_ID`.
    line: the property's line, for the error.
  """
  if not (value.isascii() and value.isdigit()):
    return -1
  if not taxonomy_id_fits(value):
    fail(f'NCBI taxonomy ID {value[:20]} is over {MAX_TAXONOMY_ID:,}', line,
         'a taxonomy ID the dataset can store (int32)')
  return int(value)


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
    text_files.FileFormatError: malformed XML, an entry without an `id` or
      without a representative `dbReference`, with two representative
      `<sequence>`s, or with a taxonomy ID over `MAX_TAXONOMY_ID`.
  """
  parser = expat.ParserCreate(block.encoding)
  parser.buffer_text = True
  line_shift = block.first_line - 1
  done = []
  # The entry being read: [entry_id, line, go_ids, protein_id, taxonomy ID
  # (-1 until read), sequence text pieces or None]; None before the first.
  entry = None
  go_types = GO_PROPERTY_TYPES

  def fail(what, line=None, expected=_RELEASE):
    raise _format_error(
        block.path, line or entry[1],
        f'entry {entry[0] if entry else "?"}: {what}', expected)

  def end_sequence():
    parser.CharacterDataHandler = None

  def finish_entry():
    end_sequence()
    entry_id, line, go_ids, protein_id, taxonomy, text = entry
    if not protein_id:
      fail('expected <representativeMember><dbReference id="..."> but found '
           'none')
    done.append(UniRefEntry(
        entry_id, protein_id, taxonomy,
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
      entry = [attrs['id'], line, [], None, -1, None]
      parser.StartElementHandler = at_entry
    elif name == 'representativeMember':
      parser.StartElementHandler = in_representative
    elif name == 'member':
      end_sequence()
      parser.StartElementHandler = None
      parser.EndElementHandler = member_end
    elif name == 'sequence' and entry is not None and entry[5] is not None:
      second_sequence()

  def second_sequence():
    fail('a second <sequence> outside the members',
         parser.CurrentLineNumber + line_shift, "one, the representative's")

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
        entry[4] = _taxonomy_id(attrs.get('value', ''), fail,
                                parser.CurrentLineNumber + line_shift)
    elif name == 'sequence':
      start_sequence()
    else:
      common(name, attrs)

  def start_sequence():
    if entry[5] is not None:
      second_sequence()
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
