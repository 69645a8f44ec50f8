"""Tests for proteinbert/data/dataset.py and dataset_writer.py."""

import h5py
import numpy as np
import pytest

from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import dataset_writer
from tests import helpers

NUM_PROTEINS = 300
VOCABULARY = dataset_lib.Vocabulary(
    ids=np.array(['GO:0000001', 'GO:0000002', 'GO:0000003', 'GO:0000004']),
    names=np.array(['a', 'b', 'c', 'd']),
    namespaces=np.array(['molecular_function'] * 4),
    counts=np.array([5, 4, 3, 2]))


def _records(n=NUM_PROTEINS, seed=0) -> dataset_lib.Records:
  rng = np.random.default_rng(seed)
  seqs = [rng.choice(list(b'ACDEFGHIKLMNPQRSTVWY'), k).astype(np.uint8)
          .tobytes() for k in rng.integers(1, 200, n)]
  annotations = [np.sort(rng.choice(4, k, replace=False))
                 for k in rng.integers(0, 4, n)]
  proteins = chunk_lib.ProteinChunk(
      seqs=seqs,
      annotation_offsets=np.cumsum([0] + [len(a) for a in annotations]),
      annotation_indices=np.concatenate(annotations).astype(np.int32),
      is_test=rng.random(n) < 0.2)
  return dataset_lib.Records(proteins, [f'P{i}_HUMAN' for i in range(n)],
                             [f'UniRef90_P{i}' for i in range(n)],
                             np.arange(n, dtype=np.int32))


def _write(path, layout, records, parts=3, compression='gzip'):
  writer = dataset_writer.create_writer(str(path), layout, VOCABULARY,
                                        compression)
  for part in np.array_split(np.arange(len(records)), parts):
    writer.append(records.take(part))
  writer.close({'settings': {'seed': 7}})


def _assert_same(a: chunk_lib.ProteinChunk, b: chunk_lib.ProteinChunk):
  assert a.seqs == b.seqs
  np.testing.assert_array_equal(a.annotation_offsets, b.annotation_offsets)
  np.testing.assert_array_equal(a.annotation_indices, b.annotation_indices)
  np.testing.assert_array_equal(a.is_test, b.is_test)
  assert a.annotation_indices.dtype == np.int32
  assert a.annotation_offsets.dtype == np.int64


@pytest.mark.parametrize('layout', dataset_lib.LAYOUTS)
@pytest.mark.parametrize('compression', ['gzip', None])
@pytest.mark.parametrize('tiny_chunks', [False, True])
def test_round_trip(tmp_path, monkeypatch, layout, compression, tiny_chunks):
  if tiny_chunks:
    # Many whole chunks, compressed on threads, across append boundaries.
    monkeypatch.setattr(dataset_writer, '_CHUNK', 7)
    monkeypatch.setattr(dataset_writer, '_BYTES_CHUNK', 101)
    monkeypatch.setattr(dataset_writer, '_MAX_PENDING_CHUNKS', 3)
  records = _records()
  path = tmp_path / 'd.h5'
  _write(path, layout, records, compression=compression)
  with dataset_lib.open_dataset(str(path)) as data:
    assert isinstance(data, dataset_lib.ProteinDataset)
    assert data.num_proteins == NUM_PROTEINS
    assert data.num_annotations == 4
    assert list(data.annotation_ids) == list(VOCABULARY.ids)
    np.testing.assert_array_equal(data.seq_lengths,
                                  [len(s) for s in records.proteins.seqs])
    np.testing.assert_array_equal(data.is_test, records.proteins.is_test)
    _assert_same(data.read(0, NUM_PROTEINS), records.proteins)
    _assert_same(data.read(10, 20), records.proteins.take(np.arange(10, 20)))
    assert data.read(5, 5).seqs == []
    assert data.protein_ids(3, 5) == ['P3_HUMAN', 'P4_HUMAN']
    indices = np.array([299, 0, 150, 151, 0, 7, 290])
    _assert_same(data.read_indices(indices), records.proteins.take(indices))
    _assert_same(data.read_indices(np.zeros(0, int)),
                 records.proteins.take(np.zeros(0, int)))


def test_our_layout_keeps_everything(tmp_path):
  records = _records()
  path = tmp_path / 'd.h5'
  _write(path, 'sparse', records)
  with dataset_lib.open_dataset(str(path)) as data:
    assert data.entry_ids(1, 3) == ['UniRef90_P1', 'UniRef90_P2']
    np.testing.assert_array_equal(data.taxonomy_ids(4, 6), [4, 5])
    assert list(data.vocabulary.names) == ['a', 'b', 'c', 'd']
    np.testing.assert_array_equal(data.vocabulary.counts, [5, 4, 3, 2])
    assert data.metadata == {'settings': {'seed': 7}}
  with h5py.File(path) as f:
    assert f['annotations/values'].dtype == np.uint16


def test_out_of_range(tmp_path):
  _write(tmp_path / 'd.h5', 'sparse', _records(10))
  with dataset_lib.open_dataset(str(tmp_path / 'd.h5')) as data:
    with pytest.raises(IndexError, match='proteins \\[5, 11\\) are out of'):
      data.read(5, 11)
    with pytest.raises(IndexError):
      data.read_indices([3, 10])


def _write_like_the_original(path, records, with_test_mask=True):
  """What protein-bert 1.0.1's create_uniref_h5_dataset writes."""
  n = len(records)
  with h5py.File(path, 'w') as f:
    f.create_dataset('included_annotations',
                     data=[a.encode('ascii') for a in VOCABULARY.ids],
                     dtype=h5py.string_dtype())
    ids = f.create_dataset('uniprot_ids', shape=(n,),
                           dtype=h5py.string_dtype())
    seqs = f.create_dataset('seqs', shape=(n,), dtype=h5py.string_dtype())
    lengths = f.create_dataset('seq_lengths', shape=(n,), dtype=np.int32)
    masks = f.create_dataset('annotation_masks', shape=(n, 4), dtype=bool)
    ids[:] = records.protein_ids
    seqs[:] = [s.decode() for s in records.proteins.seqs]
    lengths[:] = [len(s) for s in records.proteins.seqs]
    masks[:] = records.proteins.dense_annotations(4)
    if with_test_mask:
      f.create_dataset('test_set_mask', data=records.proteins.is_test,
                       dtype=bool)


def test_reads_the_original_layout(tmp_path):
  records = _records(50)
  path = str(tmp_path / 'dataset.h5')
  _write_like_the_original(path, records)
  with dataset_lib.open_dataset(path) as data:
    assert isinstance(data, dataset_lib.OriginalDataset)
    assert list(data.annotation_ids) == list(VOCABULARY.ids)
    _assert_same(data.read(0, 50), records.proteins)
    _assert_same(data.read_indices([9, 2]), records.proteins.take([9, 2]))
    assert data.protein_ids(0, 2) == ['P0_HUMAN', 'P1_HUMAN']
    np.testing.assert_array_equal(data.seq_lengths,
                                  [len(s) for s in records.proteins.seqs])
    assert data.metadata == {}


def test_original_layout_without_test_set_mask(tmp_path):
  path = str(tmp_path / 'dataset.h5')
  _write_like_the_original(path, _records(5), with_test_mask=False)
  with dataset_lib.open_dataset(path) as data:
    assert not data.is_test.any()
    assert not data.read(0, 5).is_test.any()


def test_incomplete_or_foreign_files(tmp_path):
  path = str(tmp_path / 'dataset.h5')
  _write_like_the_original(path, _records(5))
  with h5py.File(path, 'a') as f:
    del f['seq_lengths']
  with pytest.raises(ValueError, match='dataset.h5: incomplete original-layout '
                     'dataset, missing seq_lengths'):
    dataset_lib.open_dataset(path)

  ours = str(tmp_path / 'ours.h5')
  _write(ours, 'sparse', _records(5))
  with h5py.File(ours, 'a') as f:
    del f['is_test']
  with pytest.raises(ValueError, match='ours.h5: incomplete proteinbert-sparse '
                     'dataset, missing is_test'):
    dataset_lib.open_dataset(ours)

  with pytest.raises(FileNotFoundError, match='missing.h5'):
    dataset_lib.open_dataset(str(tmp_path / 'missing.h5'))
  text = tmp_path / 'text.h5'
  text.write_text('hello')
  with pytest.raises(ValueError, match='text.h5 is not an HDF5 file'):
    dataset_lib.open_dataset(str(text))

  other = str(tmp_path / 'other.h5')
  with h5py.File(other, 'w') as f:
    f['x'] = [1]
  with pytest.raises(ValueError, match='other.h5 is not a ProteinBERT dataset'):
    dataset_lib.open_dataset(other)


def test_empty_vocabulary(tmp_path):
  empty = dataset_lib.Vocabulary(*(np.zeros(0, str),) * 3, np.zeros(0, int))
  records = _records(3)
  for layout in dataset_lib.LAYOUTS:
    path = str(tmp_path / f'{layout}.h5')
    writer = dataset_writer.create_writer(path, layout, empty)
    writer.append(dataset_lib.Records(
        chunk_lib.ProteinChunk(records.proteins.seqs, np.zeros(4, np.int64),
                               np.zeros(0, np.int32), np.zeros(3, bool)),
        *records[1:]))
    writer.close({})
    with dataset_lib.open_dataset(path) as data:
      assert data.num_annotations == 0
      assert len(data.read(0, 3).annotation_indices) == 0


@pytest.mark.parametrize('n, count', [(10, 3), (2, 4), (1000, 7), (0, 2)])
def test_shard_bounds(n, count):
  bounds = [dataset_lib.shard_bounds(n, i, count) for i in range(count)]
  assert bounds[0][0] == 0 and bounds[-1][1] == n
  assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
  sizes = [stop - start for start, stop in bounds]
  assert max(sizes) - min(sizes) <= 1


def test_shard_bounds_rejects_bad_index():
  with pytest.raises(ValueError, match='process_index 2 is not in'):
    dataset_lib.shard_bounds(10, 2, 2)


def test_demo_dataset_opens():
  with dataset_lib.open_dataset(dataset_lib.demo_dataset_path()) as data:
    assert 3000 <= data.num_proteins <= 5000
    assert data.num_annotations > 10
    lengths = data.seq_lengths
    # Proteins for each pretraining episode (128, 512, 1024 tokens).
    assert (lengths > 1022).sum() > 50 and (lengths < 126).sum() > 100
    chunk = data.read(0, 100)
    assert np.diff(chunk.annotation_offsets).mean() > 1
    # Real GO terms, with their names and namespaces.
    vocabulary = data.vocabulary
    assert all(go_id.startswith('GO:') and not go_id.startswith('GO:99')
               for go_id in vocabulary.ids)
    assert set(vocabulary.namespaces) == {
        'molecular_function', 'biological_process', 'cellular_component'}
    assert all(vocabulary.names)


def _damaged(tmp_path, change):
  """A tiny dataset with `change(f)` applied to its open HDF5 file."""
  path = str(tmp_path / 'damaged.h5')
  helpers.write_tiny_dataset(path, num_proteins=40)
  with h5py.File(path, 'a') as f:
    change(f)
  return path


def _set(name, index, value):
  def change(f):
    f[name][index] = value
  return change


@pytest.mark.parametrize('change, message', [
    (_set('seqs/offsets', 5, 3), r'seqs/offsets decrease at protein 4'),
    (_set('seqs/offsets', 5, 10**12), r'seqs/offsets decrease at protein 5'),
    (_set('seqs/offsets', 40, 10**12), r'seqs/offsets run from 0 to '
     r'1000000000000, expected 0 to \d+'),
    (_set('annotations/offsets', 0, 1), r'annotations/offsets run from 1'),
    (lambda f: f.attrs.__setitem__('num_proteins', 41),
     r'is_test has 40 rows, expected 41'),
])
def test_inconsistent_offsets_are_refused_on_opening(tmp_path, change,
                                                     message):
  with pytest.raises(ValueError, match=r'damaged\.h5.*' + message):
    dataset_lib.open_dataset(_damaged(tmp_path, change))


def test_damage_found_by_reads_names_the_file(tmp_path):
  path = _damaged(tmp_path, _set('annotations/offsets', 11, 0))
  with dataset_lib.open_dataset(path) as data:
    with pytest.raises(ValueError, match=r'damaged\.h5: /annotations/'
                       'offsets decrease at protein 10'):
      data.read(0, 20)
  path = _damaged(tmp_path, _set('annotations/values', 0, 60000))
  with dataset_lib.open_dataset(path) as data:
    with pytest.raises(ValueError, match=r'damaged\.h5: proteins \[0, 10\) '
                       'have annotation indices outside the vocabulary of 10'):
      data.read(0, 10)


def test_a_corrupted_middle_names_the_file(tmp_path):
  path = tmp_path / 'corrupt.h5'
  helpers.write_tiny_dataset(str(path), num_proteins=2000)
  data = bytearray(path.read_bytes())
  middle = len(data) // 2
  data[middle:middle + 2000] = bytes(2000)
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match=r'corrupt\.h5: cannot read'):
    with dataset_lib.open_dataset(str(path)) as dataset:
      for start in range(0, dataset.num_proteins, 100):
        dataset.read(start, start + 100)
        dataset.protein_ids(start, start + 100)
