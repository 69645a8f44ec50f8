"""Tests for proteinbert/data/loader.py."""

import io
import json

import numpy as np
import pytest

from experiments import in_memory
from proteinbert import config as config_lib
from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import loader as loader_lib
from tests import helpers

NUM_PROTEINS = 400
NUM_ANNOTATIONS = 20


def _dataset(seed=0):
  """Random proteins of 5-150 residues, a tenth of them in the test set."""
  rng = np.random.default_rng(seed)
  residues = np.frombuffer(b'ACDEFGHIKLMNPQRSTVWY', np.uint8)
  seqs = [rng.choice(residues, size=n).tobytes()
          for n in rng.integers(5, 150, size=NUM_PROTEINS)]
  counts = rng.integers(0, 4, size=NUM_PROTEINS)
  annotations = [np.sort(rng.choice(NUM_ANNOTATIONS, c, replace=False))
                 for c in counts]
  return in_memory.InMemoryDataset(
      chunk_lib.ProteinChunk(
          seqs=seqs,
          annotation_offsets=np.concatenate([[0], np.cumsum(counts)]),
          annotation_indices=np.concatenate(annotations).astype(np.int32),
          is_test=rng.random(NUM_PROTEINS) < 0.1),
      NUM_ANNOTATIONS)


def _config(**overrides):
  config = config_lib.get_data_config()
  config.episodes = ((16, 8), (32, 4), (64, 2))
  config.batches_per_epoch = 3
  config.load_chunk_size = 40
  config.epochs_per_episode = 2
  config.update(overrides)
  return config


def _take(loader, n):
  return [loader.next_batch() for _ in range(n)]


def _assert_same(batches, others):
  assert len(batches) == len(others)
  for batch, other in zip(batches, others):
    for name, x, y in zip(batch._fields, batch, other):
      np.testing.assert_array_equal(x, y, err_msg=name)


def _round_trip(state, file_format='npz'):
  """The state after saving and loading it as an npz or JSON file."""
  if file_format == 'json':
    return json.loads(json.dumps({k: v.tolist() for k, v in state.items()}))
  buffer = io.BytesIO()
  np.savez(buffer, **state)
  buffer.seek(0)
  return dict(np.load(buffer, allow_pickle=False))


def test_same_seed_same_batches_other_seed_other_batches():
  dataset = _dataset()
  batches = _take(loader_lib.PretrainingLoader(dataset, _config()), 40)
  _assert_same(batches,
               _take(loader_lib.PretrainingLoader(dataset, _config()), 40))
  other = _take(loader_lib.PretrainingLoader(dataset, _config(seed=1)), 40)
  assert any(a.tokens.shape != b.tokens.shape or
             not np.array_equal(a.tokens, b.tokens)
             for a, b in zip(batches, other))


def test_batches_follow_the_episodes():
  loader = loader_lib.PretrainingLoader(_dataset(),
                                        _config(epochs_per_episode=1))
  seen = set()
  for _ in range(90):
    batch = loader.next_batch()
    seq_len, batch_size = loader.episode
    assert batch.tokens.shape == (batch_size, seq_len)
    assert batch.annotations.shape == (batch_size, NUM_ANNOTATIONS)
    seen.add(seq_len)
  assert seen == {16, 32, 64}
  assert loader.num_batches == 90


def test_batches_hold_the_epoch_proteins_with_test_annotations_hidden():
  dataset = _dataset()
  loader = loader_lib.PretrainingLoader(dataset, _config())
  for _ in range(30):
    batch = loader.next_batch()
    state = loader.state()
    batch_size = loader.episode.batch_size
    end = int(state['batch_in_epoch']) * batch_size
    rows = state['epoch_indices'][end - batch_size:end]
    expected = dataset.read_indices(rows).dense_annotations(NUM_ANNOTATIONS)
    expected[dataset.is_test[rows]] = False
    np.testing.assert_array_equal(batch.annotation_targets, expected)
    np.testing.assert_array_equal(batch.token_weights.sum(axis=1),
                                  np.minimum(dataset.seq_lengths[rows] + 2,
                                             loader.episode.seq_len))


@pytest.mark.parametrize('num_before,file_format',
                         [(1, 'npz'), (3, 'npz'), (7, 'json'), (14, 'npz')])
def test_resume_from_state_is_exact(num_before, file_format):
  dataset = _dataset()
  reference = _take(loader_lib.PretrainingLoader(dataset, _config()),
                    num_before + 25)
  loader = loader_lib.PretrainingLoader(dataset, _config())
  _take(loader, num_before)
  state = _round_trip(loader.state(), file_format)
  resumed = loader_lib.PretrainingLoader(dataset, _config(), state=state)
  assert resumed.num_batches == num_before
  _assert_same(_take(resumed, 25), reference[num_before:])


def test_resume_through_the_prefetch_thread():
  dataset = _dataset()
  reference = _take(loader_lib.PretrainingLoader(dataset, _config()), 30)
  with loader_lib.PretrainingLoader(dataset, _config()).prefetch(3) as items:
    consumed = [next(items) for _ in range(10)]
  _assert_same([batch for batch, _ in consumed], reference[:10])
  state = consumed[-1][1]
  assert int(state['num_batches']) == 10
  resumed = loader_lib.PretrainingLoader(dataset, _config(), state=state)
  _assert_same(_take(resumed, 20), reference[10:])


def test_state_is_integer_and_float_arrays():
  loader = loader_lib.PretrainingLoader(_dataset(), _config())
  _take(loader, 5)
  for key, value in loader.state().items():
    assert np.asarray(value).dtype.kind in 'iuf', key


def test_restore_rejects_a_state_from_another_setup():
  dataset = _dataset()
  state = loader_lib.PretrainingLoader(dataset, _config()).state()
  with pytest.raises(ValueError, match='seed'):
    loader_lib.PretrainingLoader(dataset, _config(seed=3), state=state)
  with pytest.raises(ValueError, match='process_count'):
    loader_lib.PretrainingLoader(dataset, _config(), state=state,
                                 process_index=0, process_count=2)


def test_producer_errors_surface_in_the_consumer():
  dataset = _dataset()
  read_indices = dataset.read_indices
  calls = []

  def failing_read(indices):
    calls.append(1)
    if len(calls) > 1:  # The second epoch's read.
      raise OSError('disk gone')
    return read_indices(indices)

  dataset.read_indices = failing_read
  with loader_lib.PretrainingLoader(dataset, _config()).prefetch(2) as items:
    for _ in range(3):
      next(items)
    with pytest.raises(OSError, match='disk gone'):
      next(items)


def test_processes_read_disjoint_shards_and_agree_on_episodes():
  dataset = _dataset()
  loaders = [
      loader_lib.PretrainingLoader(dataset, _config(), process_index=i,
                                   process_count=2) for i in range(2)
  ]
  single = loader_lib.PretrainingLoader(dataset, _config())
  bounds = [dataset_lib.shard_bounds(NUM_PROTEINS, i, 2) for i in range(2)]
  assert bounds[0][1] <= bounds[1][0]
  for _ in range(60):
    batches = [loader.next_batch() for loader in loaders]
    single.next_batch()
    # Every process trains the episode a single process would train.
    assert loaders[0].episode == loaders[1].episode
    assert loaders[0].episode.seq_len == single.episode.seq_len
    assert loaders[0].episode.batch_size * 2 == single.episode.batch_size
    for loader, batch, (start, stop) in zip(loaders, batches, bounds):
      assert batch.tokens.shape == tuple(loader.episode)[::-1]
      proteins = loader.state()['epoch_indices']
      assert np.all((proteins >= start) & (proteins < stop))


def test_multi_host_resume_is_exact():
  dataset = _dataset()
  make = lambda **kw: loader_lib.PretrainingLoader(
      dataset, _config(), process_index=1, process_count=2, **kw)
  reference = _take(make(), 30)
  loader = make()
  _take(loader, 11)
  _assert_same(_take(make(state=_round_trip(loader.state())), 19),
               reference[11:])


def test_invalid_multi_host_setups():
  dataset = _dataset()
  with pytest.raises(ValueError, match='divisible'):
    loader_lib.PretrainingLoader(dataset, _config(), process_count=4)
  with pytest.raises(ValueError, match='wall_clock'):
    loader_lib.PretrainingLoader(dataset, _config(episode_switch='wall_clock'),
                                 process_count=2)


def test_wall_clock_rule_reselects_after_the_time_is_up():
  now = [0.0]
  config = _config(episode_switch='wall_clock', minutes_per_episode=1.0)
  loader = loader_lib.PretrainingLoader(_dataset(), config,
                                        clock=lambda: now[0])
  epochs_in_episode = []
  for step in range(12):  # Four epochs of three batches.
    if step == 6:
      now[0] += 61.0
    loader.next_batch()
    epochs_in_episode.append(int(loader.state()['selector/epochs_in_episode']))
  assert epochs_in_episode == [1] * 3 + [2] * 3 + [1] * 3 + [2] * 3


def test_hdf5_dataset_gives_the_same_batches(tmp_path):
  memory = _dataset()
  proteins = memory.read(0, NUM_PROTEINS)
  path = helpers.write_proteins(str(tmp_path / 'tiny.h5'), proteins,
                                NUM_ANNOTATIONS)

  reference = _take(loader_lib.PretrainingLoader(memory, _config()), 30)
  with dataset_lib.open_dataset(path) as stored:
    loader = loader_lib.PretrainingLoader(stored, _config())
    _assert_same(_take(loader, 12), reference[:12])
    resumed = loader_lib.PretrainingLoader(stored, _config(),
                                           state=loader.state())
    _assert_same(_take(resumed, 18), reference[12:])


def test_a_dataset_without_proteins_is_refused():
  empty = in_memory.InMemoryDataset(chunk_lib.ProteinChunk(
      seqs=[], annotation_offsets=np.zeros(1, np.int64),
      annotation_indices=np.zeros(0, np.int32), is_test=np.zeros(0, bool)), 10)
  with pytest.raises(ValueError, match='holds no proteins'):
    loader_lib.PretrainingLoader(empty, _config())
