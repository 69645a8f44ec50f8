"""Writing pretraining dataset files, in our sparse layout or the original's.

`proteinbert.data.dataset` documents both layouts and reads them; this module
writes them:

    create_writer(path, layout, vocabulary, compression) -> writer
      .append(records)      # `dataset.Records`, in any amounts
      .flush()              # everything appended is written
      .close(metadata)      # the build's settings and summary (JSON-able)

`proteinbert.data.build` calls it. Columns grow as records arrive; with
compression, whole chunks are deflated on a small thread pool and stored
directly, so compressing runs beside the build instead of inside h5py.
"""

import collections
from concurrent import futures
import os
import zlib
from typing import Any, Mapping, Optional, Sequence

import h5py
import numpy as np

from proteinbert import io_utils
from proteinbert.data import dataset as dataset_lib

# Elements per chunk: small enough for cheap random reads, large enough to
# compress well; byte columns (residues, IDs) get 64 KiB chunks.
_CHUNK = 1 << 13
_BYTES_CHUNK = 1 << 16
# Compressed chunks waiting to be stored, at most (a few MB).
_MAX_PENDING_CHUNKS = 64


def _compression(compression: Optional[str]) -> dict:
  if compression is None:
    return {}
  if compression != 'gzip':
    raise ValueError(f'Unknown compression {compression!r}; use gzip or None.')
  return dict(compression='gzip', compression_opts=1, shuffle=True)


def _deflate(values: np.ndarray, chunk: int) -> bytes:
  """One chunk as HDF5's shuffle and deflate filters store it."""
  padded = np.zeros(chunk, values.dtype)
  padded[:len(values)] = values
  data = padded.view(np.uint8)
  if values.dtype.itemsize > 1:
    data = data.reshape(chunk, values.dtype.itemsize).T
  return zlib.compress(np.ascontiguousarray(data).tobytes(), 1)


class _Column:
  """A growing 1-D dataset, appended to in any amounts.

  With a thread pool, a compressed column is written a whole chunk at a
  time: `_deflate` runs on the pool (zlib lets go of the GIL) and the result
  is stored with `write_direct_chunk`, so compression runs beside the
  caller instead of inside h5py's writes.
  """

  def __init__(self, group, name: str, dtype, chunk: Optional[int] = None,
               compression: Optional[str] = None,
               pool: Optional[futures.Executor] = None):
    chunk = chunk or _CHUNK
    self._dataset = group.create_dataset(
        name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(chunk,),
        **_compression(compression))
    self._chunk = chunk
    self._pool = pool if compression else None
    self._tail = np.zeros(0, self._dataset.dtype)  # Past the last whole chunk.
    self._pending = collections.deque()  # (offset, future) of whole chunks.
    self._submitted = 0

  def append(self, values) -> None:
    values = np.asarray(values, self._dataset.dtype)
    size = self._dataset.shape[0] + len(values)
    self._dataset.resize(size, axis=0)
    if self._pool is None:
      if len(values):
        self._dataset[size - len(values):] = values
      return
    values = np.concatenate([self._tail, values])
    whole = len(values) - len(values) % self._chunk
    for start in range(0, whole, self._chunk):
      self._submit(values[start:start + self._chunk])
    self._tail = values[whole:]
    self._store(everything=False)

  def close(self) -> None:
    """Writes what is left; the column is complete afterwards."""
    if self._pool is not None:
      if len(self._tail):
        self._submit(self._tail)
      self._store(everything=True)

  def _submit(self, values: np.ndarray) -> None:
    self._pending.append((self._submitted, self._pool.submit(
        _deflate, values, self._chunk)))
    self._submitted += len(values)

  def _store(self, everything: bool) -> None:
    while self._pending and (everything or self._pending[0][1].done() or
                             len(self._pending) > _MAX_PENDING_CHUNKS):
      offset, future = self._pending.popleft()
      self._dataset.id.write_direct_chunk((offset,), future.result())


class _RaggedWriter:
  """Appends rows to a ragged column (a group with `values` and `offsets`)."""

  def __init__(self, f: h5py.File, name: str, dtype, compression, pool,
               chunk: Optional[int] = None):
    group = f.create_group(name)
    self._values = _Column(group, 'values', dtype, chunk, compression, pool)
    self._offsets = _Column(group, 'offsets', np.int64, None, compression,
                            pool)
    self._offsets.append([0])
    self._end = 0

  def append(self, values: np.ndarray, lengths: np.ndarray) -> None:
    self._values.append(values)
    self._offsets.append(self._end + np.cumsum(lengths, dtype=np.int64))
    self._end += int(np.sum(lengths))

  def append_strings(self, strings: Sequence) -> None:
    """Appends rows that are all str (stored as UTF-8) or all bytes."""
    if strings and isinstance(strings[0], str):
      text = ''.join(strings)
      if text.isascii():
        data = text.encode('ascii')  # A byte per character.
      else:
        strings = [s.encode() for s in strings]
        data = b''.join(strings)
    else:
      data = b''.join(strings)
    self.append(np.frombuffer(data, np.uint8),
                np.fromiter(map(len, strings), np.int64, len(strings)))

  def close(self) -> None:
    self._values.close()
    self._offsets.close()


class SparseWriter:
  """Writes our layout (see `proteinbert.data.dataset`), appending records."""

  def __init__(self, path: str, vocabulary: dataset_lib.Vocabulary,
               compression: Optional[str] = 'gzip'):
    self._f = h5py.File(path, 'w')
    self._f.attrs['layout'] = dataset_lib.LAYOUT
    self._f.attrs['layout_version'] = dataset_lib.LAYOUT_VERSION
    self._f.attrs['num_annotations'] = len(vocabulary.ids)
    group = self._f.create_group('vocabulary')
    for field in ('ids', 'names', 'namespaces'):
      group.create_dataset(field, data=np.asarray(getattr(vocabulary, field),
                                                  dtype=object),
                           dtype=h5py.string_dtype())
    group.create_dataset('counts', data=np.asarray(vocabulary.counts,
                                                   np.int64))
    self._pool = futures.ThreadPoolExecutor(min(4, os.cpu_count() or 1))
    annotation_dtype = np.uint16 if len(vocabulary.ids) <= 1 << 16 else np.int32
    ragged = lambda name, dtype, chunk=None: _RaggedWriter(
        self._f, name, dtype, compression, self._pool, chunk)
    self._seqs = ragged('seqs', np.uint8, _BYTES_CHUNK)
    self._annotations = ragged('annotations', annotation_dtype)
    self._protein_ids = ragged('protein_ids', np.uint8, _BYTES_CHUNK)
    self._entry_ids = ragged('entry_ids', np.uint8, _BYTES_CHUNK)
    self._taxonomy_ids = _Column(self._f, 'taxonomy_ids', np.int32, None,
                                 compression, self._pool)
    self._is_test = _Column(self._f, 'is_test', bool, None, compression,
                            self._pool)
    self._num_proteins = 0
    self._flushed = False

  def append(self, records: dataset_lib.Records) -> None:
    proteins = records.proteins
    self._seqs.append_strings(proteins.seqs)
    self._annotations.append(proteins.annotation_indices,
                             np.diff(proteins.annotation_offsets))
    self._protein_ids.append_strings(records.protein_ids)
    self._entry_ids.append_strings(records.entry_ids)
    self._taxonomy_ids.append(records.taxonomy_ids)
    self._is_test.append(proteins.is_test)
    self._num_proteins += len(records)

  def flush(self) -> None:
    """Compresses and writes everything appended; then only `close` is left.
    """
    if self._flushed:
      return
    self._flushed = True
    for column in (self._seqs, self._annotations, self._protein_ids,
                   self._entry_ids, self._taxonomy_ids, self._is_test):
      column.close()
    self._pool.shutdown()
    self._f.flush()

  def close(self, metadata: Mapping[str, Any]) -> None:
    """Finishes the file, recording `metadata` (JSON-able) as its build.

    Appending ends with `flush`, which `close` calls if it has not been.
    """
    self.flush()
    self._f.attrs['build'] = io_utils.json_dumps(metadata, default=str)
    self._f.attrs['num_proteins'] = self._num_proteins
    self._f.close()


class OriginalWriter:
  """Writes protein-bert 1.0.1's dense layout (with `test_set_mask`).

  Only what the original stores survives: entry IDs, taxonomy IDs and the
  vocabulary's names and counts are not written.
  """

  def __init__(self, path: str, vocabulary: dataset_lib.Vocabulary,
               compression: Optional[str] = 'gzip'):
    self._f = h5py.File(path, 'w')
    self._f.create_dataset(
        'included_annotations',
        data=[a.encode('ascii') for a in vocabulary.ids],
        dtype=h5py.string_dtype())
    strings = h5py.string_dtype()
    self._ids = _Column(self._f, 'uniprot_ids', strings)
    self._seqs = _Column(self._f, 'seqs', strings)
    self._lengths = _Column(self._f, 'seq_lengths', np.int32)
    self._num_annotations = width = len(vocabulary.ids)
    # About 1 MiB of mask per chunk; h5py cannot chunk a zero-width array.
    self._masks = self._f.create_dataset(
        'annotation_masks', shape=(0, width), maxshape=(None, width),
        dtype=bool, chunks=(max(1, (1 << 20) // max(width, 1)), width)
        if width else None, **(_compression(compression) if width else {}))
    self._is_test = _Column(self._f, 'test_set_mask', bool)

  def append(self, records: dataset_lib.Records) -> None:
    proteins = records.proteins
    self._ids.append([s.encode() for s in records.protein_ids])
    self._seqs.append(list(proteins.seqs))
    self._lengths.append([len(s) for s in proteins.seqs])
    start = self._masks.shape[0]
    self._masks.resize(start + len(records), axis=0)
    self._masks[start:] = proteins.dense_annotations(self._num_annotations)
    self._is_test.append(proteins.is_test)

  def flush(self) -> None:
    """Compresses and writes everything appended; then only `close` is left.
    """
    self._f.flush()

  def close(self, metadata: Mapping[str, Any]) -> None:
    """Finishes the file; the original layout has no place for `metadata`."""
    del metadata
    self._f.close()


def create_writer(path: str, layout: str,
                  vocabulary: dataset_lib.Vocabulary,
                  compression: Optional[str] = 'gzip'):
  """A `SparseWriter` ('sparse') or `OriginalWriter` ('original') at `path`."""
  writers = {'sparse': SparseWriter, 'original': OriginalWriter}
  if layout not in writers:
    raise ValueError(f'Unknown layout {layout!r}; expected one of '
                     f'{dataset_lib.LAYOUTS}.')
  return writers[layout](path, vocabulary, compression)
