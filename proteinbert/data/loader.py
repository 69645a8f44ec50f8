"""The pretraining loader: an endless, resumable stream of `Batch`es.

It follows the original's `EpochGenerator` (see `episodes.py` and `batch.py`):
proteins stream into per-episode queues; each epoch takes the next
`batches_per_epoch * batch_size` proteins of the current episode's queue,
shuffles them (as Keras' `fit` did) and cuts them into batches. Queues hold
dataset indices only; an epoch's proteins are read when it starts.

Determinism and resume. All randomness comes from numpy Generators seeded from
`config.seed`; under `episode_switch='steps'` the batches are a pure function
of the seed, the dataset and the process index. `state()` captures everything
needed to continue: a loader built with `state=` yields exactly the batches the
saved loader would have yielded next (under 'wall_clock', the episode timer
resumes from the saved elapsed seconds).

Multi-host. Episode batch sizes are global; each of `process_count` processes
streams its own contiguous shard and yields `batch_size / process_count`
proteins per batch. All processes must train the same episode at every step,
so the episode choice is made from queues that every process simulates
identically: the index-only queues of a single process streaming the whole
dataset (with one process these are the queues that supply the batches).
Wall-clock switching cannot agree across processes and is refused there.
"""

import time
from typing import Callable, Iterator, Mapping, Optional

import ml_collections
import numpy as np

from proteinbert.data import batch as batch_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import episodes as episodes_lib
from proteinbert.data import prefetch as prefetch_lib
from proteinbert.data import rng_state

# Bump when the meaning of a state key changes.
STATE_FORMAT = 1

# Distinct seed streams, so e.g. assignments never share draws with crops.
_SCHEDULE_STREAM, _SHARD_STREAM, _BATCH_STREAM = range(3)


class PretrainingLoader:
  """Yields pretraining batches for one process.

  Not thread-safe: use it from one thread, or through `prefetch()` and then
  only through the prefetcher.
  """

  def __init__(self,
               dataset: batch_lib.ProteinDataset,
               config: ml_collections.ConfigDict,
               *,
               process_index: int = 0,
               process_count: int = 1,
               state: Optional[Mapping[str, np.ndarray]] = None,
               clock: Callable[[], float] = time.monotonic):
    """Starts at the beginning of the stream, or where `state` left off.

    Args:
      dataset: the proteins (see `batch.ProteinDataset`).
      config: the data config, `proteinbert.config.get_data_config()`.
      process_index: this process, in [0, process_count).
      process_count: processes sharing the global batch.
      state: a `state()` of a loader built with the same dataset, config and
        process; None starts afresh.
      clock: seconds from an arbitrary origin, for the wall-clock rule.

    Raises:
      ValueError: a dataset without proteins, a batch size not divisible by
        process_count, wall-clock switching with several processes, or a
        state from another setup.
    """
    if not dataset.num_proteins:
      raise ValueError('The dataset holds no proteins to train on '
                       '(config.data.dataset_path).')
    self._dataset = dataset
    self._config = config
    self._process_index = process_index
    self._process_count = process_count
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index {process_index} is outside '
                       f'[0, {process_count}).')
    self._episodes = [episodes_lib.Episode(*e) for e in config.episodes]
    for episode in self._episodes:
      if episode.batch_size % process_count:
        raise ValueError(f'Batch size {episode.batch_size} (seq_len '
                         f'{episode.seq_len}) is not divisible by '
                         f'{process_count} processes.')
    if config.episode_switch == 'wall_clock' and process_count > 1:
      raise ValueError("episode_switch='wall_clock' would let processes pick "
                       "different episodes; use 'steps'.")

    seq_lens = [e.seq_len for e in self._episodes]

    def queues(start, stop, *seed_stream):
      return episodes_lib.EpisodeQueues(
          dataset.seq_lengths, seq_lens, start, stop, config.load_chunk_size,
          config.length_gamma,
          np.random.default_rng([config.seed, *seed_stream]))

    self._schedule = queues(0, dataset.num_proteins, _SCHEDULE_STREAM)
    if process_count == 1:
      self._shard = self._schedule
    else:
      start, stop = dataset_lib.shard_bounds(dataset.num_proteins,
                                             process_index, process_count)
      self._shard = queues(start, stop, _SHARD_STREAM, process_index)
    self._selector = episodes_lib.EpisodeSelector(
        config.episode_switch, config.epochs_per_episode,
        60.0 * config.minutes_per_episode, clock)
    self._rng = np.random.default_rng(
        [config.seed, _BATCH_STREAM, process_index])
    self._epoch_indices = np.zeros(0, np.int64)
    self._epoch_proteins = None
    self._batch_in_epoch = config.batches_per_epoch
    self._num_epochs = 0
    self._num_batches = 0

    if state is None:
      # As the original's setup: read one chunk, then pick the first episode.
      self._schedule.load_chunk()
      self._selector.select(self._schedule.sizes)
    else:
      self._restore(state)

  @property
  def episode(self) -> episodes_lib.Episode:
    """The last batch's episode (before any: the first one), per process.

    The batch size is this process's share.
    """
    seq_len, batch_size = self._episodes[self._selector.episode]
    return episodes_lib.Episode(seq_len, batch_size // self._process_count)

  @property
  def num_batches(self) -> int:
    """Batches yielded since the very start (resumes included)."""
    return self._num_batches

  def _start_epoch(self) -> None:
    if self._selector.due():
      self._selector.select(self._schedule.sizes)
    self._selector.count_epoch()
    episode = self._selector.episode
    global_size = (self._config.batches_per_epoch *
                   self._episodes[episode].batch_size)
    if self._shard is not self._schedule:
      self._schedule.pop(episode, global_size)
    proteins = self._shard.pop(episode, global_size // self._process_count)
    self._epoch_indices = self._rng.permutation(proteins)
    self._epoch_indices.flags.writeable = False
    self._epoch_proteins = None
    self._batch_in_epoch = 0
    self._num_epochs += 1

  def next_batch(self) -> batch_lib.Batch:
    """The next batch: [B / process_count, L] of the current episode."""
    if self._batch_in_epoch >= self._config.batches_per_epoch:
      self._start_epoch()
    if self._epoch_proteins is None:
      # One read per epoch: its proteins are close together in the dataset,
      # so this is a few contiguous reads instead of one per protein.
      self._epoch_proteins = self._dataset.read_indices(self._epoch_indices)
    seq_len, batch_size = self.episode
    begin = self._batch_in_epoch * batch_size
    proteins = self._epoch_proteins.take(np.arange(begin, begin + batch_size))
    batch = batch_lib.make_batch(proteins, seq_len,
                                 self._dataset.num_annotations, self._config,
                                 self._rng)
    self._batch_in_epoch += 1
    self._num_batches += 1
    return batch

  def __iter__(self) -> Iterator[batch_lib.Batch]:
    while True:
      yield self.next_batch()

  def prefetch(self, depth: Optional[int] = None) -> prefetch_lib.Prefetcher:
    """Builds batches in a background thread.

    Args:
      depth: batches kept ready; defaults to `config.prefetch_depth`.

    Returns:
      A `Prefetcher` yielding `(batch, state)`, where `state` is this loader's
      state right after `batch`: checkpoint the state of the last batch
      trained on. Close it (or use it in a `with` block) when done.
    """
    if depth is None:
      depth = self._config.prefetch_depth
    return prefetch_lib.Prefetcher(lambda: (self.next_batch(), self.state()), depth)

  def _fingerprint(self) -> dict[str, np.ndarray]:
    """What a state must agree with to be restored into this loader."""
    return {
        'format': np.int64(STATE_FORMAT),
        'num_proteins': np.int64(self._dataset.num_proteins),
        'process_index': np.int64(self._process_index),
        'process_count': np.int64(self._process_count),
        'seed': np.int64(self._config.seed),
        'episodes': np.array(self._episodes, np.int64),
        'batches_per_epoch': np.int64(self._config.batches_per_epoch),
        'load_chunk_size': np.int64(self._config.load_chunk_size),
    }

  def state(self) -> dict[str, np.ndarray]:
    """Everything needed to continue the stream exactly.

    Returns:
      A flat dict from str to numpy arrays of integer or float dtype (no
      objects): `np.savez` / `np.load(allow_pickle=False)` round-trip it, and
      so does JSON of `{key: value.tolist()}`.
      Keys: the fingerprint ('format', 'num_proteins', 'process_index',
      'process_count', 'seed', 'episodes' [E, 2], 'batches_per_epoch',
      'load_chunk_size'); 'num_batches', 'num_epochs', 'batch_in_epoch';
      'epoch_indices' int64 [epoch size] (the current epoch's proteins in batch
      order); 'rng' uint64 [6] (crops and corruption); 'selector/episode',
      'selector/epochs_in_episode', 'selector/elapsed_seconds';
      'schedule/position', 'schedule/rng', 'schedule/queue_<e>' int64 (dataset
      indices, oldest first); with several processes also the same under
      'shard/' for this process's own queues. Arrays are shared with the
      loader and read-only.
    """
    state = self._fingerprint()
    state.update(
        num_batches=np.int64(self._num_batches),
        num_epochs=np.int64(self._num_epochs),
        batch_in_epoch=np.int64(self._batch_in_epoch),
        epoch_indices=self._epoch_indices,
        rng=rng_state.to_array(self._rng))
    for prefix, part in self._parts().items():
      state.update({f'{prefix}/{k}': v for k, v in part.state().items()})
    return state

  def _parts(self) -> dict:
    parts = {'selector': self._selector, 'schedule': self._schedule}
    if self._shard is not self._schedule:
      parts['shard'] = self._shard
    return parts

  def _restore(self, state: Mapping[str, np.ndarray]) -> None:
    for key, expected in self._fingerprint().items():
      if key not in state or not np.array_equal(state[key], expected):
        raise ValueError(f'Loader state has {key}={state.get(key)}, but this '
                         f'loader has {expected}.')
    self._num_batches = int(state['num_batches'])
    self._num_epochs = int(state['num_epochs'])
    self._batch_in_epoch = int(state['batch_in_epoch'])
    self._epoch_indices = np.array(state['epoch_indices'], np.int64)
    self._epoch_indices.flags.writeable = False
    self._epoch_proteins = None
    self._rng = rng_state.from_array(state['rng'])
    for prefix, part in self._parts().items():
      part.restore({k[len(prefix) + 1:]: v for k, v in state.items()
                    if k.startswith(prefix + '/')})
