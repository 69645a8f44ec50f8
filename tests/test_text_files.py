"""Tests for proteinbert/data/text_files.py."""

import gzip

import pytest

from proteinbert.data import text_files


def test_read_lines(tmp_path, monkeypatch):
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 4)
  path = tmp_path / 'x.txt.gz'
  path.write_bytes(gzip.compress(b'first line\n\nthird\nlast'))
  assert list(text_files.read_lines(str(path))) == [
      b'first line', b'', b'third', b'last']


def test_truncated_gzip_names_the_file(tmp_path):
  path = tmp_path / 'x.txt.gz'
  whole = gzip.compress(b'line\n' * 1000)
  path.write_bytes(whole[:len(whole) // 2])
  with pytest.raises(text_files.FileFormatError,
                     match=r'x\.txt\.gz: the gzip stream is truncated'):
    list(text_files.read_lines(str(path)))
