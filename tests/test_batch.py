"""Tests for proteinbert/data/batch.py."""

import numpy as np

from experiments import in_memory
from proteinbert import config as config_lib
from proteinbert import tokenization
from proteinbert.data import batch as batch_lib
from proteinbert.data import chunk as chunk_lib

NUM_ANNOTATIONS = 12


def _chunk(seqs, annotations, is_test):
  """ProteinChunk from byte strings and per-protein annotation lists."""
  offsets = np.cumsum([0] + [len(a) for a in annotations])
  return chunk_lib.ProteinChunk(
      seqs=list(seqs),
      annotation_offsets=offsets.astype(np.int64),
      annotation_indices=np.array(sum(annotations, []), np.int32),
      is_test=np.array(is_test, bool))


def _random_seq(rng, length):
  return rng.choice(np.frombuffer(b'ACDEFGHIKLMNPQRSTVWY', np.uint8),
                    size=length).tobytes()


def _noiseless_config():
  config = config_lib.get_data_config()
  config.seq_noise_prob = 0.0
  config.annotation_removal_prob = 0.0
  config.annotation_addition_prob = 0.0
  config.annotation_hide_prob = 0.0
  return config


def test_crop_offsets_are_uniform():
  rng = np.random.default_rng(0)
  lengths = np.array([10, 20, 26])
  offsets = np.stack([batch_lib.random_crop_offsets(lengths, 20, rng)
                      for _ in range(14_000)])
  np.testing.assert_array_equal(offsets[:, :2], 0)  # They fit.
  counts = np.bincount(offsets[:, 2], minlength=7)
  assert counts.shape == (7,)  # Offsets 0..6 = 26 - 20.
  np.testing.assert_allclose(counts / len(offsets), 1 / 7, atol=0.02)


def test_cropping_keeps_start_and_end_only_at_the_ends():
  rng = np.random.default_rng(1)
  seq = _random_seq(rng, 40)
  proteins = _chunk([seq] * 600, [[]] * 600, [False] * 600)
  batch = batch_lib.make_batch(proteins, 16, NUM_ANNOTATIONS,
                               _noiseless_config(), rng)
  full = tokenization.tokenize([seq])[0]  # 42 tokens.
  windows = {tuple(full[o:o + 16]): o for o in range(len(full) - 16 + 1)}
  offsets = np.array([windows[tuple(row)] for row in batch.targets])
  assert set(offsets) == set(range(27))
  np.testing.assert_array_equal(
      batch.targets[:, 0] == tokenization.START, offsets == 0)
  np.testing.assert_array_equal(
      (batch.targets == tokenization.END).any(axis=1), offsets == 26)
  np.testing.assert_array_equal(batch.token_weights, 1)


def test_batch_fields_weights_and_test_set_hiding():
  rng = np.random.default_rng(2)
  proteins = _chunk(
      [b'MKV', b'ACDEFGHIKLMNPQRSTVWY' * 3, b'MMM', b'KK'],
      [[1, 4], [0], [2, 3, 5], []],
      [False, False, True, False])
  config = config_lib.get_data_config()
  config.annotation_hide_prob = 0.0
  batch = batch_lib.make_batch(proteins, 32, NUM_ANNOTATIONS, config, rng)

  for name, dtype, shape in [
      ('tokens', np.int32, (4, 32)), ('targets', np.int32, (4, 32)),
      ('token_weights', np.float32, (4, 32)), ('corrupted', bool, (4, 32)),
      ('annotations', np.float32, (4, NUM_ANNOTATIONS)),
      ('annotation_targets', np.float32, (4, NUM_ANNOTATIONS)),
      ('annotation_weights', np.float32, (4,))]:
    array = getattr(batch, name)
    assert array.dtype == dtype and array.shape == shape, name

  np.testing.assert_array_equal(batch.token_weights.sum(axis=1),
                                [5, 32, 5, 4])
  np.testing.assert_array_equal(
      batch.corrupted,
      (batch.tokens != batch.targets) & (batch.targets != tokenization.PAD))
  expected_targets = np.zeros((4, NUM_ANNOTATIONS), np.float32)
  expected_targets[0, [1, 4]] = 1
  expected_targets[1, 0] = 1
  np.testing.assert_array_equal(batch.annotation_targets, expected_targets)
  # The test-set protein shows no annotations and is out of the loss.
  np.testing.assert_array_equal(batch.annotations[2], 0)
  np.testing.assert_array_equal(batch.annotation_weights, [1, 1, 0, 0])


def test_heldout_batches_are_fixed_and_padded():
  rng = np.random.default_rng(3)
  seqs = [_random_seq(rng, n) for n in rng.integers(5, 60, size=11)]
  dataset = in_memory.InMemoryDataset(
      _chunk(seqs, [[i % NUM_ANNOTATIONS] for i in range(11)], [False] * 11),
      NUM_ANNOTATIONS)
  config = config_lib.get_data_config()
  indices = np.array([7, 1, 3, 9, 0])

  def run():
    return list(batch_lib.heldout_batches(dataset, indices, 24, 2, config, 5))

  first, second = run(), run()
  assert len(first) == 3
  for a, b in zip(first, second):
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x, y)
  last = first[-1]
  assert last.tokens.shape == (2, 24)
  np.testing.assert_array_equal(last.tokens[1], tokenization.PAD)
  np.testing.assert_array_equal(last.token_weights[1], 0)
  assert last.annotation_weights[1] == 0 and last.annotation_weights[0] == 1


def test_heldout_batches_can_reveal_test_annotations_as_targets_only():
  rng = np.random.default_rng(4)
  seqs = [_random_seq(rng, 20) for _ in range(4)]
  annotations = [[0, 3], [5], [], [7]]
  dataset = in_memory.InMemoryDataset(
      _chunk(seqs, annotations, [True, True, False, False]), NUM_ANNOTATIONS)
  config = config_lib.get_data_config()
  hidden, = batch_lib.heldout_batches(dataset, np.arange(4), 24, 4, config, 0)
  revealed, = batch_lib.heldout_batches(dataset, np.arange(4), 24, 4, config,
                                        0, reveal_test_annotations=True)
  np.testing.assert_array_equal(hidden.annotation_weights, [0, 0, 0, 1])
  np.testing.assert_array_equal(revealed.annotation_weights, [1, 1, 0, 1])
  assert revealed.annotation_targets[0, 3] == 1
  np.testing.assert_array_equal(revealed.annotations, 0)
  assert config.annotation_hide_prob == 0.5  # The caller's config is intact.


def test_protein_chunk_replace_with_many_proteins():
  chunk = _chunk([b'A'] * 7, [[]] * 7, [True] * 7)
  replaced = chunk.replace(is_test=np.zeros(7, bool))
  assert len(replaced) == 7 and not replaced.is_test.any()
