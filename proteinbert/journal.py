"""Crash-safe jobs over keyed items: an append-only journal, then the output.

A job that writes one output from many items (proteins of a FASTA file:
`experiments/embed.py`, `experiments/predict_go.py`) records each finished
item in `<output>.journal` and writes the output from the journal, atomically,
once every item is in. So the output is never partial, and a run killed at
any point (SIGKILL, the OOM killer, a scheduler's SIGTERM) loses at most the
item it was writing.

Journal layout: the first line holds the job's settings (one line of JSON);
then one entry per item:

    b'<nbytes>\\t<key>\\t<digest>\\n' + <nbytes> bytes of the item's data

Each entry is appended in one write and fsynced before the next begins. An
entry is complete when its header line parses and all its bytes are there; a
killed run leaves at most one incomplete entry, at the end, which the next
run cuts off. Keys and digests hold no tab or newline (keys are FASTA IDs,
the first word of a header). Only the headers are read on opening (a seek
past each entry's data), so resuming costs one read per entry.

An entry's digest says what the item was computed from (e.g. the SHA-1 of
its sequence): an item already in the journal with another digest is an
error, as is a journal written with other settings.
"""

import os
from typing import Mapping

from absl import logging

SUFFIX = '.journal'


class Journal:
  """The journal of one job (module doc).

  Attributes:
    path: the journal file.
    digests: key -> digest of each complete entry.
  """

  def __init__(self, path: str, settings: str, settings_what: str):
    """Opens or creates the journal; cuts off an incomplete last entry.

    Args:
      path: the journal file.
      settings: one line: what every entry depends on.
      settings_what: what the settings cover, for the error message.

    Raises:
      ValueError: a journal of other settings, or not a journal.
    """
    self.path = path
    self.digests = {}
    # key -> (offset, nbytes) of its data.
    self._places = {}
    if not os.path.exists(path):
      with open(path, 'wb') as f:
        f.write(settings.encode() + b'\n')
        f.flush()
        os.fsync(f.fileno())
      return
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
      if f.readline().rstrip(b'\n').decode('utf-8', 'replace') != settings:
        raise ValueError(f'{path} was written with other settings '
                         f'({settings_what}) or is not this job\'s journal; '
                         'choose a new output file.')
      end = f.tell()
      while header := f.readline():
        start = end + len(header)
        try:
          nbytes, key, digest = header[:-1].decode().split('\t')
          nbytes = int(nbytes)
        except ValueError:
          break
        if not header.endswith(b'\n') or nbytes < 0 or start + nbytes > size:
          break
        self.digests[key] = digest
        self._places[key] = (start, nbytes)
        end = start + nbytes
        f.seek(end)
    if end < size:
      logging.warning('%s: cutting off the unfinished last entry of an '
                      'interrupted run.', path)
      os.truncate(path, end)

  def __contains__(self, key: str) -> bool:
    return key in self.digests

  def append(self, key: str, digest: str, data: bytes) -> None:
    """Adds an item's entry; durable once this returns."""
    header = f'{len(data)}\t{key}\t{digest}\n'.encode()
    with open(self.path, 'ab') as f:
      start = f.tell() + len(header)
      f.write(header + data)
      f.flush()
      os.fsync(f.fileno())
    self.digests[key] = digest
    self._places[key] = (start, len(data))

  def read(self, key: str) -> bytes:
    """An item's data."""
    start, nbytes = self._places[key]
    with open(self.path, 'rb') as f:
      f.seek(start)
      return f.read(nbytes)


def open_job(output_path: str, settings: str, settings_what: str,
             digests: Mapping[str, str]) -> Journal:
  """The journal of the job writing `output_path`, checked against its items.

  Args:
    output_path: the job's output; the journal is `output_path + SUFFIX`.
    settings: see `Journal`.
    settings_what: see `Journal`.
    digests: key -> digest of every item of this run.

  Returns:
    The journal; the items in it are done.

  Raises:
    ValueError: an output without its journal (written by something else,
      so it cannot be resumed), a journal of other settings, or items done
      with other digests.
  """
  path = output_path + SUFFIX
  if os.path.exists(output_path) and not os.path.exists(path):
    raise ValueError(f'{output_path} exists without its journal {path}, so '
                     'it cannot be resumed; choose a new output file.')
  journal = Journal(path, settings, settings_what)
  changed = [key for key, digest in digests.items()
             if journal.digests.get(key, digest) != digest]
  if changed:
    raise ValueError(f'{path}: IDs {changed[:10]} were done for other inputs '
                     '(sequences or known terms); use a new output file.')
  return journal
