"""Tests for proteinbert/data/build.py."""

import fcntl
import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from experiments import synthetic
from proteinbert import config as config_lib
from proteinbert.data import annotation_table
from proteinbert.data import build
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import loader as loader_lib
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import text_files
from proteinbert.data import uniref
from proteinbert.data.builder import order as order_lib
from proteinbert.data.builder import scratch
from proteinbert.data.builder import unique_ids
from tests import synthetic_release
from tests import test_annotation_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

entry = synthetic_release.entry
ATP_CLOSURE = ['GO:0003674', 'GO:0005488', 'GO:0005524', 'GO:0016301']
ENTRIES = (
    # A Swiss-Prot representative, whose name is not its accession.
    entry('Q8WZ42', ['GO:0005524'], protein_id='TITIN_HUMAN'),
    entry('A0A001', ['GO:0000099', 'GO:0007165']),  # Alt ID of ATP binding.
    entry('A0A002', ['GO:0000013']),  # Obsolete, replaced by kinase.
    entry('A0A003', ['GO:0000014', 'GO:1234567']),  # Obsolete; unknown.
    entry('UPI0000000005', ['GO:0003674'], protein_id='UPI0000000005'),
    entry('A0A006'),
    entry('A0A007', sequence=None),
)


def _build(tmp_path, entries=ENTRIES, name='out.h5', release='UniRef90',
           fasta=False, **kwargs):
  directory = tmp_path / 'release'
  directory.mkdir(exist_ok=True)
  paths = synthetic_release.write(str(directory), entries, fasta=fasta,
                                  release=release)
  output = str(tmp_path / name)
  kwargs.setdefault('min_annotation_count', 1)
  kwargs.setdefault('num_workers', 0)
  kwargs.setdefault('show_progress', False)
  if fasta:
    kwargs['fasta'] = paths['fasta']
  summary = build.build_dataset(paths['xml'], paths['obo'], output, **kwargs)
  return summary, output


def _annotations_by_protein(path):
  """Representative ID -> annotated GO IDs, for every protein of `path`."""
  with dataset_lib.open_dataset(path) as data:
    chunk = data.read(0, data.num_proteins)
    ids = data.protein_ids(0, data.num_proteins)
    offsets = chunk.annotation_offsets
    return {i: [str(data.annotation_ids[a]) for a in
                chunk.annotation_indices[offsets[k]:offsets[k + 1]]]
            for k, i in enumerate(ids)}


def test_propagates_and_resolves_go_ids(tmp_path):
  summary, output = _build(tmp_path)
  assert _annotations_by_protein(output) == {
      'TITIN_HUMAN': ATP_CLOSURE,
      'A0A001_HUMAN': sorted(ATP_CLOSURE + ['GO:0007165', 'GO:0008150']),
      'A0A002_HUMAN': ['GO:0003674', 'GO:0016301'],
      'A0A003_HUMAN': [],
      'UPI0000000005': ['GO:0003674'],
      'A0A006_HUMAN': [],
  }
  assert summary.entries == 7 and summary.proteins == 6
  assert summary.with_annotations == 4
  assert summary.dropped == {'no_sequence': 1}
  assert summary.go_references == {'primary': 3, 'alt_id': 1, 'replaced': 1,
                                   'obsolete': 1, 'unknown': 1}
  assert summary.unknown_go_ids == {'GO:1234567': 1}


def test_without_propagation(tmp_path):
  _, output = _build(tmp_path, propagate=False)
  annotations = _annotations_by_protein(output)
  assert annotations['A0A001_HUMAN'] == ['GO:0005524', 'GO:0007165']
  assert annotations['A0A002_HUMAN'] == ['GO:0016301']


def test_vocabulary_threshold_order_and_metadata(tmp_path):
  summary, output = _build(tmp_path, min_annotation_count=2)
  with dataset_lib.open_dataset(output) as data:
    vocabulary = data.vocabulary
    assert list(vocabulary.ids) == ATP_CLOSURE
    assert list(vocabulary.names) == ['molecular_function', 'binding',
                                      'ATP binding', 'kinase activity']
    assert list(vocabulary.namespaces) == ['molecular_function'] * 4
    np.testing.assert_array_equal(vocabulary.counts, [4, 2, 2, 3])
    assert data.metadata['settings']['min_annotation_count'] == 2
    assert data.metadata['summary']['proteins'] == 6
    assert data.metadata['uniref_release']['version'] == '2026_01'
    assert data.metadata['ontology_header']['data-version'] == 'synthetic'
  assert summary.vocabulary_size == 4
  summary, output = _build(tmp_path, min_annotation_count=3, name='o3.h5')
  with dataset_lib.open_dataset(output) as data:
    assert list(data.annotation_ids) == ['GO:0003674', 'GO:0016301']


def test_vocabulary_order_when_the_obo_is_not_sorted(tmp_path):
  terms = list(synthetic_release.TERMS)
  terms[1], terms[3] = terms[3], terms[1]
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), ENTRIES, terms=terms)
  output = str(tmp_path / 'out.h5')
  build.build_dataset(paths['xml'], paths['obo'], output,
                      min_annotation_count=1, num_workers=0,
                      show_progress=False)
  assert _annotations_by_protein(output)['TITIN_HUMAN'] == ATP_CLOSURE


def _write_ids(tmp_path, lines):
  path = tmp_path / 'test_ids.txt'
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def test_test_set_from_ids(tmp_path):
  # A cluster ID, an accession, a representative's name, an unknown ID.
  ids = _write_ids(tmp_path, ['# held out', 'UniRef90_A0A001', 'A0A002', '',
                              'TITIN_HUMAN', 'NOT_THERE'])
  summary, output = _build(tmp_path, test_ids=ids)
  with dataset_lib.open_dataset(output) as data:
    names = data.protein_ids(0, data.num_proteins)
    test = {n for n, t in zip(names, data.is_test) if t}
  assert test == {'A0A001_HUMAN', 'A0A002_HUMAN', 'TITIN_HUMAN'}
  assert summary.test_proteins == 3 and summary.unmatched_test_ids == 1


@pytest.mark.parametrize('lines, message', [
    (['NOPE', 'NADA'], 'none of its 2 IDs names a protein'),
    (['A0A001 A0A002'], 'test_ids.txt:1: expected one protein ID per line'),
    # An empty file used to give no test set without a word.
    ([], r'test_ids.txt: no protein IDs \(the file is empty'),
    (['# none yet', ''], r'test_ids.txt: no protein IDs'),
])
def test_bad_test_ids(tmp_path, lines, message):
  with pytest.raises(ValueError, match=message):
    _build(tmp_path, test_ids=_write_ids(tmp_path, lines))
  assert not os.path.exists(tmp_path / 'out.h5')


def test_non_utf8_test_ids_name_the_line(tmp_path):
  # A UnicodeDecodeError before.
  path = tmp_path / 'test_ids.txt'
  path.write_bytes(b'UniRef90_A0A001\nA0A0\xff2\n')
  with pytest.raises(ValueError, match='test_ids.txt:2: not UTF-8 text'):
    _build(tmp_path, test_ids=str(path))


def _random_entries(n, seed=0):
  rng = np.random.default_rng(seed)
  return list(synthetic.random_entries(rng, synthetic_release.TERMS, n))


def test_test_fraction_is_seeded(tmp_path):
  entries = _random_entries(2000)
  first, a = _build(tmp_path, entries, 'a.h5', test_fraction=0.1, seed=3)
  _, b = _build(tmp_path, entries, 'b.h5', test_fraction=0.1, seed=3)
  _, c = _build(tmp_path, entries, 'c.h5', test_fraction=0.1, seed=4)
  assert 150 < first.test_proteins < 250
  opened = [dataset_lib.open_dataset(p) for p in (a, b, c)]
  np.testing.assert_array_equal(opened[0].is_test, opened[1].is_test)
  assert opened[0].protein_ids(0, 2000) == opened[1].protein_ids(0, 2000)
  assert opened[0].protein_ids(0, 2000) != opened[2].protein_ids(0, 2000)
  for data in opened:
    data.close()


def test_shuffle_buckets_and_workers(tmp_path, monkeypatch):
  entries = _random_entries(300)
  _, whole = _build(tmp_path, entries, 'whole.h5')
  # Staged in 30 key ranges, buckets of several.
  _, bucketed = _build(tmp_path, entries, 'bucketed.h5', bucket_size=40,
                       num_workers=2)
  _, parallel = _build(tmp_path, entries, 'parallel.h5', num_workers=2)
  # Two key ranges, each too big for a bucket and split again.
  monkeypatch.setattr(order_lib, 'MAX_RANGES', 2)
  _, resplit = _build(tmp_path, entries, 'resplit.h5', bucket_size=40)
  paths = {'whole': whole, 'bucketed': bucketed, 'parallel': parallel,
           'resplit': resplit}
  order = {}
  for name, path in paths.items():
    with dataset_lib.open_dataset(path) as data:
      order[name] = data.protein_ids(0, data.num_proteins)
  assert sorted(order['whole']) == sorted(e.protein_id for e in entries)
  assert order['whole'] != [e.protein_id for e in entries]
  # The order is a function of the seed and the release alone.
  for name in paths:
    assert order[name] == order['whole'], name
    assert (_annotations_by_protein(paths[name]) ==
            _annotations_by_protein(whole)), name
  assert not [n for n in os.listdir(tmp_path) if n.startswith('.build')]


def test_original_layout_output(tmp_path):
  _, ours = _build(tmp_path, test_fraction=0.5)
  _, dense = _build(tmp_path, name='dense.h5', layout='original',
                    test_fraction=0.5)
  with dataset_lib.open_dataset(ours) as a, dataset_lib.open_dataset(
      dense) as b:
    assert isinstance(b, dataset_lib.OriginalDataset)
    assert list(a.annotation_ids) == list(b.annotation_ids)
    assert a.protein_ids(0, 6) == b.protein_ids(0, 6)
    x, y = a.read(0, 6), b.read(0, 6)
    assert x.seqs == y.seqs
    np.testing.assert_array_equal(x.annotation_indices, y.annotation_indices)
    np.testing.assert_array_equal(x.is_test, y.is_test)


def test_fasta_supplies_missing_sequences(tmp_path):
  entries = ENTRIES[:-1] + (entry('A0A007', ['GO:0016301'], sequence='MKKW'),)
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), entries, fasta=True)
  without = synthetic_release.write(str(directory), ENTRIES)  # Same names.
  summary = build.build_dataset(
      without['xml'], paths['obo'], str(tmp_path / 'out.h5'),
      fasta=paths['fasta'], min_annotation_count=1, num_workers=2,
      show_progress=False)
  assert summary.proteins == 7 and not summary.dropped
  with dataset_lib.open_dataset(str(tmp_path / 'out.h5')) as data:
    seqs = dict(zip(data.protein_ids(0, 7), data.read(0, 7).seqs))
  assert seqs['A0A007_HUMAN'] == b'MKKW'


def test_compat_mode_reproduces_the_original(tmp_path):
  summary, output = _build(tmp_path, compat='original',
                           test_fraction=0.4)
  # The original's sqlite rows are the XML entries, shuffled by pandas'
  # sample(frac=1, random_state=0); its FASTA join then loses TITIN_HUMAN
  # (no 'UniRef90_TITIN') and the entry without a sequence.
  kept = [i for i in np.random.RandomState(0).permutation(7) if i not in (0, 6)]
  with dataset_lib.open_dataset(output) as data:
    assert data.protein_ids(0, 5) == [ENTRIES[i].protein_id for i in kept]
    np.testing.assert_array_equal(
        data.is_test,
        np.random.RandomState(0).choice([True, False], 5, p=[0.4, 0.6]))
  # Direct annotations only, by primary ID (the alt ID GO:0000099 is
  # unknown; obsolete terms stay), the term at index 0 dropped, and counts
  # over all entries (TITIN_HUMAN's ATP binding counts).
  assert _annotations_by_protein(output) == {
      'A0A001_HUMAN': ['GO:0007165'],
      'A0A002_HUMAN': ['GO:0000013'],
      'A0A003_HUMAN': ['GO:0000014'],
      'UPI0000000005': [],
      'A0A006_HUMAN': [],
  }
  with dataset_lib.open_dataset(output) as data:
    assert list(data.annotation_ids) == ['GO:0000013', 'GO:0000014',
                                         'GO:0005524', 'GO:0007165']
  assert summary.dropped == {'compat_id_join': 1, 'no_sequence': 1}
  assert summary.go_references == {'primary': 4, 'unknown': 2, 'index_0': 1}


def test_compat_order_survives_bucketing_and_workers(tmp_path):
  entries = _random_entries(200)
  _, whole = _build(tmp_path, entries, 'a.h5', compat='original')
  _, bucketed = _build(tmp_path, entries, 'b.h5', compat='original',
                       bucket_size=30, num_workers=2)
  with dataset_lib.open_dataset(whole) as a, dataset_lib.open_dataset(
      bucketed) as b:
    assert a.protein_ids(0, a.num_proteins) == b.protein_ids(0, b.num_proteins)
    swiss_prot = sum(not e.protein_id.startswith(('A0A', 'UPI'))
                     for e in entries)
    assert a.num_proteins == 200 - swiss_prot


def test_uniref50(tmp_path):
  entries = [entry(f'A0A00{i}', ['GO:0005524'], prefix='UniRef50_')
             for i in range(3)]
  summary, _ = _build(tmp_path, entries, release='UniRef50')
  assert summary.proteins == 3
  # As the original, nothing joins; an empty dataset is an error.
  with pytest.raises(ValueError, match=r'none of its 3 entries was kept '
                     r'\(dropped: compat_id_join: 3\); most likely '
                     'compatibility mode'):
    _build(tmp_path, entries, 'compat.h5', release='UniRef50',
           compat='original')
  assert not os.path.exists(tmp_path / 'compat.h5')


def test_bad_inputs_leave_no_output(tmp_path):
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), ENTRIES)
  with open(paths['xml'], 'rb') as f:
    whole = f.read()
  cut = str(directory / 'cut.xml.gz')
  with open(cut, 'wb') as f:
    f.write(whole[:len(whole) * 2 // 3])
  output = tmp_path / 'out' / 'dataset.h5'
  output.parent.mkdir()
  with pytest.raises(text_files.FileFormatError, match='truncated'):
    build.build_dataset(cut, paths['obo'], str(output), num_workers=0,
                        show_progress=False)
  bad_obo = directory / 'bad.obo'
  bad_obo.write_text('[Term]\nid: GO:1\nis_a: GO:2\n')
  with pytest.raises(ontology_lib.OboError, match='dangling'):
    build.build_dataset(paths['xml'], str(bad_obo), str(output),
                        show_progress=False)
  assert not os.listdir(output.parent)


@pytest.mark.parametrize('gz', [False, True])
def test_utf16_release_builds_the_same_dataset(tmp_path, gz):
  # It built an empty dataset: the byte searches found no '<entry'.
  _, plain = _build(tmp_path, name='utf8.h5')
  with gzip.open(tmp_path / 'release' / 'uniref.xml.gz', 'rb') as f:
    text = f.read().decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
  path = tmp_path / ('utf16.xml.gz' if gz else 'utf16.xml')
  data = text.encode('utf-16')
  path.write_bytes(gzip.compress(data) if gz else data)
  output = tmp_path / 'utf16.h5'
  build.build_dataset(str(path), str(tmp_path / 'release' / 'go.obo'),
                      str(output), min_annotation_count=1, num_workers=0,
                      show_progress=False)
  assert _annotations_by_protein(str(output)) == _annotations_by_protein(
      plain)


def test_empty_vocabulary_is_an_error(tmp_path):
  # It was an empty vocabulary, exit 0; pretraining then failed.
  directory = tmp_path / 'release'
  directory.mkdir()
  other = [t._replace(id=t.id.replace('GO:', 'XO:'), alt_ids=(),
                      replaced_by=(), parents=tuple(
                          p.replace('GO:', 'XO:') for p in t.parents))
           for t in synthetic_release.TERMS]
  paths = synthetic_release.write(str(directory), ENTRIES, terms=other)
  output = tmp_path / 'out.h5'
  with pytest.raises(ValueError, match=(
      r'Empty GO vocabulary: none of the 7 GO references names a term of '
      r'.*go\.obo \(commonest: .*\); expected the ontology the annotations '
      'use')):
    build.build_dataset(paths['xml'], paths['obo'], str(output),
                        num_workers=0, show_progress=False)
  with pytest.raises(ValueError, match=(
      r'no term is carried by min_annotation_count=5 proteins \(the most: '
      r'4\); lower the threshold')):
    _build(tmp_path, min_annotation_count=5)
  with pytest.raises(ValueError, match=(
      'the annotation table names none of the FASTA\'s IDs')):
    _fasta_build(tmp_path, table=_tsv([('Q99999', 'GO:0005524', '')]))
  with pytest.raises(ValueError, match='uniref.xml.gz holds no GO annotation'):
    _build(tmp_path, [entry('A0A001')])
  assert not os.path.exists(output)


def test_no_proteins_is_an_error(tmp_path):
  with pytest.raises(ValueError, match=(
      r'uniref\.xml\.gz: none of its 2 entries was kept \(dropped: '
      r'no_sequence: 2\); most likely the entries carry no sequence: give '
      "the release's FASTA")):
    _build(tmp_path, [entry('A0A001', ['GO:0005524'], sequence=None),
                      entry('A0A002', sequence=None)])
  with pytest.raises(ValueError, match=(
      r"proteins.fasta: no entries read; expected FASTA: '>ID description' "
      'header lines')):
    _fasta_build(tmp_path, fasta='')
  assert not os.path.exists(tmp_path / 'out.h5')


@pytest.mark.parametrize('workers', [0, 2])
def test_repeated_xml_entry_id_is_an_error(tmp_path, monkeypatch, workers):
  # Both entries were kept. Many parts, so the repeat's part is one of many.
  monkeypatch.setattr(unique_ids, '_IDS_PER_PART', 2)
  entries = _random_entries(40)
  repeated = entries + [entries[7]._replace(sequence='WWW')]
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), repeated, gz=False)
  with open(paths['xml']) as f:
    lines = [i for i, text in enumerate(f, 1) if text.startswith('<entry ')]
  with pytest.raises(text_files.FileFormatError, match=(
      rf"uniref\.xml:{lines[-1]}: entry ID '{entries[7].entry_id}' again "
      rf'\(first at line {lines[7]}\)')):
    build.build_dataset(paths['xml'], paths['obo'], str(tmp_path / 'o.h5'),
                        min_annotation_count=1, num_workers=workers,
                        show_progress=False)
  assert os.listdir(tmp_path) == ['release']  # No output, no scratch.


def test_taxonomy_id_over_int32_is_an_error(tmp_path):
  # An OverflowError before, with workers and without.
  big = ENTRIES[:2] + (entry('A0A003', taxonomy_id=2**31),)
  for workers in (0, 2):
    with pytest.raises(text_files.FileFormatError, match=(
        r'uniref\.xml\.gz:\d+: entry UniRef90_A0A003: NCBI taxonomy ID '
        r'2147483648 is over 2,147,483,647')):
      _build(tmp_path, big, num_workers=workers)
  with pytest.raises(text_files.FileFormatError, match=(
      r"proteins.fasta:4: the header's OX= taxonomy ID is over "
      '2,147,483,647')):
    _fasta_build(tmp_path, fasta=FASTA.replace('OX=10090', 'OX=' + '9' * 30))
  assert not os.path.exists(tmp_path / 'out.h5')


def test_refuses_to_overwrite(tmp_path):
  _build(tmp_path)
  with pytest.raises(FileExistsError, match='out.h5 exists'):
    _build(tmp_path)
  summary, _ = _build(tmp_path, overwrite=True)
  assert summary.proteins == 6


def test_bad_settings(tmp_path):
  with pytest.raises(ValueError, match='does not propagate'):
    _build(tmp_path, compat='original', propagate=True)
  with pytest.raises(ValueError, match='Unknown compat mode'):
    _build(tmp_path, compat='v2')
  with pytest.raises(ValueError, match='Unknown layout'):
    _build(tmp_path, layout='dense')
  with pytest.raises(ValueError, match='test_fraction 2 is not in'):
    _build(tmp_path, test_fraction=2)
  with pytest.raises(ValueError, match='seed -1 is not in'):
    _build(tmp_path, seed=-1)


@pytest.mark.parametrize('setting, message', [
    (dict(bucket_size=0), 'bucket_size=0; expected at least 1'),
    (dict(bucket_size=-3), 'bucket_size=-3; expected at least 1'),
    (dict(num_workers=-1), 'num_workers=-1; expected at least 0'),
    (dict(min_annotation_count=-1),
     'min_annotation_count=-1; expected at least 0'),
    (dict(output='missing/out.h5'),
     'output: the directory .*missing does not exist'),
    (dict(scratch_dir='missing'),
     'scratch_dir: the directory missing does not exist'),
])
def test_settings_are_checked_before_the_inputs_are_read(
    tmp_path, monkeypatch, setting, message):
  # bucket_size 0 was a ZeroDivisionError, a missing output directory an
  # error about a scratch path.
  monkeypatch.chdir(tmp_path)
  setting = dict(setting)
  with pytest.raises(ValueError, match=message):
    build.build_dataset('missing.xml', 'missing.obo',
                        setting.pop('output', 'out.h5'), show_progress=False,
                        **setting)


def test_bad_ontology_fails_before_the_release_is_read(tmp_path):
  # A NUL in a term's name failed only when the vocabulary was written.
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), ENTRIES)
  with open(paths['obo']) as f:
    text = f.read()
  with open(paths['obo'], 'w') as f:
    f.write(text.replace('name: binding', 'name: bind\0ing'))
  line = text[:text.index('name: binding')].count('\n') + 1
  truncated = directory / 'cut.xml'
  truncated.write_text('<UniRef90>\n<entry id="cut">')
  with pytest.raises(ontology_lib.OboError,
                     match=rf'go\.obo:{line}: a NUL character'):
    build.build_dataset(str(truncated), paths['obo'], str(tmp_path / 'o.h5'),
                        num_workers=0, show_progress=False)


def test_gzip_and_plain_xml_agree(tmp_path):
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), ENTRIES)
  plain = str(directory / 'plain.xml')
  with gzip.open(paths['xml']) as f, open(plain, 'wb') as g:
    g.write(f.read())
  outputs = []
  for xml in (paths['xml'], plain):
    outputs.append(str(tmp_path / (os.path.basename(xml) + '.h5')))
    build.build_dataset(xml, paths['obo'], outputs[-1], min_annotation_count=1,
                        num_workers=0, show_progress=False)
  assert _annotations_by_protein(outputs[0]) == _annotations_by_protein(
      outputs[1])


@pytest.mark.skipif(
    not os.environ.get('PROTEINBERT_ORIGINAL_PYTHON'),
    reason='Set PROTEINBERT_ORIGINAL_PYTHON to a Python with protein-bert '
    '1.0.1 (--no-deps), pandas, lxml, pyfaidx and h5py.')
def test_compat_mode_matches_the_original_package(tmp_path):
  # Imported here, where needed: it defines absl flags.
  # pylint: disable-next=g-import-not-at-top
  from experiments import benchmark_build_dataset
  python = os.environ['PROTEINBERT_ORIGINAL_PYTHON']
  rng = np.random.default_rng(5)
  terms = synthetic.random_ontology(rng, 300)
  entries = list(synthetic.random_entries(rng, terms, 600,
                                          annotated_fraction=0.8))
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), entries, terms=terms,
                                  fasta=True)
  original = str(tmp_path / 'original.h5')
  benchmark_build_dataset.run_original(python, paths['xml'], paths['obo'],
                                       paths['fasta'], original, 3)
  subprocess.run([os.path.join(os.path.dirname(python), 'set_h5_testset'),
                  '--h5-dataset-file', original, '--set-with-prob', '0.3',
                  '--silent'], check=True, capture_output=True)
  ours = str(tmp_path / 'ours.h5')
  build.build_dataset(paths['xml'], paths['obo'], ours, fasta=paths['fasta'],
                      compat='original', min_annotation_count=3,
                      test_fraction=0.3, layout='original', num_workers=0,
                      show_progress=False)
  with dataset_lib.open_dataset(original) as a, dataset_lib.open_dataset(
      ours) as b:
    assert a.num_proteins == b.num_proteins > 400
    assert list(a.annotation_ids) == list(b.annotation_ids)
    assert a.protein_ids(0, a.num_proteins) == b.protein_ids(0, b.num_proteins)
    x, y = a.read(0, a.num_proteins), b.read(0, b.num_proteins)
    assert x.seqs == y.seqs
    np.testing.assert_array_equal(x.annotation_offsets, y.annotation_offsets)
    np.testing.assert_array_equal(x.annotation_indices, y.annotation_indices)
    np.testing.assert_array_equal(x.is_test, y.is_test)


def test_scratch_parts_are_freed_as_they_are_read(tmp_path):
  staging = scratch.BlockFile(str(tmp_path / 'staging'), part_bytes=1)
  records = dataset_lib.Records.concatenate([])  # Empty.
  for i in range(3):
    staging.append(records, np.array([i]))
  assert len(os.listdir(tmp_path)) == 3
  drained = scratch.drain(staging.parts)
  assert next(drained)[1] == [0]
  assert len(os.listdir(tmp_path)) == 3  # The part being read stays.
  assert [keys[0] for _, keys in drained] == [1, 2]
  assert not os.listdir(tmp_path)


def test_empty_release(tmp_path):
  with pytest.raises(ValueError, match=r'uniref\.xml\.gz: no entries read; '
                     'expected UniRef XML'):
    _build(tmp_path, entries=())
  assert not os.path.exists(tmp_path / 'out.h5')


def test_timing_covers_the_whole_build(tmp_path):
  summary, output = _build(tmp_path)
  with dataset_lib.open_dataset(output) as data:
    recorded = data.metadata['summary']
  # The metadata is written before the file is closed and renamed.
  assert 0 < recorded['seconds'] <= summary.seconds
  assert 0 < recorded['cpu_seconds'] <= summary.cpu_seconds


# The FASTA route. Both UniProt header forms, a header without an entry
# name and a plain one.
FASTA = ('>sp|P00001|KINA_HUMAN Kinase A OS=Homo sapiens OX=9606 GN=KA\n'
         'MKVLA\nMKV\n'
         '>tr|A0A002|A0A002_MOUSE Uncharacterized OS=Mus musculus OX=10090\n'
         'MKKW\n'
         '>sp|P00003|\nMSSS\n'
         '>custom_7 an antibody\nEVQLV\n'
         '>P00005\nMAAA\n')
# (accession, GO ID, qualifier) rows of the annotation tables.
ROWS = (
    ('P00001', 'GO:0005524', 'enables'),
    ('P00001', 'GO:0007165', 'NOT|involved_in'),  # Left out.
    ('P00001', 'GO:0005524', 'enables'),  # Again, another evidence.
    ('A0A002', 'GO:0000099', 'enables'),  # Alt ID of ATP binding.
    ('A0A002', 'GO:0007165', 'involved_in'),
    ('P00003', 'GO:0000013', 'enables'),  # Obsolete, replaced by kinase.
    ('P00005', 'GO:0000014', 'enables'),  # Obsolete, no replacement.
    ('P00005', 'GO:1234567', 'enables'),  # Unknown.
    ('Q99999', 'GO:0005524', 'enables'),  # Not in the FASTA.
    ('Q99999', 'GO:0016301', 'enables'),
)
FASTA_ANNOTATIONS = {
    'KINA_HUMAN': ATP_CLOSURE,
    'A0A002_MOUSE': sorted(ATP_CLOSURE + ['GO:0007165', 'GO:0008150']),
    'P00003': ['GO:0003674', 'GO:0016301'],
    'custom_7': [],
    'P00005': [],
}


def _gaf(rows):
  return '!gaf-version: 2.2\n' + ''.join(
      test_annotation_table.gaf_row(a, g, q) + '\n' for a, g, q in rows)


def _tsv(rows):
  by_protein = {}
  for accession, go_id, qualifier in rows:
    if 'NOT' not in qualifier:
      by_protein.setdefault(accession, []).append(go_id)
  return 'accession\tgo_ids\n' + ''.join(
      f'{a}\t{",".join(g)}\n' for a, g in by_protein.items())


def _write_text(path, text, gz=False):
  path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
  return str(path)


def _fasta_build(tmp_path, fasta=FASTA, table=None, name='out.h5', gz=False,
                 **kwargs):
  """Builds from `fasta` and the annotation table text `table` (if any)."""
  directory = tmp_path / 'inputs'
  directory.mkdir(exist_ok=True)
  obo = str(directory / 'go.obo')
  synthetic.write_obo(obo, synthetic_release.TERMS)
  suffix = '.gz' if gz else ''
  if table is not None:
    kwargs['annotations'] = _write_text(
        directory / ('table' + suffix), table, gz)
    kwargs.setdefault('go_obo', obo)
  kwargs.setdefault('min_annotation_count', 1)
  kwargs.setdefault('num_workers', 0)
  kwargs.setdefault('show_progress', False)
  output = str(tmp_path / name)
  summary = build.build_dataset(
      None, kwargs.pop('go_obo', None), output,
      fasta=_write_text(directory / ('proteins.fasta' + suffix), fasta, gz),
      **kwargs)
  return summary, output


@pytest.mark.parametrize(
    'table, gz', [(_gaf(ROWS), False), (_gaf(ROWS), True), (_tsv(ROWS), False),
                  (_tsv(ROWS), True)], ids=['gaf', 'gaf.gz', 'tsv', 'tsv.gz'])
def test_fasta_route(tmp_path, table, gz):
  summary, output = _fasta_build(tmp_path, table=table, gz=gz)
  # Propagated to is_a ancestors; alt IDs and replaced terms resolved.
  assert _annotations_by_protein(output) == FASTA_ANNOTATIONS
  assert summary.entries == summary.proteins == 5
  assert summary.with_annotations == 3
  assert summary.go_references == {'primary': 2, 'alt_id': 1, 'replaced': 1,
                                   'obsolete': 1, 'unknown': 1}
  assert summary.unknown_go_ids == {'GO:1234567': 1}
  is_gaf = table.startswith('!')
  assert summary.annotation_table == {
      'rows': 10 if is_gaf else 5, 'not_rows': 1 if is_gaf else 0,
      'references': 9, 'proteins': 5, 'proteins_taken': 4,
      'references_taken': 7, 'proteins_absent': 1, 'references_absent': 2}
  with dataset_lib.open_dataset(output) as data:
    ids = data.protein_ids(0, 5)
    entries = dict(zip(ids, data.entry_ids(0, 5)))
    taxa = dict(zip(ids, data.taxonomy_ids(0, 5).tolist()))
    seqs = dict(zip(ids, data.read(0, 5).seqs))
    recorded = data.metadata
  assert entries == {'KINA_HUMAN': 'P00001', 'A0A002_MOUSE': 'A0A002',
                     'P00003': 'P00003', 'custom_7': 'custom_7',
                     'P00005': 'P00005'}
  assert taxa == {'KINA_HUMAN': 9606, 'A0A002_MOUSE': 10090, 'P00003': -1,
                  'custom_7': -1, 'P00005': -1}
  assert seqs['KINA_HUMAN'] == b'MKVLAMKV'
  assert recorded['annotation_table']['format'] == ('gaf' if is_gaf else 'tsv')
  assert recorded['summary']['annotation_table'] == summary.annotation_table
  assert recorded['inputs']['annotations']['name'] == 'table' + (
      '.gz' if gz else '')


def test_fasta_route_test_ids(tmp_path):
  # An accession, an entry name, a plain first word, an unknown ID.
  ids = _write_ids(tmp_path, ['P00001', 'A0A002_MOUSE', 'custom_7', 'NOPE'])
  summary, output = _fasta_build(tmp_path, table=_tsv(ROWS), test_ids=ids)
  with dataset_lib.open_dataset(output) as data:
    test = {n for n, t in zip(data.protein_ids(0, 5), data.is_test) if t}
  assert test == {'KINA_HUMAN', 'A0A002_MOUSE', 'custom_7'}
  assert summary.test_proteins == 3 and summary.unmatched_test_ids == 1
  with pytest.raises(ValueError, match='expected FASTA IDs'):
    _fasta_build(tmp_path, name='none.h5',
                 test_ids=_write_ids(tmp_path, ['NOPE']))


def test_sequence_only_build(tmp_path):
  summary, output = _fasta_build(tmp_path, test_fraction=0.5)
  assert summary.proteins == 5 and summary.vocabulary_size == 0
  assert summary.with_annotations == 0 and not summary.annotation_table
  with dataset_lib.open_dataset(output) as data:
    assert data.num_annotations == 0 and len(data.annotation_ids) == 0
    proteins = data.read(0, 5)
    np.testing.assert_array_equal(proteins.annotation_offsets, [0] * 6)
    assert len(proteins.annotation_indices) == 0
    # The pretraining loader reads it: zero-width annotation arrays.
    config = config_lib.get_data_config()
    config.episodes = ((16, 2),)
    batch = loader_lib.PretrainingLoader(data, config).next_batch()
  assert batch.annotations.shape == (2, 0)
  assert batch.tokens.shape == (2, 16)


def test_fasta_route_order(tmp_path, monkeypatch):
  entries = _random_entries(300)
  fasta = tmp_path / 'proteins.fasta'
  synthetic.write_fasta(str(fasta), entries)
  fasta = fasta.read_text()
  records = ['>' + r for r in fasta.split('>')[1:]]
  table = 'accession\tgo_ids\n' + ''.join(
      f'{e.entry_id}\t{",".join(e.go_ids)}\n' for e in entries if e.go_ids)
  _, whole = _fasta_build(tmp_path, fasta, table, 'whole.h5')
  _, bucketed = _fasta_build(tmp_path, fasta, table, 'bucketed.h5',
                             bucket_size=40, num_workers=2)
  # The order hashes IDs, not positions: the FASTA's order does not matter.
  _, reversed_ = _fasta_build(tmp_path, ''.join(reversed(records)), table,
                              'reversed.h5')
  monkeypatch.setattr(order_lib, 'MAX_RANGES', 2)  # Ranges split again.
  _, resplit = _fasta_build(tmp_path, fasta, table, 'resplit.h5',
                            bucket_size=40)
  _, reseeded = _fasta_build(tmp_path, fasta, table, 'reseeded.h5', seed=1)
  order = {}
  for path in (whole, bucketed, reversed_, resplit, reseeded):
    with dataset_lib.open_dataset(path) as data:
      order[path] = data.protein_ids(0, data.num_proteins)
  assert sorted(order[whole]) == sorted(e.entry_id for e in entries)
  assert order[whole] != [e.entry_id for e in entries]
  assert order[whole] == order[bucketed] == order[reversed_] == order[resplit]
  assert order[whole] != order[reseeded]
  assert _annotations_by_protein(whole) == _annotations_by_protein(bucketed)


@pytest.mark.parametrize('edit, error, message', [
    (dict(fasta=FASTA + '>tr|P00003|OTHER_HUMAN\nMKV\n'),
     text_files.FileFormatError,
     r"proteins.fasta(\.gz)?:12: duplicate ID 'P00003' \(first at line 6\)"),
    (dict(fasta=FASTA + '>\nMKV\n'), text_files.FileFormatError,
     r"proteins.fasta(\.gz)?:12: a '>' header without an ID"),
    (dict(table=_gaf(ROWS) + 'UniProtKB\tP00001\tKA\tenables\n'),
     annotation_table.AnnotationTableError,
     r'table(\.gz)?:12: expected 15-17 tab-separated GAF columns, found 4'),
    (dict(table=_gaf(ROWS) + test_annotation_table.gaf_row('P1', 'enables') +
          '\n'), annotation_table.AnnotationTableError,
     r"table(\.gz)?:12: column 5 \(GO ID\) holds 'enables'"),
    (dict(table=_tsv(ROWS).partition('\n')[2]),
     annotation_table.AnnotationTableError,
     r"table(\.gz)?:1: expected the header line 'accession<TAB>go_ids'"),
], ids=['duplicate_id', 'header_without_id', 'gaf_row_too_short',
        'gaf_not_a_go_id', 'tsv_without_header'])
@pytest.mark.parametrize('gz', [False, True])
def test_fasta_route_bad_inputs_leave_no_output(tmp_path, edit, error,
                                                message, gz):
  edit = dict(edit)
  edit.setdefault('table', _tsv(ROWS))
  output = tmp_path / 'out'
  output.mkdir()
  with pytest.raises(error, match=message):
    _fasta_build(output, name='dataset.h5', gz=gz, num_workers=2, **edit)
  assert os.listdir(output) == ['inputs']  # No output, no scratch.


def test_cli(tmp_path):
  directory = tmp_path / 'inputs'
  directory.mkdir()
  obo = str(directory / 'go.obo')
  synthetic.write_obo(obo, synthetic_release.TERMS)
  fasta = _write_text(directory / 'p.fasta.gz', FASTA, gz=True)
  gaf = _write_text(directory / 'a.gaf', _gaf(ROWS))
  output, summary_json = tmp_path / 'out.h5', tmp_path / 'summary.json'

  def run(*flags):
    return subprocess.run(
        [sys.executable, '-m', 'experiments.build_dataset', *flags],
        cwd=ROOT, capture_output=True, text=True, check=False)

  done = run(f'--fasta={fasta}', f'--annotations={gaf}', f'--go_obo={obo}',
             f'--output={output}', '--min_annotation_count=1',
             '--test_fraction=0.5', f'--summary_json={summary_json}')
  assert done.returncode == 0, done.stderr
  with open(summary_json) as f:
    summary = json.load(f)
  assert summary['proteins'] == 5 and summary['with_annotations'] == 3
  assert summary['annotation_table']['proteins_absent'] == 1
  assert _annotations_by_protein(str(output)) == FASTA_ANNOTATIONS
  refused = run(f'--fasta={fasta}', f'--annotations={gaf}',
                f'--output={tmp_path / "refused.h5"}')
  assert refused.returncode != 0
  assert 'annotations needs go_obo' in refused.stderr
  assert not os.path.exists(tmp_path / 'refused.h5')
  # Settings are refused as flags, before anything is read.
  refused = run(f'--fasta={fasta}', f'--output={tmp_path / "no" / "o.h5"}',
                '--bucket_size=0')
  assert refused.returncode != 0
  assert 'bucket_size=0; expected at least 1' in refused.stderr


def test_entries_over_the_residue_cap_are_counted_skips(tmp_path,
                                                       monkeypatch):
  monkeypatch.setattr(uniref, 'MAX_RESIDUES', 5)
  long_entries = ENTRIES[:-1] + (entry('A0A008', sequence='MKVLAMKV'),)
  summary, _ = _build(tmp_path, long_entries)
  assert summary.dropped == {'too_long': 1}
  assert summary.proteins == 6
  summary, output = _fasta_build(tmp_path, name='fasta.h5')
  # KINA_HUMAN has 8 residues (on two lines), custom_7 has 5.
  assert summary.dropped == {'too_long': 1}
  with dataset_lib.open_dataset(output) as data:
    assert 'KINA_HUMAN' not in data.protein_ids(0, data.num_proteins)
    assert data.num_proteins == 4


# Kills the worker process that runs the patched stage, as the OOM killer
# would, and builds (argv: stage, output, XML, OBO).
_DYING_WORKER = textwrap.dedent('''
    import os, signal, sys
    from proteinbert.data import build
    from proteinbert.data.builder import annotate, shuffle
    main = os.getpid()
    stage, output, xml, obo = sys.argv[1:]
    patched = {'parse': (annotate.Annotator, '__call__'),
               'shuffle': (shuffle.Shuffler, 'prepare')}[stage]
    original = getattr(*patched)
    def die(self, *args):
      if os.getpid() != main:
        os.kill(os.getpid(), signal.SIGKILL)
      return original(self, *args)
    setattr(*patched, die)
    build.build_dataset(xml, obo, output, num_workers=2, bucket_size=50,
                        min_annotation_count=1, show_progress=False)
''')


@pytest.mark.parametrize('stage', ['parse', 'shuffle'])
def test_a_dead_worker_fails_the_build(tmp_path, stage):
  # The pool used to restart the worker and wait for the lost result for
  # ever.
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), _random_entries(300))
  output = tmp_path / 'out' / 'dataset.h5'
  output.parent.mkdir()
  done = subprocess.run(
      [sys.executable, '-c', _DYING_WORKER, stage, str(output), paths['xml'],
       paths['obo']], cwd=ROOT, capture_output=True, text=True, timeout=120,
      check=False)
  assert done.returncode != 0
  assert 'WorkerDied: A worker process of the dataset build died' in (
      done.stderr)
  assert not os.listdir(output.parent)  # No output, no scratch.


def _dead_build_scratch(parent, name, output=None, lock=True):
  """A scratch directory as a killed build leaves it."""
  scratch = parent / name
  scratch.mkdir()
  (scratch / 'range0.0').write_bytes(b'staged proteins')
  if lock:
    (scratch / 'lock').write_text('')
  if output:
    output.write_bytes(b'half an HDF5 file')
    (scratch / 'output').write_text(str(output))
  return scratch


def test_dead_builds_scratch_is_removed(tmp_path, caplog):
  parent = tmp_path / 'out'
  parent.mkdir()
  dead = _dead_build_scratch(parent, '.build_dataset.dead',
                             parent / '.out.h5.x1.tmp')
  unlocked_old = _dead_build_scratch(parent, '.build_dataset.old', lock=False)
  os.utime(unlocked_old, (0, 0))
  # Not yet locked by the build that just made it.
  _dead_build_scratch(parent, '.build_dataset.new', lock=False)
  running = _dead_build_scratch(parent, '.build_dataset.running')
  with open(running / 'lock') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # As a running build holds it.
    with caplog.at_level(logging.WARNING):
      _build(tmp_path, name='out/out.h5')
  assert sorted(os.listdir(parent)) == ['.build_dataset.new',
                                        '.build_dataset.running', 'out.h5']
  assert f'Removed {dead}, the scratch space of a build that died' in (
      caplog.text)
  assert f'and its unfinished output {parent}/.out.h5.x1.tmp' in caplog.text
  assert f'Removed {unlocked_old}' in caplog.text


def test_a_killed_build_is_cleaned_up_by_the_next(tmp_path):
  directory = tmp_path / 'release'
  directory.mkdir()
  paths = synthetic_release.write(str(directory), _random_entries(3000))
  output = tmp_path / 'out' / 'dataset.h5'
  output.parent.mkdir()
  command = [sys.executable, '-m', 'experiments.build_dataset',
             f'--uniref_xml={paths["xml"]}', f'--go_obo={paths["obo"]}',
             f'--output={output}', '--num_workers=0', '--bucket_size=100']
  build_process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
  try:
    # Killed once its scratch space is in use.
    for _ in range(3000):
      if any(n.startswith('.build_dataset.')
             for n in os.listdir(output.parent)):
        break
      time.sleep(0.01)
    build_process.send_signal(signal.SIGKILL)
  finally:
    build_process.communicate(timeout=60)
  left = os.listdir(output.parent)
  assert left and not os.path.exists(output)
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                        timeout=300, check=True)
  assert 'the scratch space of a build that died' in done.stderr
  assert os.listdir(output.parent) == ['dataset.h5']


def test_a_fasta_id_that_is_not_ascii_stops_the_build(tmp_path):
  # It was stored with U+FFFD in place of its bytes.
  fasta = tmp_path / 'proteins.fasta'
  fasta.write_bytes(b'>P1\nMKVLA\n>P\xe92 OX=9606\nMKVLA\n')
  with pytest.raises(text_files.FileFormatError,
                     match=r'proteins.fasta:3: the ID .* not printable ASCII'):
    build.build_dataset(None, None, str(tmp_path / 'out.h5'),
                        fasta=str(fasta), num_workers=0, show_progress=False)
  assert not os.path.exists(tmp_path / 'out.h5')
