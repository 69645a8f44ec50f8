r"""Throughput of the pretraining loader at the published episode sizes.

Builds each episode's batches on the calling thread (no prefetch), so the
numbers are what the background thread can sustain. The proteins are synthetic,
with UniRef-like lengths and GO-like annotation counts, held in memory
(`--storage=memory`) or written to a temporary HDF5 file in our layout and read
back through `dataset.open_dataset` (`--storage=hdf5`, the real read path);
`--dataset_path` measures an existing dataset file instead.

  python -m experiments.benchmark_data_loader --storage=hdf5
"""

import contextlib
import os
import tempfile
import time
from typing import Iterator, NamedTuple

from absl import app
from absl import flags
from absl import logging
import numpy as np

from experiments import in_memory
from proteinbert import config as config_lib
from proteinbert.data import batch as batch_lib
from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import dataset_writer
from proteinbert.data import loader as loader_lib

_NUM_PROTEINS = flags.DEFINE_integer(
    'num_proteins', 50_000, 'Synthetic proteins to generate.')
_NUM_ANNOTATIONS = flags.DEFINE_integer(
    'num_annotations', 8943, 'Annotation vocabulary of the synthetic data.')
_NUM_BATCHES = flags.DEFINE_integer(
    'num_batches', 300,
    'Batches timed per episode, after one warm-up batch; a multiple of '
    'batches_per_epoch includes its share of per-epoch reads.')
_STORAGE = flags.DEFINE_enum(
    'storage', 'hdf5', ['memory', 'hdf5'], 'Where the synthetic proteins live.')
_DATASET_PATH = flags.DEFINE_string(
    'dataset_path', '', 'Dataset file to read instead of synthetic data.')


def synthetic_dataset(num_proteins: int, num_annotations: int,
                      seed: int = 0) -> in_memory.InMemoryDataset:
  """Proteins with log-normal lengths (median ~300 residues, UniRef90-like).

  Half of the proteins have no annotations, the rest a Poisson(12) number,
  roughly the annotated fraction and depth of the original dataset.
  """
  rng = np.random.default_rng(seed)
  lengths = np.clip(rng.lognormal(np.log(300), 0.7, num_proteins), 20,
                    35_000).astype(np.int64)
  residues = rng.integers(0, 20, size=int(lengths.sum()), dtype=np.uint8)
  letters = np.frombuffer(b'ACDEFGHIKLMNPQRSTVWY', np.uint8)[residues].tobytes()
  bounds = np.concatenate([[0], np.cumsum(lengths)])
  seqs = [letters[b:e] for b, e in zip(bounds[:-1], bounds[1:])]
  counts = np.where(rng.random(num_proteins) < 0.5, 0,
                    rng.poisson(12, num_proteins))
  indices = np.concatenate([
      np.sort(rng.choice(num_annotations, c, replace=False)) for c in counts
  ]).astype(np.int32)
  return in_memory.InMemoryDataset(
      chunk_lib.ProteinChunk(
          seqs=seqs,
          annotation_offsets=np.concatenate([[0], np.cumsum(counts)]),
          annotation_indices=indices,
          is_test=rng.random(num_proteins) < 0.01),
      num_annotations)


def write_hdf5(dataset: in_memory.InMemoryDataset, path: str) -> None:
  """Writes `dataset` in our sparse HDF5 layout (gzip, as builds do)."""
  num = dataset.num_annotations
  vocabulary = dataset_lib.Vocabulary(
      ids=np.array([f'GO:{i:07d}' for i in range(num)]),
      names=np.full(num, ''), namespaces=np.full(num, ''),
      counts=np.full(num, -1))
  writer = dataset_writer.create_writer(path, 'sparse', vocabulary)
  n = dataset.num_proteins
  writer.append(dataset_lib.Records(
      dataset.read(0, n), protein_ids=[f'P{i}' for i in range(n)],
      entry_ids=[f'UniRef90_P{i}' for i in range(n)],
      taxonomy_ids=np.full(n, -1, np.int32)))
  writer.close({})


class LoaderRate(NamedTuple):
  """What the loader sustains on one thread.

  Attributes:
    batches_per_second: batches built per wall second.
    samples_per_second: proteins per wall second.
    slowest_seconds: the slowest batch, an epoch's first (it reads the
      epoch's proteins).
  """
  batches_per_second: float
  samples_per_second: float
  slowest_seconds: float


def loader_rate(config, dataset, num_batches: int) -> LoaderRate:
  """Times `num_batches` batches of the loader under data `config`."""
  loader = loader_lib.PretrainingLoader(dataset, config)
  loader.next_batch()  # Warm-up: the first chunk and epoch read.
  samples = 0
  times = [time.perf_counter()]
  for _ in range(num_batches):
    samples += len(loader.next_batch().tokens)
    times.append(time.perf_counter())
  seconds = times[-1] - times[0]
  return LoaderRate(num_batches / seconds, samples / seconds,
                    float(np.diff(times).max()))


def episode_config(seq_len: int, batch_size: int):
  """The default data config with one episode only."""
  config = config_lib.get_data_config()
  config.episodes = ((seq_len, batch_size),)
  return config


def _report(name: str, config, dataset, num_batches: int) -> None:
  """Prints the loader's batches/s and samples/s under `config`."""
  rate = loader_rate(config, dataset, num_batches)
  print(f'{name:>24}: {rate.batches_per_second:7.1f} batches/s '
        f'{rate.samples_per_second:8.0f} samples/s '
        f'({1e3 / rate.batches_per_second:.2f} ms/batch, slowest '
        f'{1e3 * rate.slowest_seconds:.1f} ms)', flush=True)


def benchmark(dataset, num_batches: int) -> None:
  """Each default episode on its own, then all of them as in pretraining."""
  logging.info('%d proteins, %d annotations.', dataset.num_proteins,
               dataset.num_annotations)
  for seq_len, batch_size in config_lib.get_data_config().episodes:
    _report(f'seq_len {seq_len} batch {batch_size}',
            episode_config(seq_len, batch_size), dataset, num_batches)
  _report('all episodes', config_lib.get_data_config(), dataset, num_batches)


@contextlib.contextmanager
def synthetic_storage(num_proteins: int, num_annotations: int,
                      storage: str) -> Iterator[batch_lib.ProteinDataset]:
  """`synthetic_dataset` in memory, or written to and read from HDF5."""
  dataset = synthetic_dataset(num_proteins, num_annotations)
  if storage == 'memory':
    yield dataset
    return
  with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, 'synthetic.h5')
    write_hdf5(dataset, path)
    with dataset_lib.open_dataset(path) as stored:
      yield stored


def main(argv):
  del argv
  if _DATASET_PATH.value:
    with dataset_lib.open_dataset(_DATASET_PATH.value) as dataset:
      benchmark(dataset, _NUM_BATCHES.value)
    return
  with synthetic_storage(_NUM_PROTEINS.value, _NUM_ANNOTATIONS.value,
                         _STORAGE.value) as dataset:
    benchmark(dataset, _NUM_BATCHES.value)


if __name__ == '__main__':
  app.run(main)
