"""Property tests for the builder's input readers: OBO and annotation tables.

Arbitrary bytes, and mutations of valid files, give either the right result
or the reader's own error (a ValueError naming the file): never another
exception, a hang or unbounded memory. Inputs stay small, so each example
takes milliseconds.
"""

import gzip
import os
import tempfile

import hypothesis
from hypothesis import strategies as st

from experiments import synthetic
from proteinbert.data import annotation_table
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import text_files
from proteinbert.data import uniref
from tests import synthetic_release
from tests import test_annotation_table

SETTINGS = hypothesis.settings(max_examples=100, deadline=None)
_DIRECTORY = tempfile.mkdtemp(prefix='reader_properties_builder.')


def _write(name: str, data: bytes) -> str:
  path = os.path.join(_DIRECTORY, name)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _valid_obo() -> bytes:
  path = os.path.join(_DIRECTORY, 'valid.obo')
  synthetic.write_obo(path, synthetic_release.TERMS)
  with open(path, 'rb') as f:
    return f.read()


VALID_OBO = _valid_obo()
VALID_TSV = test_annotation_table.TSV.encode()
VALID_GAF = test_annotation_table.GAF.encode()


@st.composite
def _mutated(draw, valid: bytes) -> bytes:
  """`valid` with a few edits: bytes cut, inserted, replaced, lines moved."""
  data = bytearray(valid)
  for _ in range(draw(st.integers(1, 4))):
    at = draw(st.integers(0, len(data)))
    edit = draw(st.sampled_from(['cut', 'insert', 'replace', 'line']))
    if edit == 'cut':
      del data[at:at + draw(st.integers(1, 40))]
    elif edit == 'insert':
      data[at:at] = draw(st.binary(min_size=1, max_size=20) | st.sampled_from(
          [b'\n', b'\t', b'\r', b'\0', b'\xff', b':', b'[Term]\n', b'!',
           b'GO:', b'is_a: GO:0003674\n', b'NOT|', b',', b'\xe9']))
    elif edit == 'replace' and at < len(data):
      data[at] = draw(st.integers(0, 255))
    else:
      lines = bytes(data).split(b'\n')
      line = lines.pop(draw(st.integers(0, len(lines) - 1)))
      lines.insert(draw(st.integers(0, len(lines))), line)
      data = bytearray(b'\n'.join(lines))
  return bytes(data)


def _maybe_gzip(draw, data: bytes) -> bytes:
  return gzip.compress(data) if draw(st.booleans()) else data


def _load_obo(data: bytes):
  """The ontology, or None after an OboError that names the file."""
  path = _write('go.obo', data)
  try:
    return ontology_lib.Ontology.from_obo(path)
  except ontology_lib.OboError as e:
    assert path in str(e), e
    return None


def _check_ontology(ontology) -> None:
  """Its closure is the transitive closure of `is_a`, itself included."""
  for i, term in enumerate(ontology.terms):
    expected, todo = {i}, [i]
    while todo:
      for parent in ontology.terms[todo.pop()].parents:
        j = ontology.index[parent]
        if j not in expected:
          expected.add(j)
          todo.append(j)
    assert set(ontology.ancestors(i)) == expected, term.id
    assert ontology.resolve(term.id)[0] in (
        ontology_lib.Resolution.PRIMARY, ontology_lib.Resolution.REPLACED,
        ontology_lib.Resolution.OBSOLETE)


@SETTINGS
@hypothesis.given(st.binary(max_size=2000))
def test_obo_arbitrary_bytes(data):
  ontology = _load_obo(data)
  if ontology is not None:
    _check_ontology(ontology)


@SETTINGS
@hypothesis.given(_mutated(VALID_OBO))
def test_obo_mutations(data):
  ontology = _load_obo(data)
  if ontology is not None:
    _check_ontology(ontology)


_IDS = [f'GO:{i:07d}' for i in range(6)]


@st.composite
def _stanzas(draw) -> bytes:
  """OBO text of random stanzas over a few IDs: valid or not."""
  lines = []
  for _ in range(draw(st.integers(0, 8))):
    lines.append(draw(st.sampled_from(['[Term]', '[Typedef]', '[Instance]'])))
    for _ in range(draw(st.integers(0, 5))):
      tag = draw(st.sampled_from(['id', 'name', 'namespace', 'is_a', 'alt_id',
                                  'replaced_by', 'is_obsolete', 'def',
                                  'relationship']))
      if tag in ('id', 'is_a', 'alt_id', 'replaced_by'):
        value = draw(st.sampled_from(_IDS))
      elif tag == 'is_obsolete':
        value = draw(st.sampled_from(['true', 'false']))
      elif tag == 'relationship':
        value = 'part_of ' + draw(st.sampled_from(_IDS))
      else:
        value = draw(st.text(max_size=10).filter(lambda t: '\n' not in t))
      lines.append(f'{tag}: {value}')
    lines.append('')
  return '\n'.join(lines).encode('utf-8', 'surrogatepass')


@SETTINGS
@hypothesis.given(_stanzas())
def test_obo_random_stanzas(data):
  ontology = _load_obo(data)
  if ontology is not None:
    _check_ontology(ontology)


def _load_table(data: bytes):
  """The table, or None after a reader error that names the file."""
  path = _write('table', data)
  try:
    return annotation_table.AnnotationTable(path)
  except (annotation_table.AnnotationTableError,
          text_files.FileFormatError) as e:
    assert path in str(e), e
    return None


def _check_table(table) -> None:
  counts = table.counts()
  assert counts['references'] >= 0 and counts['proteins'] >= 0
  assert table.format in ('tsv', 'gaf')


@SETTINGS
@hypothesis.given(st.data())
def test_table_arbitrary_bytes(data):
  raw = data.draw(st.binary(max_size=2000))
  table = _load_table(_maybe_gzip(data.draw, raw))
  if table is not None:
    _check_table(table)


@SETTINGS
@hypothesis.given(st.data())
def test_table_mutations(data):
  valid = data.draw(st.sampled_from([VALID_TSV, VALID_GAF]))
  mutated = data.draw(_mutated(valid))
  table = _load_table(_maybe_gzip(data.draw, mutated))
  if table is not None:
    _check_table(table)


@SETTINGS
@hypothesis.given(st.data())
def test_truncated_gzip_table(data):
  whole = gzip.compress(data.draw(_mutated(VALID_GAF)))
  cut = data.draw(st.integers(0, len(whole) - 1))
  table = _load_table(whole[:cut])
  if table is not None:  # Cut within the magic bytes: plain text.
    _check_table(table)


_ACCESSIONS = st.text('ABCPQ0123456789_-.', min_size=1, max_size=8)
_GO_IDS = st.lists(st.sampled_from(_IDS), max_size=4)


@SETTINGS
@hypothesis.given(st.lists(st.tuples(_ACCESSIONS, _GO_IDS), max_size=12),
                  st.booleans(), st.booleans())
def test_valid_tables_read_right(rows, gaf, gz):
  if gaf:
    text = '!gaf-version: 2.2\n' + ''.join(
        test_annotation_table.gaf_row(a, g) + '\n'
        for a, go_ids in rows for g in go_ids)
  else:
    text = 'accession\tgo_ids\n' + ''.join(
        f'{a}\t{",".join(go_ids)}\n' for a, go_ids in rows)
  data = text.encode()
  table = _load_table(gzip.compress(data) if gz else data)
  assert table is not None
  expected = {}
  for accession, go_ids in rows:
    expected.setdefault(accession, []).extend(go_ids)
  for accession, go_ids in expected.items():
    assert table.take(accession) == tuple(dict.fromkeys(go_ids))
  assert table.counts()['references'] == sum(map(len, expected.values()))


_NAMES = st.text(st.characters(blacklist_categories=('Cs',),
                               blacklist_characters='\n\r\0'), max_size=12)


@SETTINGS
@hypothesis.given(st.lists(_NAMES, min_size=1, max_size=4))
def test_obo_names_read_back(names):
  # A form feed or another line break of `str.splitlines` in a name used to
  # split its line: an error naming a line past the file's end.
  terms = [ontology_lib.Term(f'GO:{i:07d}', name)
           for i, name in enumerate(names)]
  synthetic.write_obo(os.path.join(_DIRECTORY, 'go.obo'), terms)
  with open(os.path.join(_DIRECTORY, 'go.obo'), 'rb') as f:
    ontology = _load_obo(f.read())
  assert ontology is not None
  assert [t.name for t in ontology.terms] == [n.strip() for n in names]


_ACCESSION_BYTES = st.binary(min_size=1, max_size=6).filter(
    lambda b: not set(b) & set(b'\t\n\r,'))


@SETTINGS
@hypothesis.given(st.lists(_ACCESSION_BYTES, min_size=1, max_size=6,
                           unique=True))
def test_table_accessions_never_merge(accessions):
  # Non-UTF-8 accessions were decoded with U+FFFD, so b'P\xff' and b'P\xfe'
  # became one protein.
  data = b'accession\tgo_ids\n' + b''.join(
      a + b'\tGO:%07d\n' % i for i, a in enumerate(accessions))
  table = _load_table(data)
  stripped = {a.strip() for a in accessions}
  if table is None:  # An accession that is empty or not UTF-8.
    assert any(not a or not _is_utf8(a) for a in stripped)
    return
  assert table.counts()['proteins'] == len(stripped)
  for accession in stripped:
    assert table.take(accession.decode('utf-8'))


def _is_utf8(data: bytes) -> bool:
  try:
    data.decode('utf-8')
  except UnicodeDecodeError:
    return False
  return True


def _valid_xml() -> bytes:
  path = os.path.join(_DIRECTORY, 'valid.xml')
  synthetic.write_uniref_xml(path, [
      synthetic_release.entry('P1', ['GO:0005524']),
      synthetic_release.entry('P2', sequence=None, taxonomy_id=-1)])
  with open(path, 'rb') as f:
    return f.read()


VALID_XML = _valid_xml()


@SETTINGS
@hypothesis.given(st.data())
def test_uniref_xml_mutations(data):
  # Not asked for by name, but the builder's first reader: unknown
  # encodings, wide encodings and digits outside ASCII were raw exceptions.
  xml = data.draw(_mutated(VALID_XML))
  if data.draw(st.booleans()):
    xml = xml.decode('utf-8', 'replace').encode(
        data.draw(st.sampled_from(['utf-16', 'utf-16-le', 'utf-32'])))
  path = _write('u.xml', _maybe_gzip(data.draw, xml))
  try:
    entries = list(uniref.UniRefReader(path))
  except text_files.FileFormatError as e:
    assert path in str(e), e
    return
  for entry in entries:
    assert -1 <= entry.taxonomy_id <= uniref.MAX_TAXONOMY_ID
