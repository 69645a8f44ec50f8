"""Tests for proteinbert/data/uniref.py."""

import gzip
import json
import os
import random
import re
import subprocess
import sys
import textwrap
import threading

import pytest

from experiments import synthetic
from proteinbert.data import text_files
from proteinbert.data import uniref
from tests import synthetic_release

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ENTRIES = (
    synthetic_release.entry('Q8WZ42', ['GO:0005524', 'GO:0007165'],
                            protein_id='TITIN_HUMAN', sequence='MTTQAP'),
    synthetic_release.entry('A0A023GPI8', ['GO:0005488'], taxonomy_id=-1),
    synthetic_release.entry('UPI0000000001', protein_id='UPI0000000001',
                            sequence=None),
)


@pytest.mark.parametrize('gz', [True, False])
def test_reads_entries(tmp_path, gz):
  paths = synthetic_release.write(str(tmp_path), ENTRIES, gz=gz)
  reader = uniref.UniRefReader(paths['xml'])
  entries = list(reader)
  assert [e._replace(line=0) for e in entries] == list(ENTRIES)
  # Each <entry> tag's line in the decompressed file.
  with gzip.open(paths['xml'], 'rt') if gz else open(paths['xml']) as f:
    lines = [i for i, text in enumerate(f, 1) if text.startswith('<entry ')]
  assert [e.line for e in entries] == lines
  assert reader.release['root'] == 'UniRef90'
  assert reader.release['version'] == '2026_01'
  assert reader.fraction_read == 1.0 or reader.fraction_read == 0.0


def test_members_and_nested_properties_are_not_the_entry(tmp_path):
  # Members have their own dbReference, taxonomy and sequence; a GO property
  # repeated at entry level counts once.
  path = tmp_path / 'u.xml'
  path.write_text(
      '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
      '<UniRef50 xmlns="http://uniprot.org/uniref" version="x">\n'
      '<entry id="UniRef50_P1">\n<name>Cluster: \xe9</name>\n'
      '<property type="GO Cellular Component" value="GO:0005575"/>\n'
      '<property type="common taxon" value="Mus"/>\n'
      '<property type="GO Cellular Component" value="GO:0005575"/>\n'
      '<property type="GO Biological Process" value="GO:0008150"/>\n'
      '<representativeMember><dbReference type="UniProtKB ID" id="P1_MOUSE">'
      '<property type="GO Molecular Function" value="GO:1"/>\n'
      '<property type="NCBI taxonomy" value="10090"/></dbReference>\n'
      '<sequence length="4">MK\n  VL</sequence></representativeMember>\n'
      '<member><dbReference type="UniProtKB ID" id="MEMBER_HUMAN">\n'
      '<property type="NCBI taxonomy" value="1"/>\n'
      '<property type="GO Molecular Function" value="GO:9"/>\n'
      '</dbReference><sequence>WWW</sequence></member>\n'
      '</entry>\n</UniRef50>\n', encoding='latin-1')
  (entry,) = uniref.UniRefReader(str(path))
  assert entry == uniref.UniRefEntry('UniRef50_P1', 'P1_MOUSE', 10090, 'MKVL',
                                     ('GO:0005575', 'GO:0008150'), 3)


@pytest.mark.parametrize('read_ahead', [False, True])
def test_small_blocks_and_long_entries(tmp_path, monkeypatch, read_ahead):
  entries = [synthetic_release.entry(f'P{i:05d}', sequence='A' * (50 * i + 1))
             for i in range(40)]
  paths = synthetic_release.write(str(tmp_path), entries)
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 256)
  reader = uniref.UniRefReader(paths['xml'])
  blocks = list(reader.blocks(read_ahead=read_ahead))
  assert len(blocks) > 10
  parsed = [e for b in blocks for e in uniref.parse_block(b)]
  assert [e.sequence for e in parsed] == [e.sequence for e in entries]


def test_release_without_entries(tmp_path):
  paths = synthetic_release.write(str(tmp_path), [])
  assert not list(uniref.UniRefReader(paths['xml']))


def _xml_bytes(tmp_path, entries=ENTRIES):
  paths = synthetic_release.write(str(tmp_path), entries, gz=False)
  with open(paths['xml'], 'rb') as f:
    return f.read()


@pytest.mark.parametrize('read_ahead', [False, True])
def test_truncated_gzip_fails_clearly(tmp_path, read_ahead):
  path = tmp_path / 'cut.xml.gz'
  whole = gzip.compress(_xml_bytes(tmp_path))
  path.write_bytes(whole[:len(whole) // 2])
  with pytest.raises(text_files.FileFormatError,
                     match=r'cut.xml.gz: the gzip stream is truncated'):
    list(uniref.UniRefReader(str(path)).blocks(read_ahead=read_ahead))


def test_read_ahead_stops_when_the_reader_does(tmp_path, monkeypatch):
  paths = synthetic_release.write(str(tmp_path), ENTRIES * 50)
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 64)
  blocks = uniref.UniRefReader(paths['xml']).blocks(read_ahead=True)
  next(blocks)
  threads = threading.active_count()
  blocks.close()
  assert threading.active_count() == threads - 1


def test_truncated_plain_xml_fails_clearly(tmp_path):
  data = _xml_bytes(tmp_path)
  path = tmp_path / 'cut.xml'
  path.write_bytes(data[:data.rindex(b'<sequence')])
  with pytest.raises(text_files.FileFormatError,
                     match=r'cut.xml:\d+: the file ends inside an entry'):
    list(uniref.UniRefReader(str(path)))


def test_malformed_xml_names_the_line(tmp_path):
  data = _xml_bytes(tmp_path).replace(b'</representativeMember>',
                                      b'</representative>', 2)
  path = tmp_path / 'bad.xml'
  path.write_bytes(data)
  line = data[:data.index(b'</representative>')].count(b'\n') + 1
  with pytest.raises(text_files.FileFormatError,
                     match=rf'bad.xml:{line}: malformed XML \(mismatched tag'):
    list(uniref.UniRefReader(str(path)))


def test_not_xml(tmp_path):
  path = tmp_path / 'x.xml'
  path.write_text('>UniRef90_P1\nMKV\n')
  with pytest.raises(text_files.FileFormatError,
                     match='x.xml:1: malformed XML'):
    list(uniref.UniRefReader(str(path)))


@pytest.mark.parametrize('edit, message', [
    ((b'<entry id="UniRef90_A0A023GPI8"', b'<entry'), 'has no id attribute'),
    ((b'<dbReference type="UniProtKB ID" id="A0A023GPI8_HUMAN">',
      b'<dbReference type="UniProtKB ID">'),
     r'entry UniRef90_A0A023GPI8: expected <representativeMember>'
     r'<dbReference id="..."> but found none'),
])
def test_entry_missing_what_we_need(tmp_path, edit, message):
  data = _xml_bytes(tmp_path).replace(*edit)
  path = tmp_path / 'u.xml'
  path.write_bytes(data)
  with pytest.raises(text_files.FileFormatError, match=message):
    list(uniref.UniRefReader(str(path)))


def _release_with_long_entry(path, sequence_length, members=1):
  """Two short entries around one long one (its sequence, or its members)."""
  # Random residues, so that gzip reads stay short too.
  sequence = ''.join(random.Random(0).choices('ACDEFGHIKLMNPQRSTVWY',
                                              k=sequence_length))
  entries = [
      synthetic_release.entry('P1'),
      synthetic_release.entry('BIG', ['GO:0005524'], sequence=sequence),
      synthetic_release.entry('P3', sequence='MKW'),
  ]
  synthetic.write_uniref_xml(str(path), entries, members=members)
  return entries


def _entry_lines(path):
  opener = gzip.open if str(path).endswith('.gz') else open
  with opener(path, 'rt') as f:
    return [i for i, text in enumerate(f, 1) if text.startswith('<entry ')]


def test_member_heavy_entry_spread_over_many_reads(tmp_path, monkeypatch):
  # Over the entry cap only with its members, which are dropped on the way.
  path = tmp_path / 'u.xml'
  entries = _release_with_long_entry(path, 2000, members=300)
  monkeypatch.setattr(uniref, 'MAX_ENTRY_BYTES', 8192)
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 1000)
  reader = uniref.UniRefReader(str(path))
  read = list(reader)
  assert [e._replace(line=0) for e in read] == entries
  assert [e.line for e in read] == _entry_lines(path)
  assert not reader.skipped


@pytest.mark.parametrize('gz', [False, True])
def test_entry_over_the_cap_is_skipped_and_noted(tmp_path, monkeypatch, gz):
  path = tmp_path / ('u.xml.gz' if gz else 'u.xml')
  entries = _release_with_long_entry(path, 100_000)
  monkeypatch.setattr(uniref, 'MAX_ENTRY_BYTES', 8192)
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 1000)
  reader = uniref.UniRefReader(str(path))
  read = list(reader)
  lines = _entry_lines(path)
  assert [e.entry_id for e in read] == [entries[0].entry_id,
                                        entries[2].entry_id]
  assert [e.line for e in read] == [lines[0], lines[2]]
  assert reader.skipped == [('UniRef90_BIG', lines[1])]


def test_long_entry_is_read_in_linear_time_and_bounded_memory(tmp_path):
  # Quadratic before: each read was appended to the unfinished entry (a
  # copy) and the whole of it searched again; 48 MB of residues in 64 KB
  # reads took minutes of CPU. The gzip case held the whole entry (the
  # issue's 200M residues in a 204 KB .gz peaked at 1.5 GB).
  script = textwrap.dedent('''
      import json, resource, sys
      from proteinbert.data import text_files, uniref
      text_files._BLOCK_BYTES = 1 << 16
      before = resource.getrusage(resource.RUSAGE_SELF)
      reader = uniref.UniRefReader(sys.argv[1])
      ids = [e.entry_id for e in reader]
      after = resource.getrusage(resource.RUSAGE_SELF)
      print(json.dumps([ids, reader.skipped, after.ru_utime - before.ru_utime,
                        (after.ru_maxrss - before.ru_maxrss) / 1024]))
  ''')
  for name in ('u.xml', 'u.xml.gz'):
    path = tmp_path / name
    opener = gzip.open if name.endswith('.gz') else open
    with opener(path, 'wb') as f:
      f.write(b'<UniRef90>\n<entry id="UniRef90_BIG"><representativeMember>'
              b'<dbReference type="UniProtKB ID" id="BIG_HUMAN"/><sequence>')
      for _ in range(48):
        f.write(b'A' * (1 << 20))
      f.write(b'</sequence></representativeMember></entry>\n'
              b'<entry id="UniRef90_P2"><representativeMember><dbReference '
              b'type="UniProtKB ID" id="P2_HUMAN"/></representativeMember>'
              b'</entry>\n</UniRef90>\n')
    done = subprocess.run([sys.executable, '-c', script, str(path)],
                          cwd=ROOT, capture_output=True, text=True,
                          check=True)
    ids, skipped, cpu_seconds, grown_mb = json.loads(done.stdout)
    assert ids == ['UniRef90_P2'] and skipped == [['UniRef90_BIG', 2]]
    # Linear: about 0.1 CPU-s here, against about 10 for the quadratic code.
    assert cpu_seconds < 2, name
    # Bounded: the entry cap (16 MB) and a few decompressed pieces (32 MB
    # each) at most, where the old code held the whole 48 MB entry, copied.
    assert grown_mb < 150, name


def _members_xml(encoding):
  """Two entries, non-ASCII text, and `encoding` in the XML declaration."""
  return (f'<?xml version="1.0" encoding="{encoding}" ?>\n'
          '<UniRef50 xmlns="http://uniprot.org/uniref" version="x">\n'
          '<entry id="UniRef50_P1">\n<name>Cluster: \xe9 \U0001F600</name>\n'
          '<property type="GO Cellular Component" value="GO:0005575"/>\n'
          '<representativeMember><dbReference type="UniProtKB ID" '
          'id="P1_MOUSE"><property type="NCBI taxonomy" value="10090"/>'
          '</dbReference>\n'
          '<sequence length="4">MK\n  VL</sequence></representativeMember>\n'
          '</entry>\n<entry id="UniRef50_P2">\n'
          '<representativeMember><dbReference type="UniProtKB ID" '
          'id="P2_MOUSE"></dbReference></representativeMember>\n</entry>\n'
          '</UniRef50>\n')


@pytest.mark.parametrize('declared, codec', [
    ('UTF-16', 'utf-16'),  # With a byte order mark.
    ('UTF-16', 'utf-16-be'),  # Without: told by '<?' in 2-byte characters.
    ('UTF-16LE', 'utf-16-le'),
    ('UTF-32', 'utf-32'),
    ('UTF-32BE', 'utf-32-be'),
])
@pytest.mark.parametrize('gz', [False, True])
def test_utf16_and_utf32_xml_is_read(tmp_path, monkeypatch, declared, codec,
                                     gz):
  # Such files used to give no entries at all: the byte searches look for
  # ASCII '<entry'.
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 7)  # Splits characters.
  data = _members_xml(declared).encode(codec)
  path = tmp_path / ('u.xml.gz' if gz else 'u.xml')
  path.write_bytes(gzip.compress(data) if gz else data)
  reader = uniref.UniRefReader(str(path))
  assert list(reader) == [
      uniref.UniRefEntry('UniRef50_P1', 'P1_MOUSE', 10090, 'MKVL',
                         ('GO:0005575',), 3),
      uniref.UniRefEntry('UniRef50_P2', 'P2_MOUSE', -1, None, (), 10)]
  assert reader.release['root'] == 'UniRef50'


def test_invalid_utf16_names_the_file(tmp_path):
  path = tmp_path / 'u.xml'
  path.write_bytes(_members_xml('UTF-16').encode('utf-16')
                   + '\n<'.encode('utf-16-le') + b'\x00\xd8a\x00')
  line = _members_xml('UTF-16').count('\n') + 2
  with pytest.raises(text_files.FileFormatError,
                     match=rf'u\.xml:{line}: not valid utf-16-le text'):
    list(uniref.UniRefReader(str(path)))


@pytest.mark.parametrize('declared, message', [
    ('UTF-16', r'u\.xml:1: the XML declaration says encoding="UTF-16", but '
     'the file does not start as such text does'),
    ('no-such-encoding', r'u\.xml:1: the XML declaration\'s '
     'encoding="no-such-encoding" cannot be read \\(unknown encoding'),
    ('Shift_JIS', r'u\.xml:1: the XML declaration\'s encoding="Shift_JIS" '
     'cannot be read \\(multi-byte'),
])
def test_encodings_that_cannot_be_read(tmp_path, declared, message):
  # An unknown encoding was a bare LookupError.
  path = tmp_path / 'u.xml'
  path.write_bytes(_members_xml(declared).encode('ascii', 'replace'))
  with pytest.raises(text_files.FileFormatError, match=message):
    list(uniref.UniRefReader(str(path)))


@pytest.mark.parametrize('mixed', [False, True])
def test_namespace_prefixed_entries_are_refused(tmp_path, monkeypatch, mixed):
  # They used to be passed over: an empty dataset, exit 0.
  monkeypatch.setattr(text_files, '_BLOCK_BYTES', 64)
  text = re.sub(r'<(/?)(entry|representativeMember|dbReference|property|'
                r'sequence|name|UniRef50)\b', r'<\1u:\2',
                _members_xml('UTF-8')).replace('xmlns=', 'xmlns:u=')
  if mixed:  # An unprefixed entry after them.
    head, _, tail = text.rpartition('</u:entry>')
    text = head.replace('<u:entry id="UniRef50_P2">', '<entry id="P2">'
                        ) + '</entry>' + tail
  path = tmp_path / 'u.xml'
  path.write_text(text)
  with pytest.raises(text_files.FileFormatError,
                     match=r"u\.xml:3: entries are named with the namespace "
                     r"prefix 'u' \(<u:entry>\)"):
    list(uniref.UniRefReader(str(path)))


def test_two_sequences_are_an_error(tmp_path):
  # They used to be concatenated into one protein.
  text = _members_xml('UTF-8').replace(
      '</representativeMember>\n</entry>\n<entry id="UniRef50_P2">',
      '</representativeMember>\n<sequence>WW</sequence></entry>\n'
      '<entry id="UniRef50_P2">')
  path = tmp_path / 'u.xml'
  path.write_text(text)
  with pytest.raises(text_files.FileFormatError,
                     match=r"u\.xml:9: entry UniRef50_P1: a second <sequence> "
                     "outside the members; expected one, the representative's"):
    list(uniref.UniRefReader(str(path)))
  path.write_text(_members_xml('UTF-8').replace(
      '</sequence></representativeMember>',
      '</sequence></representativeMember>\n<representativeMember>'
      '<sequence>WW</sequence></representativeMember>', 1))
  with pytest.raises(text_files.FileFormatError,
                     match=r"u\.xml:9: entry UniRef50_P1: a second <sequence>"):
    list(uniref.UniRefReader(str(path)))


@pytest.mark.parametrize('value, taxonomy_id', [
    ('2147483647', 2**31 - 1), ('9606x', -1), ('\xb2', -1), ('-5', -1)])
def test_taxonomy_ids(tmp_path, value, taxonomy_id):
  path = tmp_path / 'u.xml'
  path.write_text(_members_xml('UTF-8').replace('10090', value))
  assert next(iter(uniref.UniRefReader(str(path)))).taxonomy_id == taxonomy_id


@pytest.mark.parametrize('value', ['2147483648', '9' * 5000])
def test_taxonomy_id_over_int32_is_an_error(tmp_path, value):
  # It was an OverflowError when the block was staged.
  path = tmp_path / 'u.xml'
  path.write_text(_members_xml('UTF-8').replace('10090', value))
  with pytest.raises(text_files.FileFormatError,
                     match=r'u\.xml:6: entry UniRef50_P1: NCBI taxonomy ID '
                     r'\d+ is over 2,147,483,647; expected a taxonomy ID the '
                     r'dataset can store \(int32\)'):
    list(uniref.UniRefReader(str(path)))
