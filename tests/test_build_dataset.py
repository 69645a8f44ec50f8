"""Tests for proteinbert/data/build.py."""

import gzip
import os
import subprocess

import numpy as np
import pytest

from proteinbert.data import build
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import synthetic
from proteinbert.data import uniref
from tests import synthetic_release

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
])
def test_bad_test_ids(tmp_path, lines, message):
  with pytest.raises(ValueError, match=message):
    _build(tmp_path, test_ids=_write_ids(tmp_path, lines))
  assert not os.path.exists(tmp_path / 'out.h5')


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
  monkeypatch.setattr(build, '_MAX_RANGES', 2)
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
  entries = [entry(f'A0A00{i}', prefix='UniRef50_') for i in range(3)]
  summary, _ = _build(tmp_path, entries, release='UniRef50')
  assert summary.proteins == 3
  summary, _ = _build(tmp_path, entries, 'compat.h5', release='UniRef50',
                      compat='original')
  assert summary.proteins == 0  # As the original: nothing joins.


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
  with pytest.raises(uniref.UniRefFormatError, match='truncated'):
    build.build_dataset(cut, paths['obo'], str(output), num_workers=0,
                        show_progress=False)
  bad_obo = directory / 'bad.obo'
  bad_obo.write_text('[Term]\nid: GO:1\nis_a: GO:2\n')
  with pytest.raises(ontology_lib.OboError, match='dangling'):
    build.build_dataset(paths['xml'], str(bad_obo), str(output),
                        show_progress=False)
  assert not os.listdir(output.parent)


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
  # pylint: disable=protected-access
  scratch = build._BlockFile(str(tmp_path / 'staging'), part_bytes=1)
  records, _ = build._BlockBuilder().take()  # Empty.
  for i in range(3):
    scratch.append(records, np.array([i]))
  assert len(os.listdir(tmp_path)) == 3
  drained = build._drain(scratch.parts)
  assert next(drained)[1] == [0]
  assert len(os.listdir(tmp_path)) == 3  # The part being read stays.
  assert [keys[0] for _, keys in drained] == [1, 2]
  assert not os.listdir(tmp_path)


def test_empty_release(tmp_path):
  summary, output = _build(tmp_path, entries=())
  assert summary.entries == summary.proteins == 0
  with dataset_lib.open_dataset(output) as data:
    assert data.num_proteins == 0 and data.num_annotations == 0
    assert len(data.seq_lengths) == 0


def test_timing_covers_the_whole_build(tmp_path):
  summary, output = _build(tmp_path)
  with dataset_lib.open_dataset(output) as data:
    recorded = data.metadata['summary']
  # The metadata is written before the file is closed and renamed.
  assert 0 < recorded['seconds'] <= summary.seconds
  assert 0 < recorded['cpu_seconds'] <= summary.cpu_seconds
