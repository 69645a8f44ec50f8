"""Reading large input files (gzip or plain) in blocks and lines.

Every reader of the builder's inputs (`uniref.UniRefReader`,
`fasta_reader.FastaReader`, the annotation tables) and of user FASTA files
opens its file here: the file is gzip if it starts with gzip's magic bytes,
whatever its name, and plain otherwise.

Memory stays bounded and time linear whatever the input: decompression
yields at most `_MAX_PIECE_BYTES` at a time (a compression bomb inflates in
many pieces), and a line over `MAX_LINE_BYTES` is an error.
"""

import contextlib
import functools
import os
import zlib
from typing import BinaryIO, Iterable, Iterator

from proteinbert.data import prefetch

# Read this many compressed or plain bytes per step: large enough to amortize
# the Python-level loop, small enough that the entries parsed from one block
# (a few thousand) are a negligible amount of memory.
_BLOCK_BYTES = 1 << 20
# Decompressed bytes per piece, at most: far above what a step of real
# UniRef XML or FASTA inflates to (about 6x), so only a compression bomb
# (one long run of one letter) is cut into more pieces than one per step.
_MAX_PIECE_BYTES = 32 << 20
# Bytes of one line, at most: room for any real one (a FASTA sequence line
# of a whole titin takes 35 KB); a longer line is an error.
MAX_LINE_BYTES = 16 << 20


class FileFormatError(ValueError):
  """Unreadable input; the message names the file and where it went wrong."""


def _gzip_error(path: str, done: int, why) -> FileFormatError:
  return FileFormatError(
      f'{path}: the gzip stream is truncated or corrupt after {done:,} '
      f'decompressed bytes ({why}); expected a complete .gz file: '
      're-download it and check its size or checksum.')


def _blocks(path: str, raw: BinaryIO) -> Iterator[bytes]:
  """The decompressed bytes of `raw` (gzip or plain), in blocks.

  zlib inflates gzip members directly, in steps of `_BLOCK_BYTES` of the
  file rather than `gzip.GzipFile`'s 8 KB, and checks each member's CRC and
  length itself.

  Args:
    path: the file's name, for error messages.
    raw: the file, opened for binary reading at its start.

  Raises:
    FileFormatError: a damaged or truncated gzip stream.
  """
  if raw.read(2) != b'\x1f\x8b':
    raw.seek(0)
    while data := raw.read(_BLOCK_BYTES):
      yield data
    return
  raw.seek(0)
  inflater, fed, done = zlib.decompressobj(wbits=31), False, 0
  while data := raw.read(_BLOCK_BYTES):
    while data:
      try:
        out = inflater.decompress(data, _MAX_PIECE_BYTES)
      except zlib.error as e:
        raise _gzip_error(path, done, e) from None
      fed, data = True, inflater.unconsumed_tail
      if inflater.eof:  # Another gzip member may follow.
        data = inflater.unused_data
        inflater, fed = zlib.decompressobj(wbits=31), False
      done += len(out)
      if out:
        yield out
  if fed:
    raise _gzip_error(path, done, 'the stream ends early')


def split_lines(path: str, pieces: Iterable[bytes]) -> Iterator[bytes]:
  """The lines of consecutive pieces of a text, without '\\n' line ends.

  A line spread over many pieces is joined once, in linear time.

  Args:
    path: the file's name, for error messages.
    pieces: the text's bytes, in order.

  Raises:
    FileFormatError: a line longer than `MAX_LINE_BYTES`.
  """
  rest, rest_bytes, number = [], 0, 1  # The unfinished line: its pieces.
  for block in pieces:
    lines = block.split(b'\n')
    last = lines.pop()
    if lines:
      lines[0] = b''.join(rest + [lines[0]])
      rest, rest_bytes = [], 0
      if len(lines[0]) > MAX_LINE_BYTES or len(block) > MAX_LINE_BYTES:
        for k, text in enumerate(lines):
          if len(text) > MAX_LINE_BYTES:
            raise _long_line(path, number + k)
      number += len(lines)
    rest.append(last)
    rest_bytes += len(last)
    if rest_bytes > MAX_LINE_BYTES:
      raise _long_line(path, number)
    yield from lines
  if rest_bytes:
    yield b''.join(rest)


def _long_line(path: str, number: int) -> FileFormatError:
  return FileFormatError(
      f'{path}:{number}: a line longer than {MAX_LINE_BYTES:,} bytes; '
      'expected text lines (is this the right file?).')


def read_lines(path: str) -> Iterator[bytes]:
  """The lines of `path` (gzip or plain), without '\\n' line ends.

  Raises:
    FileFormatError: a damaged gzip stream, or a line longer than
      `MAX_LINE_BYTES`.
  """
  with open(path, 'rb') as raw:
    yield from split_lines(path, _blocks(path, raw))


class FileReader:
  """A file read once, start to end, that tells how far it has got.

  The base of the streaming readers (`uniref.UniRefReader`,
  `fasta_reader.FastaReader`).

  Attributes:
    path: the file.
  """

  def __init__(self, path: str):
    self.path = path
    self._raw = None
    self._size = os.path.getsize(path)

  @property
  def fraction_read(self) -> float:
    """Fraction of the file's (compressed) bytes consumed so far."""
    if self._raw is None or self._raw.closed or not self._size:
      return 0.0
    return min(1.0, self._raw.tell() / self._size)

  @contextlib.contextmanager
  def _pieces(self, read_ahead: bool) -> Iterator[Iterator[bytes]]:
    """The file's decompressed bytes in pieces, while the context lasts.

    Args:
      read_ahead: decompress on a thread of its own, beside the caller's
        work on the pieces before. Do not fork while iterating then (start
        worker processes first).
    """
    with open(self.path, 'rb') as raw, contextlib.ExitStack() as stack:
      self._raw = raw
      pieces = _blocks(self.path, raw)
      if read_ahead:
        # zlib lets go of the GIL while it inflates, so decompression runs
        # beside the caller's work on the pieces before.
        pieces = stack.enter_context(prefetch.Prefetcher(
            functools.partial(next, pieces), depth=2))
      yield pieces
