"""Entry IDs that two UniRef XML entries share, found in bounded memory.

A UniProt release never repeats a cluster ID; a repeated one means a
damaged or concatenated file, and keeping both entries would put one
protein in the dataset twice (perhaps once in each of the training and
test sets, which join on IDs). So a repeat is an error, as in the FASTA
route (where the shuffle's ID order makes repeats meet, `sources`).

The XML route's order hashes positions, so repeats never meet there.
Instead workers split each block's (ID, line) pairs into `part_count` parts
by a hash of the ID (`split`), the main process appends them to part files
in the scratch directory (`IdParts`), and after the pass each part is
checked on its own (`IdParts.check`): memory holds one part's IDs, about
`_IDS_PER_PART` of them, and the scratch space grows by about 30 bytes per
entry.
"""

import collections
import math
import os
import zlib
from typing import Dict, Iterable, List, Optional, Tuple

from proteinbert.data import text_files
from proteinbert.data import uniref
from proteinbert.data.builder import workers

# IDs per part file, on the release's estimated size: a part's dict takes
# about 30 MB. A release several times larger than estimated (the estimate
# comes from its first block) still checks in a few hundred MB.
_IDS_PER_PART = 200_000
# Parts at most (about 200M entries, UniRef90's size, fill them as planned).
_MAX_PARTS = 1024
# Bytes held for the part files before they are written.
_BUFFER_BYTES = 16 << 20


def part_count(estimate: float) -> int:
  """The parts for a release of about `estimate` entries."""
  return max(1, min(_MAX_PARTS, math.ceil(estimate / _IDS_PER_PART)))


def split(entries: Iterable[uniref.UniRefEntry],
          num_parts: int) -> Dict[int, bytes]:
  """Part -> the (ID, line) pairs of `entries` that go to it, serialised.

  A pair is the UTF-8 ID, NUL, the decimal line, NUL (XML text holds no
  NUL).
  """
  parts = collections.defaultdict(list)
  for entry in entries:
    key = entry.entry_id.encode('utf-8')
    parts[zlib.crc32(key) % num_parts].append(b'%s\0%d\0' % (key, entry.line))
  return {part: b''.join(pairs) for part, pairs in parts.items()}


class IdParts:
  """The part files of one build's entry IDs (see the module doc)."""

  def __init__(self, directory: str, num_parts: int):
    """Writes `num_parts` part files into `directory` (the scratch)."""
    self._paths = [os.path.join(directory, f'ids{p}')
                   for p in range(num_parts)]
    self._buffers = [[] for _ in range(num_parts)]
    self._buffered = 0

  def add(self, parts: Dict[int, bytes]) -> None:
    """Adds a block's pairs, as `split` gave them."""
    for part, data in parts.items():
      self._buffers[part].append(data)
      self._buffered += len(data)
    if self._buffered > _BUFFER_BYTES:
      self._flush()

  def check(self, path: str, num_workers: int) -> None:
    """Raises if two entries of the XML `path` share an ID.

    Args:
      path: the XML, for the error.
      num_workers: worker processes that check parts.

    Raises:
      text_files.FileFormatError: names the ID and both lines (the repeat
        nearest the file's start).
    """
    self._flush()
    found = [r for r in workers.ordered_map(_first_repeat, self._paths,
                                            num_workers) if r]
    if found:
      line, first, entry_id = min(found)
      raise text_files.FileFormatError(
          f'{path}:{line}: entry ID {entry_id!r} again (first at line '
          f'{first}); expected each ID once, as in a UniProt release (two '
          'releases joined into one file?).')

  def _flush(self) -> None:
    for part_path, buffer in zip(self._paths, self._buffers):
      if buffer:
        with open(part_path, 'ab') as f:
          f.writelines(buffer)
        buffer.clear()
    self._buffered = 0


def _first_repeat(part_path: str) -> Optional[Tuple[int, int, str]]:
  """(line, first line, ID) of the part's earliest repeated ID, or None.

  Removes the part file.
  """
  if not os.path.exists(part_path):
    return None
  with open(part_path, 'rb') as f:
    fields: List[bytes] = f.read().split(b'\0')
  os.remove(part_path)
  seen, repeats = {}, []
  for key, line in zip(fields[0::2], fields[1::2]):
    first = seen.setdefault(key, line)
    if first is not line:
      repeats.append((int(line), int(first), key.decode('utf-8')))
  return min(repeats) if repeats else None
