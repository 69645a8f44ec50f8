"""Pretraining dataset files: our sparse HDF5 layout and the original's.

The reader API, which the pretraining loader codes against:

    open_dataset(path) -> ProteinDataset    # either layout; a context manager
      .path, .num_proteins (N), .num_annotations (A)
      .annotation_ids       str [A] GO IDs in vocabulary order
      .seq_lengths          int32 [N] residues (no <START>/<END>)
      .is_test              bool [N]
      .read(start, stop) -> ProteinChunk          # contiguous, one read
      .read_indices(indices) -> ProteinChunk      # any order, repeats allowed
      .protein_ids(start, stop) -> list[str]
      .vocabulary (ids, names, namespaces, counts), .metadata (build), close()
    shard_bounds(num_proteins, process_index, process_count) -> (start, stop)
    demo_dataset_path()                     # the small dataset in demo/

`proteinbert.data.dataset_writer` writes either layout.

Our layout (root attribute `layout` = 'proteinbert-sparse', `layout_version`
= 1). N proteins, A vocabulary terms. A ragged column is a group holding
`values` and int64 `offsets` [N + 1]; row i is
`values[offsets[i]:offsets[i + 1]]`.

    seqs/                 ragged uint8: ASCII residues (no <START>/<END>)
    annotations/          ragged uint16 (A <= 65535) or int32: vocabulary
                          indices, sorted within each protein
    protein_ids/          ragged uint8: the representative's UniProtKB entry
                          name or UniParc ID ('TITIN_HUMAN', 'UPI...')
    entry_ids/            ragged uint8: the UniRef cluster ID ('UniRef90_...')
    taxonomy_ids          int32 [N]: NCBI taxonomy ID, -1 when unknown
    is_test               bool [N]: test-set proteins
    vocabulary/ids        str [A]: GO IDs, sorted
    vocabulary/names      str [A]
    vocabulary/namespaces str [A]
    vocabulary/counts     int64 [A]: proteins carrying the term in the build
    attrs: num_proteins, num_annotations, build (JSON: inputs, settings and
           the build summary)

Everything is chunked and gzip-compressed (level 1) unless written with
compression=None; 64 KiB residue chunks keep a random read near 0.4 ms.
A protein costs its residues (compressed to ~0.6 byte each) plus a few
dozen bytes, against ~9 KB in the original's dense layout.

The original layout (protein-bert 1.0.1's `create_uniref_h5_dataset` and
`set_h5_testset`):

    included_annotations  str [A]: GO IDs
    uniprot_ids           str [N]: the representative's dbReference ID
    seqs                  str [N]
    seq_lengths           int32 [N]
    annotation_masks      bool [N, A]
    test_set_mask         bool [N] (added by `set_h5_testset`; read as all
                          False, with a warning, when absent)
"""

import contextlib
import json
import os
from typing import Any, List, Mapping, NamedTuple, Sequence

from absl import logging
import h5py
import numpy as np

from proteinbert.data import chunk as chunk_lib

LAYOUT = 'proteinbert-sparse'
LAYOUT_VERSION = 1
# The layouts `dataset_writer.create_writer` writes, by name.
LAYOUTS = ('sparse', 'original')

_ORIGINAL_REQUIRED = ('included_annotations', 'uniprot_ids', 'seqs',
                      'seq_lengths', 'annotation_masks')
_RAGGED = ('seqs', 'annotations', 'protein_ids', 'entry_ids')
_SPARSE_REQUIRED = ('seqs/values', 'seqs/offsets', 'annotations/values',
                    'annotations/offsets', 'protein_ids/values',
                    'protein_ids/offsets', 'entry_ids/values',
                    'entry_ids/offsets', 'taxonomy_ids', 'is_test',
                    'vocabulary/ids', 'vocabulary/names',
                    'vocabulary/namespaces', 'vocabulary/counts')

# Reading a run of proteins costs little more than reading one, so indices
# closer than this are served by one contiguous read.
_MAX_GAP = 64
# Proteins per read when scanning a whole column (e.g. seq_lengths).
_SCAN = 1 << 20


class Vocabulary(NamedTuple):
  """The annotation vocabulary; index a of every annotation array is term a.

  Attributes:
    ids: str [A] GO IDs, sorted.
    names: str [A] term names ('' when unknown).
    namespaces: str [A] GO namespaces ('' when unknown).
    counts: int64 [A] proteins carrying each term in the build (-1 unknown).
  """
  ids: np.ndarray
  names: np.ndarray
  namespaces: np.ndarray
  counts: np.ndarray


class Records(NamedTuple):
  """Proteins with all the per-protein fields a dataset file stores.

  Attributes:
    proteins: the sequences, annotations and test flags (N proteins).
    protein_ids: N representative IDs.
    entry_ids: N UniRef cluster IDs.
    taxonomy_ids: int32 [N], -1 when unknown.
  """
  proteins: chunk_lib.ProteinChunk
  protein_ids: List[str]
  entry_ids: List[str]
  taxonomy_ids: np.ndarray

  def __len__(self) -> int:
    return len(self.proteins)

  def take(self, indices: np.ndarray) -> 'Records':
    """The records at `indices` (int [M]), in that order."""
    indices = np.asarray(indices, np.int64)
    return Records(self.proteins.take(indices),
                   [self.protein_ids[i] for i in indices.tolist()],
                   [self.entry_ids[i] for i in indices.tolist()],
                   self.taxonomy_ids[indices])

  @staticmethod
  def concatenate(parts: Sequence['Records']) -> 'Records':
    """One `Records` holding `parts` one after another."""
    return Records(
        chunk_lib.ProteinChunk.concatenate([p.proteins for p in parts]),
        [i for p in parts for i in p.protein_ids],
        [i for p in parts for i in p.entry_ids],
        np.concatenate([np.zeros(0, np.int32)] +
                       [p.taxonomy_ids for p in parts]).astype(np.int32))


def shard_bounds(num_proteins: int, process_index: int,
                 process_count: int) -> tuple:
  """[start, stop) of host `process_index`'s contiguous shard.

  Shards differ in size by at most one protein and cover [0, num_proteins).
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} is not in '
                     f'[0, {process_count}).')
  return (num_proteins * process_index // process_count,
          num_proteins * (process_index + 1) // process_count)


class ProteinDataset:
  """A dataset file opened for reading (either layout); `open_dataset` makes it.

  Attributes:
    path: the file.
    num_proteins: N.
    num_annotations: A.
    annotation_ids: str [A] GO IDs in vocabulary order.
    vocabulary: the full `Vocabulary`.
    metadata: the build's settings and summary ({} for the original layout).
  """

  def __init__(self, path: str, f: h5py.File, vocabulary: Vocabulary,
               num_proteins: int, metadata: Mapping[str, Any]):
    self.path = path
    self._f = f
    self.vocabulary = vocabulary
    self.annotation_ids = vocabulary.ids
    self.num_annotations = len(vocabulary.ids)
    self.num_proteins = num_proteins
    self.metadata = dict(metadata)
    self._seq_lengths = self._is_test = None

  @property
  def seq_lengths(self) -> np.ndarray:
    """int32 [N] residues per protein (no <START>/<END>); read on first use."""
    if self._seq_lengths is None:
      with self._reading(0, self.num_proteins):
        self._seq_lengths = self._read_seq_lengths()
    return self._seq_lengths

  @property
  def is_test(self) -> np.ndarray:
    """bool [N] test-set proteins; read on first use."""
    if self._is_test is None:
      with self._reading(0, self.num_proteins):
        self._is_test = self._read_is_test(0, self.num_proteins)
    return self._is_test

  def read(self, start: int, stop: int) -> chunk_lib.ProteinChunk:
    """Proteins [start, stop), with one read per column."""
    self._check_range(start, stop)
    with self._reading(start, stop):
      return self._read(start, stop)

  def read_indices(self, indices: np.ndarray) -> chunk_lib.ProteinChunk:
    """The proteins at `indices` (int [M]; any order, repeats allowed).

    Nearby indices share one contiguous read, so a sorted batch from a small
    region costs about as much as `read` of that region.
    """
    indices = np.asarray(indices, np.int64).reshape(-1)
    if not len(indices):
      return self._read(0, 0)
    unique, inverse = np.unique(indices, return_inverse=True)
    self._check_range(int(unique[0]), int(unique[-1]) + 1)
    breaks = np.flatnonzero(np.diff(unique) > _MAX_GAP) + 1
    parts = []
    for run in np.split(unique, breaks):
      start, stop = int(run[0]), int(run[-1]) + 1
      with self._reading(start, stop):
        parts.append(self._read(start, stop).take(run - start))
    return chunk_lib.ProteinChunk.concatenate(parts).take(inverse)

  def protein_ids(self, start: int, stop: int) -> List[str]:
    """Representative protein IDs of proteins [start, stop)."""
    self._check_range(start, stop)
    with self._reading(start, stop):
      return self._protein_ids(start, stop)

  def close(self) -> None:
    self._f.close()

  def __enter__(self) -> 'ProteinDataset':
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  @contextlib.contextmanager
  def _reading(self, start: int, stop: int):
    """Names the file and proteins in the errors of a damaged file."""
    try:
      yield
    except OSError as e:  # HDF5's errors: a failed checksum or inflate.
      raise ValueError(f'{self.path}: cannot read proteins [{start}, {stop}) '
                       f'(a damaged file?): {e}') from e

  def _check_range(self, start: int, stop: int) -> None:
    if not 0 <= start <= stop <= self.num_proteins:
      raise IndexError(f'{self.path}: proteins [{start}, {stop}) are out of '
                       f'range for a dataset of {self.num_proteins}.')

  def _read(self, start, stop):
    raise NotImplementedError

  def _read_seq_lengths(self):
    raise NotImplementedError

  def _read_is_test(self, start, stop):
    raise NotImplementedError

  def _protein_ids(self, start, stop):
    raise NotImplementedError


def _decreasing(offsets: np.ndarray, group: h5py.Group,
                first: int) -> None:
  """Raises ValueError if the offsets of rows first, ... ever decrease."""
  down = np.flatnonzero(np.diff(offsets) < 0)
  if len(down):
    raise ValueError(f'{group.file.filename}: {group.name}/offsets decrease '
                     f'at protein {first + int(down[0])}; the file is '
                     'damaged.')


def _ragged_rows(group: h5py.Group, start: int, stop: int):
  """(values [V], offsets int64 [stop - start + 1] from 0) of rows."""
  offsets = group['offsets'][start:stop + 1]
  _decreasing(offsets, group, start)
  values = group['values'][offsets[0]:offsets[-1]]
  return values, offsets - offsets[0]


def _split(values: np.ndarray, offsets: np.ndarray) -> List[bytes]:
  data = values.tobytes()
  bounds = offsets.tolist()
  return [data[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


class SparseDataset(ProteinDataset):
  """Our layout (see the module docstring)."""

  def _read(self, start, stop):
    residues, seq_offsets = _ragged_rows(self._f['seqs'], start, stop)
    annotations, offsets = _ragged_rows(self._f['annotations'], start, stop)
    if annotations.size and not (
        0 <= annotations.min() and annotations.max() < self.num_annotations):
      raise ValueError(f'{self.path}: proteins [{start}, {stop}) have '
                       'annotation indices outside the vocabulary of '
                       f'{self.num_annotations} terms; the file is damaged.')
    return chunk_lib.ProteinChunk(
        seqs=_split(residues, seq_offsets),
        annotation_offsets=offsets,
        annotation_indices=annotations.astype(np.int32),
        is_test=self._read_is_test(start, stop))

  def _read_seq_lengths(self):
    group = self._f['seqs']
    parts = [np.zeros(0, np.int32)]
    for i in range(0, self.num_proteins, _SCAN):
      offsets = group['offsets'][i:min(i + _SCAN, self.num_proteins) + 1]
      _decreasing(offsets, group, i)
      parts.append(np.diff(offsets).astype(np.int32))
    return np.concatenate(parts)

  def _read_is_test(self, start, stop):
    return self._f['is_test'][start:stop].astype(bool)

  def _protein_ids(self, start, stop):
    return [s.decode() for s in _split(
        *_ragged_rows(self._f['protein_ids'], start, stop))]

  def entry_ids(self, start: int, stop: int) -> List[str]:
    """UniRef cluster IDs of proteins [start, stop)."""
    self._check_range(start, stop)
    return [s.decode() for s in _split(
        *_ragged_rows(self._f['entry_ids'], start, stop))]

  def taxonomy_ids(self, start: int, stop: int) -> np.ndarray:
    """int32 [stop - start] NCBI taxonomy IDs, -1 when unknown."""
    self._check_range(start, stop)
    return self._f['taxonomy_ids'][start:stop]


class OriginalDataset(ProteinDataset):
  """protein-bert 1.0.1's dense layout (see the module docstring)."""

  def _read(self, start, stop):
    masks = self._f['annotation_masks'][start:stop]
    rows, columns = np.nonzero(masks)
    counts = np.bincount(rows, minlength=stop - start)
    return chunk_lib.ProteinChunk(
        seqs=[_as_bytes(s) for s in self._f['seqs'][start:stop]],
        annotation_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(
            np.int64),
        annotation_indices=columns.astype(np.int32),
        is_test=self._read_is_test(start, stop))

  def _read_seq_lengths(self):
    return self._f['seq_lengths'][:].astype(np.int32)

  def _read_is_test(self, start, stop):
    if 'test_set_mask' not in self._f:
      return np.zeros(stop - start, bool)
    return self._f['test_set_mask'][start:stop].astype(bool)

  def _protein_ids(self, start, stop):
    return [_as_bytes(s).decode() for s in self._f['uniprot_ids'][start:stop]]


def _as_bytes(value) -> bytes:
  return value.encode() if isinstance(value, str) else bytes(value)


def _strings(dataset: h5py.Dataset) -> np.ndarray:
  return np.array([_as_bytes(s).decode() for s in dataset[:]], dtype=str)


def _missing(f: h5py.File, names: Sequence[str]) -> List[str]:
  return [name for name in names if name not in f]


def open_dataset(path: str) -> ProteinDataset:
  """Opens a dataset file in our layout or the original dense one.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: the file is neither, lacks parts of its layout, or is
      damaged (ragged offsets that decrease or do not span
      their values, unreadable data); the message names the file and what
      is wrong. Later reads raise ValueError naming the file for damage found
      then (unreadable data, annotation indices outside the vocabulary).
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f'No dataset file at {path}.')
  try:
    f = h5py.File(path, 'r')
  except OSError as e:
    raise ValueError(f'{path} is not an HDF5 file ({e}); expected a dataset '
                     'built by experiments/build_dataset.py or the original '
                     'package.') from None
  try:
    if f.attrs.get('layout') == LAYOUT:
      return _open_sparse(path, f)
    if 'annotation_masks' in f or 'included_annotations' in f:
      return _open_original(path, f)
  except OSError as e:  # HDF5's errors: a failed checksum or inflate.
    f.close()
    raise ValueError(f'{path}: cannot read the dataset (a damaged file?): '
                     f'{e}') from e
  except BaseException:
    f.close()
    raise
  f.close()
  raise ValueError(
      f'{path} is not a ProteinBERT dataset: it has neither the root '
      f"attribute layout={LAYOUT!r} of our layout nor the original layout's "
      f'datasets {", ".join(_ORIGINAL_REQUIRED)}.')


def _open_sparse(path: str, f: h5py.File) -> SparseDataset:
  version = int(f.attrs.get('layout_version', -1))
  if version != LAYOUT_VERSION:
    raise ValueError(f'{path}: layout version {version} is not supported '
                     f'(this code reads version {LAYOUT_VERSION}).')
  missing = _missing(f, _SPARSE_REQUIRED) + [
      a for a in ('num_proteins',) if a not in f.attrs]
  if missing:
    raise ValueError(f'{path}: incomplete {LAYOUT} dataset, missing '
                     f'{", ".join(missing)}.')
  num_proteins = int(f.attrs['num_proteins'])
  problems = [f'{name} has {f[name].shape[0]} rows, expected {num_proteins}'
              for name in ('taxonomy_ids', 'is_test')
              if f[name].shape != (num_proteins,)]
  for column in _RAGGED:
    offsets, values = f[column]['offsets'], f[column]['values']
    if offsets.shape != (num_proteins + 1,):
      problems.append(f'{column}/offsets has shape {offsets.shape}, expected '
                      f'({num_proteins + 1},)')
    elif offsets[0] != 0 or offsets[-1] != values.shape[0]:
      problems.append(f'{column}/offsets run from {offsets[0]} to '
                      f'{offsets[-1]}, expected 0 to {values.shape[0]} (the '
                      'values\' length)')
  if problems:
    raise ValueError(f'{path}: inconsistent dataset (damaged file?): '
                     f'{"; ".join(problems)}.')
  vocabulary = Vocabulary(*(_strings(f['vocabulary'][k])
                            for k in ('ids', 'names', 'namespaces')),
                          f['vocabulary/counts'][:])
  dataset = SparseDataset(path, f, vocabulary, num_proteins,
                          json.loads(f.attrs.get('build', '{}')))
  # Read now (the loader needs them first): the scan also checks that the
  # offsets never decrease, so a damaged file fails on opening.
  dataset.seq_lengths  # pylint: disable=pointless-statement
  return dataset


def _open_original(path: str, f: h5py.File) -> OriginalDataset:
  missing = _missing(f, _ORIGINAL_REQUIRED)
  if missing:
    raise ValueError(f'{path}: incomplete original-layout dataset, missing '
                     f'{", ".join(missing)}.')
  ids = _strings(f['included_annotations'])
  num_proteins = len(f['seqs'])
  if 'test_set_mask' not in f:
    logging.warning('%s has no test_set_mask (set_h5_testset was not run): '
                    'no protein is a test-set protein.', path)
  vocabulary = Vocabulary(ids, np.full(len(ids), '', dtype=str),
                          np.full(len(ids), '', dtype=str),
                          np.full(len(ids), -1, np.int64))
  return OriginalDataset(path, f, vocabulary, num_proteins, {})


def demo_dataset_path() -> str:
  """The small demo dataset shipped with the package (see demo/README.md)."""
  return os.path.join(os.path.dirname(__file__), 'demo', 'demo_dataset.h5')
