"""Tests for proteinbert/data/fasta_reader.py."""

import gzip

import pytest

from experiments import synthetic
from proteinbert.data import fasta_reader
from proteinbert.data import text_files
from proteinbert.data import uniref
from tests import synthetic_release


def test_fasta_join(tmp_path):
  entries = [synthetic_release.entry(f'P{i}', sequence='MK' * (i + 40))
             for i in range(6)]
  path = str(tmp_path / 'u.fasta.gz')
  synthetic.write_fasta(path, entries)
  assert {r.id: r.sequence for r in fasta_reader.FastaReader(path)} == {
      e.entry_id: e.sequence for e in entries}
  join = fasta_reader.FastaJoin(path, uniref.MAX_RESIDUES, window=2)
  assert join.lookup('UniRef90_P2') == entries[2].sequence  # Passes P0, P1.
  assert join.lookup('UniRef90_P1') == entries[1].sequence  # Waiting.
  assert join.lookup('UniRef90_NOPE') is None  # Passes P3, P4; drops P0.
  assert join.lookup('UniRef90_P0') is None
  assert join.lookup('UniRef90_P4') == entries[4].sequence
  assert join.num_missing == 2


def test_fasta_without_header(tmp_path):
  path = tmp_path / 'u.fasta'
  path.write_text('\nMKV\n>P1\nMKV\n')
  with pytest.raises(text_files.FileFormatError,
                     match=r"u.fasta:2: sequence data before the first '>'"):
    list(fasta_reader.FastaReader(str(path)))


@pytest.mark.parametrize('gz, read_ahead', [(False, False), (True, True)])
def test_fasta_reader_records(tmp_path, gz, read_ahead):
  text = ('>sp|P1|A_HUMAN Protein A OS=Homo sapiens OX=9606\nMKV\nLA\n\n'
          '>P2\n>UPI1 \xe9 n=1\r\nWW\r\n')
  path = tmp_path / ('u.fasta.gz' if gz else 'u.fasta')
  data = text.encode()
  path.write_bytes(gzip.compress(data) if gz else data)
  reader = fasta_reader.FastaReader(str(path))
  assert list(reader.records(read_ahead=read_ahead)) == [
      fasta_reader.FastaRecord('sp|P1|A_HUMAN',
                         'Protein A OS=Homo sapiens OX=9606', 'MKVLA', 1),
      fasta_reader.FastaRecord('P2', '', '', 5),
      fasta_reader.FastaRecord('UPI1', '\xe9 n=1', 'WW', 6),
  ]


def test_fasta_record_over_the_residue_cap_is_skipped(tmp_path):
  path = tmp_path / 'p.fasta'
  path.write_text('>P1 a\nMKV\n>BIG b\n' + 'A' * 60 + '\n' + 'A' * 60 +
                  '\n>P3\nMKW\n')
  reader = fasta_reader.FastaReader(str(path), max_residues=100)
  assert [(r.id, r.sequence) for r in reader] == [('P1', 'MKV'),
                                                 ('P3', 'MKW')]
  assert reader.skipped == [('BIG', 3)]
  assert len(list(fasta_reader.FastaReader(str(path)))) == 3  # No cap: all.


def test_a_line_over_the_cap_is_a_clear_error(tmp_path, monkeypatch):
  monkeypatch.setattr(text_files, 'MAX_LINE_BYTES', 1000)
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 100)
  path = tmp_path / 'p.fasta.gz'
  path.write_bytes(gzip.compress(b'>P1\nMKV\n>BIG\n' + b'A' * 5000 + b'\n'))
  with pytest.raises(text_files.FileFormatError,
                     match=r'p\.fasta\.gz:4: a line longer than 1,000 bytes'):
    list(fasta_reader.FastaReader(str(path)))
  # Lines spread over many reads are joined whole.
  path.write_bytes(gzip.compress(b'>P1\n' + b'A' * 900 + b'\n>P2\nMK\n'))
  assert [len(r.sequence)
          for r in fasta_reader.FastaReader(str(path))] == [900, 2]


@pytest.mark.parametrize('raw_id', [b'P\xff1', b'P\x011', b'\xce\xb1'])
def test_an_id_that_is_not_printable_ascii_is_a_clear_error(tmp_path, raw_id):
  # Decoded with U+FFFD (or kept with a control character), two distinct IDs
  # could become one key.
  path = tmp_path / 'u.fasta'
  path.write_bytes(b'>P0\nMKV\n>' + raw_id + b' desc\nMKV\n')
  with pytest.raises(text_files.FileFormatError,
                     match=r'u.fasta:3: the ID .* not printable ASCII'):
    list(fasta_reader.FastaReader(str(path)))
