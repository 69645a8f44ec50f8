"""Tests for proteinbert/data/episodes.py and rng_state.py."""

import numpy as np
import pytest

from proteinbert.data import episodes
from proteinbert.data import rng_state

SEQ_LENS = np.array([128, 512, 1024])


def test_assignment_probabilities_follow_the_formula():
  lengths = np.array([10, 128, 300, 512, 1024, 5000])
  probs = episodes.assignment_probabilities(lengths, SEQ_LENS, gamma=1.0)
  for length, row in zip(lengths, probs):
    raw = [np.exp(-max(length / s, s / length)) for s in SEQ_LENS]
    np.testing.assert_allclose(row, np.array(raw) / sum(raw), rtol=1e-12)


def test_large_gamma_stays_finite_and_picks_the_closest_episode():
  probs = episodes.assignment_probabilities(
      np.array([100, 600, 2000]), SEQ_LENS, gamma=1e4)
  np.testing.assert_array_equal(probs, np.eye(3))


def test_assignment_frequencies_match_probabilities():
  rng = np.random.default_rng(0)
  n = 40_000
  lengths = np.repeat([60, 400, 900, 3000], n // 4)
  assigned = episodes.assign_episodes(lengths, SEQ_LENS, 1.0, rng)
  probs = episodes.assignment_probabilities(lengths, SEQ_LENS, 1.0)
  for length in np.unique(lengths):
    rows = lengths == length
    observed = np.bincount(assigned[rows], minlength=3) / rows.sum()
    expected = probs[rows][0]
    sigma = np.sqrt(expected * (1 - expected) / rows.sum())
    np.testing.assert_array_less(np.abs(observed - expected), 5 * sigma + 1e-9)


def _queues(start=0, stop=23, chunk_size=5, seed=0):
  lengths = np.random.default_rng(1).integers(10, 1500, size=30)
  return episodes.EpisodeQueues(lengths, SEQ_LENS, start, stop, chunk_size,
                                1.0, np.random.default_rng(seed))


def test_queues_stream_the_range_in_order_and_wrap():
  queues = _queues(start=3, stop=23, chunk_size=7)
  for _ in range(3):  # 7 + 7 + 6 = one pass over [3, 23).
    queues.load_chunk()
  state = queues.state()
  everything = np.concatenate([state[f'queue_{e}'] for e in range(3)])
  np.testing.assert_array_equal(np.sort(everything), np.arange(3, 23))
  for e in range(3):  # FIFO in stream order.
    assert np.all(np.diff(state[f'queue_{e}']) > 0)
  assert int(state['position']) == 3
  queues.load_chunk()
  assert queues.sizes.sum() == 27


def test_pop_is_fifo_and_loads_only_when_short():
  queues = _queues()
  queues.load_chunk()
  queues.load_chunk()
  episode = int(np.argmax(queues.sizes))
  head = queues.state()[f'queue_{episode}']
  half = len(head) // 2
  np.testing.assert_array_equal(queues.pop(episode, half), head[:half])
  assert int(queues.state()['position']) == 10  # Nothing loaded.
  popped = queues.pop(episode, 40)
  assert popped.shape == (40,)
  np.testing.assert_array_equal(popped[:len(head) - half], head[half:])
  with pytest.raises(ValueError):
    popped[0] = 0  # Read-only: states share these arrays.


def test_queue_state_restores_exactly():
  queues = _queues()
  queues.pop(0, 9)
  restored = _queues(seed=99)
  restored.restore(queues.state())
  for _ in range(5):
    np.testing.assert_array_equal(queues.pop(2, 4), restored.pop(2, 4))
  np.testing.assert_array_equal(queues.sizes, restored.sizes)


def test_queues_reject_empty_streams():
  with pytest.raises(ValueError):
    _queues(start=5, stop=5)


class FakeClock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


def test_selector_picks_the_fullest_queue_first_on_ties():
  selector = episodes.EpisodeSelector('steps', 2, 0.0)
  assert selector.select(np.array([3, 7, 7])) == 1


def test_steps_rule_reselects_every_k_epochs():
  selector = episodes.EpisodeSelector('steps', 3, 0.0)
  selector.select(np.array([1, 0, 0]))
  dues = []
  for _ in range(7):
    dues.append(selector.due())
    if dues[-1]:
      selector.select(np.array([1, 0, 0]))
    selector.count_epoch()
  assert dues == [False, False, False, True, False, False, True]


def test_wall_clock_rule_and_its_state():
  clock = FakeClock()
  selector = episodes.EpisodeSelector('wall_clock', 1, 60.0, clock)
  selector.select(np.array([0, 5, 1]))
  clock.now += 59.0
  assert not selector.due()
  state = selector.state()
  assert float(state['elapsed_seconds']) == 59.0

  clock.now += 500.0  # A restored selector counts from the saved elapsed time.
  restored = episodes.EpisodeSelector('wall_clock', 1, 60.0, clock)
  restored.restore(state)
  assert restored.episode == 1 and not restored.due()
  clock.now += 1.0
  assert restored.due()


def test_rng_state_round_trip():
  rng = np.random.default_rng(123)
  rng.random(3)
  rng.integers(0, 10, dtype=np.uint32)  # Leaves a buffered uint32.
  words = rng_state.to_array(rng)
  assert words.dtype == np.uint64 and words.shape == (6,)
  copy = rng_state.from_array(words)
  np.testing.assert_array_equal(rng.random(5), copy.random(5))
  assert rng.integers(0, 2**32, dtype=np.uint32) == copy.integers(
      0, 2**32, dtype=np.uint32)


def test_rng_state_rejects_other_bit_generators():
  with pytest.raises(ValueError):
    rng_state.to_array(np.random.Generator(np.random.MT19937(0)))


def test_pop_fails_instead_of_looping_on_an_unreachable_episode():
  queues = episodes.EpisodeQueues(np.full(10, 100), SEQ_LENS, 0, 10, 3, 1e4,
                                  np.random.default_rng(0))
  with pytest.raises(RuntimeError, match='episode 2'):
    queues.pop(2, 1)
