"""Tests for proteinbert/data/annotation_table.py."""

import gzip

import pytest

from proteinbert.data import annotation_table


def gaf_row(accession, go_id, qualifier='enables', evidence='IDA'):
  """A GAF 2.2 row (17 columns) as UniProt-GOA writes it."""
  return '\t'.join(['UniProtKB', accession, 'SYMBOL', qualifier, go_id,
                    'PMID:1', evidence, '', 'F', 'A protein', 'SYM',
                    'protein', 'taxon:9606', '20200101', 'UniProt', '', ''])


GAF = '\n'.join([
    '!gaf-version: 2.2',
    '!generated-by: UniProt',
    gaf_row('P00001', 'GO:0005524'),
    gaf_row('Q99999', 'GO:0016301'),
    gaf_row('P00001', 'GO:0007165', qualifier='NOT|involved_in'),
    gaf_row('P00001', 'GO:0005524', evidence='IEA'),  # Same term again.
    gaf_row('P00001', 'GO:0016301', qualifier='contributes_to'),
    gaf_row('P00002', 'GO:0003674', qualifier='NOT'),
]) + '\n'

TSV = ('accession\tgo_ids\n'
       'P00001\tGO:0005524,GO:0016301\n'
       'Q99999\tGO:0016301\n'
       'P00003\t\n')


def _write(tmp_path, name, text, gz):
  path = tmp_path / (name + ('.gz' if gz else ''))
  data = text.encode()
  path.write_bytes(gzip.compress(data) if gz else data)
  return str(path)


@pytest.mark.parametrize('gz', [False, True])
def test_gaf(tmp_path, gz):
  table = annotation_table.AnnotationTable(_write(tmp_path, 'a.gaf', GAF, gz))
  assert table.format == 'gaf'
  assert table.header == {'gaf-version': '2.2', 'generated-by': 'UniProt'}
  # Several rows per protein, in any order; NOT rows left out; no repeats.
  assert table.take('P00001') == ('GO:0005524', 'GO:0016301')
  assert table.take('P00001') == ()  # Taken already.
  assert table.take('P00002') == ()  # Its only row is a NOT row.
  assert table.absent(5) == ['Q99999']
  assert table.counts() == {
      'rows': 6, 'not_rows': 2, 'references': 4, 'proteins': 2,
      'proteins_taken': 1, 'references_taken': 3, 'proteins_absent': 1,
      'references_absent': 1}


@pytest.mark.parametrize('gz', [False, True])
def test_tsv(tmp_path, gz):
  table = annotation_table.AnnotationTable(
      _write(tmp_path, 'a.tsv', TSV.replace('\n', '\r\n'), gz))
  assert table.format == 'tsv'
  assert table.take('P00001') == ('GO:0005524', 'GO:0016301')
  assert table.take('P00003') == ()
  assert table.counts() == {
      'rows': 3, 'not_rows': 0, 'references': 3, 'proteins': 3,
      'proteins_taken': 2, 'references_taken': 2, 'proteins_absent': 1,
      'references_absent': 1}


def test_gaf_without_comment_lines(tmp_path):
  path = _write(tmp_path, 'a.gaf', gaf_row('P1', 'GO:0000001') + '\n', False)
  assert annotation_table.AnnotationTable(path).take('P1') == ('GO:0000001',)


@pytest.mark.parametrize('name, text, message', [
    ('a.tsv', 'P00001\tGO:0005524\n',
     r"a.tsv:1: expected the header line 'accession<TAB>go_ids'"),
    ('a.tsv', '', r'a.tsv:1: expected the header line'),
    ('a.tsv', TSV + 'P00004\tGO:1;GO:2\n',
     r"a.tsv:5: column 2 \(comma-separated GO IDs\) holds 'GO:1;GO:2', "
     'which is not a GO ID'),
    ('a.tsv', TSV + 'P00004\tGO:1\tx\n',
     'a.tsv:5: expected 2 tab-separated columns'),
    ('a.gaf', GAF + 'UniProtKB\tP00009\tX\tenables\tGO:0005524\n',
     'a.gaf:9: expected 15-17 tab-separated GAF columns, found 5'),
    ('a.gaf', GAF + gaf_row('P00009', 'IPR000001') + '\n',
     r"a.gaf:9: column 5 \(GO ID\) holds 'IPR000001', which is not a GO ID"),
])
def test_malformed_tables_name_file_and_line(tmp_path, name, text, message):
  path = _write(tmp_path, name, text, False)
  with pytest.raises(annotation_table.AnnotationTableError, match=message):
    annotation_table.AnnotationTable(path)


def test_accession_that_is_not_utf8(tmp_path):
  # It was decoded with U+FFFD: b'P\xff' and b'P\xfe' became one protein.
  path = tmp_path / 'table.tsv'
  path.write_bytes(b'accession\tgo_ids\nP\xff\tGO:1\nP\xfe\tGO:2\n')
  with pytest.raises(annotation_table.AnnotationTableError,
                     match=r"table\.tsv:2: the accession b'P\\xff' is not "
                     'UTF-8 text'):
    annotation_table.AnnotationTable(str(path))
