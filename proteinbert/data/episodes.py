"""Length episodes: which proteins train at which sequence length, and when.

ProteinBERT pretrains in episodes of fixed (seq_len, batch_size), by default
(128, 128), (512, 64) and (1024, 32) (Brandes et al. 2022, "Pretraining";
`EpochGenerator` in the original `pretraining.py`). Proteins are streamed from
the dataset in chunks, in order, wrapping around at the end; each protein is
assigned to one episode at random, preferring the episode whose length is
closest to its own, and waits in that episode's FIFO queue. An epoch is a fixed
number of batches of one episode; the episode is re-selected (as the one with
the most queued proteins) every few epochs or every few minutes.

Queues hold dataset indices only, so their state is a handful of int arrays;
the loader reads the proteins themselves when it builds a batch.
"""

import time
from typing import Callable, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from proteinbert import tokenization
from proteinbert.data import rng_state


class Episode(NamedTuple):
  """One length regime of pretraining.

  Attributes:
    seq_len: tokens per sequence, `<START>` and `<END>` included.
    batch_size: proteins per batch, summed over all processes.
  """
  seq_len: int
  batch_size: int


def assignment_probabilities(token_lengths: np.ndarray,
                             seq_lens: np.ndarray,
                             gamma: float) -> np.ndarray:
  """The original's chance of assigning each protein to each episode.

  A protein of tokenized length l goes to the episode of length s with
  probability proportional to exp(-gamma * max(l / s, s / l)).

  Args:
    token_lengths: int [N] tokenized lengths (residues + `<START>` + `<END>`).
    seq_lens: int [E] the episodes' sequence lengths.
    gamma: how sharply proteins prefer the episode closest to their length.

  Returns:
    float64 [N, E], each row summing to 1.
  """
  ratio = (np.asarray(token_lengths, np.float64)[:, None] /
           np.asarray(seq_lens, np.float64)[None, :])
  logits = -gamma * np.maximum(ratio, 1 / ratio)
  # Subtracting the row maximum keeps a large gamma from underflowing to 0/0.
  weights = np.exp(logits - logits.max(axis=1, keepdims=True))
  return weights / weights.sum(axis=1, keepdims=True)


def assign_episodes(token_lengths: np.ndarray, seq_lens: np.ndarray,
                    gamma: float, rng: np.random.Generator) -> np.ndarray:
  """Draws one episode per protein from `assignment_probabilities`.

  Args:
    token_lengths: int [N] tokenized lengths.
    seq_lens: int [E] the episodes' sequence lengths.
    gamma: see `assignment_probabilities`.
    rng: consumes N uniforms.

  Returns:
    int64 [N] episode indices in [0, E).
  """
  cumulative = assignment_probabilities(token_lengths, seq_lens,
                                        gamma).cumsum(axis=1)
  # Rounding can leave the last cumulative sum just below 1.
  cumulative[:, -1] = 1.0
  uniforms = rng.random((len(cumulative), 1))
  return (uniforms < cumulative).argmax(axis=1)


def _frozen(array: np.ndarray) -> np.ndarray:
  """`array` made read-only, so states can share it without copying."""
  array = np.asarray(array, dtype=np.int64)
  array.flags.writeable = False
  return array


class EpisodeQueues:
  """Per-episode FIFO queues of protein indices, fed from one stream.

  The stream reads `chunk_size` proteins at a time from `[start, stop)` in
  order, going back to `start` once it reaches `stop` (the last chunk of a
  pass may be shorter), and assigns each protein to a queue with
  `assign_episodes`. Queue arrays are never modified in place, so `state()`
  hands them out without copying.
  """

  def __init__(self, seq_lengths: np.ndarray, seq_lens: Sequence[int],
               start: int, stop: int, chunk_size: int, gamma: float,
               rng: np.random.Generator):
    """Starts with empty queues at the beginning of the stream.

    Args:
      seq_lengths: int [num_proteins] residues of every protein of the
        dataset, indexed by dataset index; assignment uses the tokenized
        length, with `<START>` and `<END>`.
      seq_lens: the E episodes' sequence lengths.
      start: first dataset index of the stream.
      stop: one past the last dataset index of the stream.
      chunk_size: proteins read per load.
      gamma: see `assignment_probabilities`.
      rng: draws the assignments; owned by this object from now on.
    """
    if not 0 <= start < stop <= len(seq_lengths):
      raise ValueError(f'Empty or out-of-range stream [{start}, {stop}) over '
                       f'{len(seq_lengths)} proteins.')
    if chunk_size < 1:
      raise ValueError(f'chunk_size must be positive, got {chunk_size}.')
    self._seq_lengths = seq_lengths
    self._seq_lens = np.asarray(seq_lens)
    self._start, self._stop = start, stop
    self._chunk_size = chunk_size
    self._chunks_per_pass = -(-(stop - start) // chunk_size)
    self._gamma = gamma
    self._rng = rng
    self._position = start
    self._queues = [_frozen(np.zeros(0)) for _ in seq_lens]

  @property
  def sizes(self) -> np.ndarray:
    """int64 [E] proteins waiting in each queue."""
    return np.array([len(q) for q in self._queues], dtype=np.int64)

  def load_chunk(self) -> None:
    """Reads the next chunk of the stream into the queues."""
    chunk = np.arange(self._position,
                      min(self._position + self._chunk_size, self._stop))
    self._position += self._chunk_size
    if self._position >= self._stop:
      self._position = self._start
    token_lengths = (self._seq_lengths[chunk].astype(np.int64) +
                     tokenization.ADDED_TOKENS_PER_SEQ)
    assigned = assign_episodes(token_lengths, self._seq_lens, self._gamma,
                               self._rng)
    self._queues = [
        _frozen(np.concatenate([queue, chunk[assigned == episode]]))
        for episode, queue in enumerate(self._queues)
    ]

  def pop(self, episode: int, count: int) -> np.ndarray:
    """Removes the `count` oldest proteins of one queue, loading as needed.

    Args:
      episode: which queue.
      count: how many proteins.

    Returns:
      int64 [count] dataset indices, oldest first (read-only).
    """
    loads_without_growth = 0
    while len(self._queues[episode]) < count:
      before = len(self._queues[episode])
      self.load_chunk()
      if len(self._queues[episode]) > before:
        loads_without_growth = 0
      else:
        loads_without_growth += 1
      # Better an error than an endless loop when, say, a huge gamma leaves
      # no protein of this stream a chance of joining the episode.
      if loads_without_growth > self._chunks_per_pass:
        raise RuntimeError(
            f'A whole pass over proteins [{self._start}, {self._stop}) added '
            f'none to episode {episode} (seq_len {self._seq_lens[episode]}).')
    queue = self._queues[episode]
    self._queues[episode] = queue[count:]
    return queue[:count]

  def state(self) -> dict[str, np.ndarray]:
    """Stream position, queues and RNG state; see `restore`."""
    state = {'position': np.int64(self._position),
             'rng': rng_state.to_array(self._rng)}
    for episode, queue in enumerate(self._queues):
      state[f'queue_{episode}'] = queue
    return state

  def restore(self, state: Mapping[str, np.ndarray]) -> None:
    """Continues exactly where the object that produced `state` was."""
    position = int(state['position'])
    if not self._start <= position < self._stop:
      raise ValueError(f'Stream position {position} is outside '
                       f'[{self._start}, {self._stop}).')
    self._position = position
    self._rng = rng_state.from_array(state['rng'])
    self._queues = [
        _frozen(np.array(state[f'queue_{e}'])) for e in range(len(self._queues))
    ]


class EpisodeSelector:
  """When to re-select the episode, and which one to pick.

  The pick is the original's: the episode whose queue holds the most proteins
  (the first one on ties). The original re-selects once 15 minutes have passed
  (`rule='wall_clock'`), which makes the batch stream depend on the machine's
  speed; `rule='steps'` re-selects every `epochs_per_episode` epochs instead,
  so the stream is a pure function of the seed and the dataset.
  """

  def __init__(self, rule: str, epochs_per_episode: int,
               seconds_per_episode: float,
               clock: Callable[[], float] = time.monotonic):
    """Creates a selector that has not picked an episode yet.

    Args:
      rule: 'steps' or 'wall_clock'.
      epochs_per_episode: epochs between re-selections under 'steps'.
      seconds_per_episode: seconds between re-selections under 'wall_clock'.
      clock: seconds from an arbitrary origin; injectable for tests.
    """
    if rule not in ('steps', 'wall_clock'):
      raise ValueError(f"rule must be 'steps' or 'wall_clock', got {rule!r}.")
    if rule == 'steps' and epochs_per_episode < 1:
      raise ValueError('epochs_per_episode must be positive.')
    self._rule = rule
    self._epochs_per_episode = epochs_per_episode
    self._seconds_per_episode = seconds_per_episode
    self._clock = clock
    self.episode: Optional[int] = None
    self._epochs_in_episode = 0
    self._selected_at = clock()

  def select(self, queue_sizes: np.ndarray) -> int:
    """Picks the episode with the most queued proteins; restarts the count."""
    self.episode = int(np.argmax(queue_sizes))
    self._epochs_in_episode = 0
    self._selected_at = self._clock()
    return self.episode

  def due(self) -> bool:
    """Whether the next epoch should start with a re-selection."""
    if self._rule == 'steps':
      return self._epochs_in_episode >= self._epochs_per_episode
    return self._clock() - self._selected_at >= self._seconds_per_episode

  def count_epoch(self) -> None:
    """Records that an epoch of the current episode has started."""
    self._epochs_in_episode += 1

  def state(self) -> dict[str, np.ndarray]:
    """The current episode, its epoch count and its elapsed seconds."""
    return {
        'episode': np.int64(self.episode),
        'epochs_in_episode': np.int64(self._epochs_in_episode),
        'elapsed_seconds': np.float64(self._clock() - self._selected_at),
    }

  def restore(self, state: Mapping[str, np.ndarray]) -> None:
    """Continues the episode recorded in `state`, timer included."""
    self.episode = int(state['episode'])
    self._epochs_in_episode = int(state['epochs_in_episode'])
    self._selected_at = self._clock() - float(state['elapsed_seconds'])
