"""FASTA reading: multi-line, gzip, case, odd letters, empty records, errors."""

import gzip

import pytest

from proteinbert import fasta
from proteinbert import residues

TEXT = """>sp|P1|ONE first protein
MKTA yiak
QRQ*
; an old-style comment
>P2

>P3 odd letters
ACBZJO
"""


def _write(tmp_path, text, name='in.fasta', compress=False):
  path = tmp_path / name
  if compress:
    with gzip.open(path, 'wt') as f:
      f.write(text)
  else:
    path.write_text(text)
  return str(path)


@pytest.mark.parametrize('compress', [False, True])
def test_reads_multiline_gzip_lowercase_and_empty_records(tmp_path, compress):
  records = fasta.read_fasta(_write(tmp_path, TEXT, compress=compress))
  assert records == [
      fasta.FastaRecord('sp|P1|ONE', 'first protein', 'MKTAYIAKQRQ'),
      fasta.FastaRecord('P2', '', ''),
      fasta.FastaRecord('P3', 'odd letters', 'ACBZJO'),
  ]
  assert residues.odd_letters(records[2].seq) == {'B', 'Z', 'J', 'O'}
  assert residues.odd_letters(records[0].seq) == set()


@pytest.mark.parametrize('text,message', [
    ('', 'no FASTA records'),
    ('\n\n', 'no FASTA records'),
    ('MKV\n>P1\nMKV\n', 'before the first'),
    ('>\nMKV\n', 'header without an ID'),
    ('>P1\nMK-V\n', r"in.fasta:2: invalid character '-' in record 'P1'"),
    ('>P1\nMKV\n>P2\nMK1V\n', "invalid character '1'"),
    ('>P1\nMKV\nMK*V\n', r"in.fasta:3: invalid character '\*' in record "
     "'P1'; expected letters A-Z"),
    ('>P1\nMKV\n  M\xe9V\n', r"in.fasta:3: invalid character '\xe9' "
     r'\(U\+00E9\)'),
])
def test_bad_files(tmp_path, text, message):
  with pytest.raises(ValueError, match=message):
    fasta.read_fasta(_write(tmp_path, text))


def test_missing_file(tmp_path):
  with pytest.raises(ValueError, match='cannot read'):
    fasta.read_fasta(str(tmp_path / 'absent.fasta'))


def test_non_ascii_id_is_an_error(tmp_path):
  path = tmp_path / 'in.fasta'
  path.write_bytes(b'>P1\nMKV\n>caf\xe9 protein\nMKV\n')
  with pytest.raises(ValueError, match=r"in\.fasta:3: the ID 'caf\ufffd' "
                     'has bytes that are not printable ASCII'):
    fasta.read_fasta(str(path))
  path.write_bytes(b'>P1\x00\x1b[31m\nMKV\n')
  with pytest.raises(ValueError, match=r'in\.fasta:1: the ID'):
    fasta.read_fasta(str(path))


def test_corrupt_gzip_is_an_error_naming_the_file(tmp_path):
  data = bytearray(gzip.compress(TEXT.encode() * 50))
  data[len(data) // 2] ^= 0xFF
  path = tmp_path / 'in.fasta.gz'
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match=r'in\.fasta\.gz'):
    fasta.read_fasta(str(path))
