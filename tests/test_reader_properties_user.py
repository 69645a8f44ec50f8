"""Property-based tests of the user-facing readers (issue 14): the model's
FASTA reader (`fasta.read_fasta`) and the fine-tuning CSV reader
(`finetuning.data.read_csv`).

Arbitrary bytes, and valid files with bytes changed, inserted or deleted,
give either the right result or a ValueError naming the file, never another
exception. "Right" for FASTA is what a reference reader written here from the
format's description gives; for CSV, what the csv module's rows and
`residues.normalize` give, and the exact records for unchanged files.
"""

import contextlib
import csv
import gzip
import io
import os
import tempfile

import hypothesis
from hypothesis import strategies as st

from proteinbert import fasta
from proteinbert import residues
from proteinbert.finetuning import data as finetuning_data

_SETTINGS = hypothesis.settings(
    max_examples=150, deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow])


@contextlib.contextmanager
def _written(data: bytes, name: str):
  """The path of a file holding `data`, removed afterwards."""
  with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, name)
    with open(path, 'wb') as f:
      f.write(data)
    yield path


def _outcome(read, data: bytes, name: str):
  """(read(path of data), path), the result or the ValueError it raised,
  which must name the file."""
  with _written(data, name) as path:
    try:
      return read(path), path
    except ValueError as e:
      assert path in str(e), f'{e!r} does not name {path}'
      return e, path


# Byte edits: (position as a fraction of the length, kind, byte).
_EDITS = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(
    ['replace', 'insert', 'delete']), st.sampled_from(
        list(b'\n\r\t >;*-.,"1aZz\x00\x1c\x7f') + [0xe9, 0xc3, 0xff])),
                  min_size=1, max_size=4)


def _edited(data: bytes, edits) -> bytes:
  data = bytearray(data)
  for where, kind, byte in edits:
    i = min(int(where * len(data)), max(len(data) - 1, 0))
    if kind == 'insert' or not data:
      data.insert(i, byte)
    elif kind == 'replace':
      data[i] = byte
    else:
      del data[i]
  return bytes(data)


# FASTA.


def _reference_fasta(data: bytes):
  """The records the format's description gives, or None for an error."""
  records = []
  for line in data.split(b'\n'):
    if line.startswith(b'>'):
      words = line[1:].split(maxsplit=1) + [b'', b'']
      records.append([words[0], words[1], []])
    elif (stripped := line.strip()) and not stripped.startswith(b';'):
      if not records:
        return None
      records[-1][2].append(stripped)
  result = []
  for record_id, description, parts in records:
    seq = residues.normalize_bytes(b''.join(parts))
    if not (record_id.isascii() and record_id.decode().isprintable()
            and record_id) or seq is None:
      return None
    result.append(fasta.FastaRecord(
        record_id.decode(), description.decode('utf-8', 'replace').strip(),
        seq.decode()))
  return result or None


def _well_formed(records) -> bool:
  return all(r.id and r.id.isascii() and r.id.isprintable() and (
      r.seq.isalpha() and r.seq.isascii() and r.seq.isupper() or not r.seq)
             for r in records)


def _check_fasta(data: bytes, compress: bool):
  outcome, _ = _outcome(fasta.read_fasta,
                        gzip.compress(data) if compress else data,
                        'in.fasta' + ('.gz' if compress else ''))
  if not compress and data.startswith(b'\x1f\x8b'):
    # Read as gzip: whatever it holds must be read as FASTA.
    assert isinstance(outcome, ValueError) or _well_formed(outcome)
    return
  expected = _reference_fasta(data)
  if expected is None:
    assert isinstance(outcome, ValueError), outcome
  else:
    assert outcome == expected


_RECORD = st.tuples(
    st.text('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_|.', min_size=1,
            max_size=8),
    st.text('abc XYZ=9', max_size=10),
    st.text('ACDEFGHIKLMNPQRSTVWYacdefgklmXBZJOU', max_size=40),
    st.booleans(),  # A final '*'.
    st.integers(1, 30))  # Line width.


def _fasta_text(records) -> bytes:
  text = []
  for record_id, description, seq, stop, width in records:
    seq += '*' if stop else ''
    text.append(f'>{record_id} {description}\n' + ''.join(
        seq[i:i + width] + '\n' for i in range(0, len(seq), width)))
  return ''.join(text).encode()


@_SETTINGS
@hypothesis.given(st.binary(max_size=300), st.booleans())
def test_fasta_arbitrary_bytes(data, compress):
  _check_fasta(data, compress)


@_SETTINGS
@hypothesis.given(st.lists(_RECORD, min_size=1, max_size=4), st.booleans())
def test_fasta_valid_files(records, compress):
  data = _fasta_text(records)
  outcome, _ = _outcome(fasta.read_fasta,
                        gzip.compress(data) if compress else data, 'in.fasta')
  assert outcome == [fasta.FastaRecord(i, d.strip(), s.upper())
                     for i, d, s, _, _ in records]


@_SETTINGS
@hypothesis.given(st.lists(_RECORD, min_size=1, max_size=4), _EDITS,
                  st.booleans())
def test_fasta_edited_files(records, edits, compress):
  _check_fasta(_edited(_fasta_text(records), edits), compress)


@_SETTINGS
@hypothesis.given(st.lists(_RECORD, min_size=1, max_size=3), _EDITS)
def test_fasta_damaged_gzip(records, edits):
  outcome, _ = _outcome(
      fasta.read_fasta, _edited(gzip.compress(_fasta_text(records)), edits),
      'in.fasta.gz')
  assert isinstance(outcome, ValueError) or _well_formed(outcome)


# Fine-tuning CSVs.


def _check_csv(data: bytes):
  outcome, path = _outcome(finetuning_data.read_csv, data, 'task.train.csv')
  if isinstance(outcome, ValueError):
    return outcome
  assert len(outcome.seqs) == len(outcome.labels) == len(outcome.lines) > 0
  assert outcome.source == path
  assert outcome.lines == sorted(set(outcome.lines)) and outcome.lines[0] >= 2
  rows = list(csv.DictReader(io.StringIO(data.decode('utf-8-sig'),
                                         newline='')))
  assert outcome.seqs == [residues.normalize(r['seq']) for r in rows]
  assert outcome.labels == [r['label'] for r in rows]
  assert all(s.isalpha() and s.isupper() for s in outcome.seqs)
  return outcome


_ROW = st.tuples(st.text('ACDEFGHIKLMNPQRSTVWYacdefgBXZ', min_size=1,
                         max_size=30),
                 st.booleans(),  # A final '*'.
                 st.text('0123456789.abc', min_size=1, max_size=4),
                 st.text('xy ,"\n', max_size=6))  # Another column.


def _csv_text(rows, order) -> bytes:
  buffer = io.StringIO(newline='')
  writer = csv.writer(buffer)
  columns = ['seq', 'label', 'note']
  header = [columns[i] for i in order]
  writer.writerow(header)
  for seq, stop, label, note in rows:
    fields = dict(seq=seq + ('*' if stop else ''), label=label, note=note)
    writer.writerow([fields[c] for c in header])
  return buffer.getvalue().encode()


_ORDERS = st.permutations([0, 1, 2])


@_SETTINGS
@hypothesis.given(st.binary(max_size=300))
def test_csv_arbitrary_bytes(data):
  _check_csv(data)


@_SETTINGS
@hypothesis.given(st.lists(_ROW, min_size=1, max_size=5), _ORDERS,
                  st.booleans())
def test_csv_valid_files(rows, order, byte_order_mark):
  data = _csv_text(rows, order)
  outcome = _check_csv(b'\xef\xbb\xbf' + data if byte_order_mark else data)
  assert outcome.seqs == [s.upper() for s, _, _, _ in rows]
  assert outcome.labels == [label for _, _, label, _ in rows]


@_SETTINGS
@hypothesis.given(st.lists(_ROW, min_size=1, max_size=5), _ORDERS, _EDITS)
def test_csv_edited_files(rows, order, edits):
  _check_csv(_edited(_csv_text(rows, order), edits))
