"""Tests for proteinbert/data/corruption.py."""

import numpy as np

from proteinbert import tokenization
from proteinbert.data import corruption


def _within(observed, expected, n, sigmas=5):
  """Whether a Bernoulli rate over n trials is within `sigmas` of expected."""
  sigma = np.sqrt(expected * (1 - expected) / n)
  return abs(observed - expected) <= sigmas * sigma


def test_token_noise_rate_and_uniform_replacements():
  rng = np.random.default_rng(0)
  targets = rng.integers(0, tokenization.VOCAB_SIZE, size=(400, 500),
                         dtype=np.int32)
  tokens = corruption.corrupt_tokens(targets, 0.05, True, rng)
  assert tokens.dtype == np.int32 and tokens.shape == targets.shape
  # A replacement equals the original 1 time in 26.
  changed = tokens != targets
  assert _within(changed.mean(), 0.05 * 25 / 26, changed.size)
  counts = np.bincount(tokens[changed], minlength=tokenization.VOCAB_SIZE)
  expected = changed.sum() / tokenization.VOCAB_SIZE
  assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_padding_is_corrupted_only_when_asked():
  rng = np.random.default_rng(1)
  targets = np.full((200, 100), tokenization.PAD, np.int32)
  targets[:, :10] = 3
  kept = corruption.corrupt_tokens(targets, 0.5, False, rng)
  np.testing.assert_array_equal(kept[:, 10:], tokenization.PAD)
  assert (kept[:, :10] != 3).any()
  noisy = corruption.corrupt_tokens(targets, 0.5, True, rng)
  assert (noisy[:, 10:] != tokenization.PAD).mean() > 0.4


def test_annotation_noise_rates():
  rng = np.random.default_rng(2)
  num_proteins, num_annotations = 4000, 1000
  targets = rng.random((num_proteins, num_annotations)) < 0.02
  targets[:, :20] = True  # So a visible protein never loses them all.
  inputs = corruption.corrupt_annotations(targets, 0.25, 1e-3, 0.5, rng)
  assert inputs.dtype == bool and inputs.shape == targets.shape

  hidden = ~inputs.any(axis=1)
  assert _within(hidden.mean(), 0.5, num_proteins)
  visible_targets, visible_inputs = targets[~hidden], inputs[~hidden]
  removed = ~visible_inputs[visible_targets]
  assert _within(removed.mean(), 0.25, removed.size)
  added = visible_inputs[~visible_targets]
  assert _within(added.mean(), 1e-3, added.size)


def test_annotation_noise_with_published_rates_adds_rarely():
  rng = np.random.default_rng(3)
  targets = np.zeros((2000, 8943), bool)
  inputs = corruption.corrupt_annotations(targets, 0.25, 1e-4, 0.0, rng)
  assert _within(inputs.mean(), 1e-4, inputs.size)


def test_no_noise_keeps_annotations():
  rng = np.random.default_rng(4)
  targets = rng.random((50, 30)) < 0.3
  np.testing.assert_array_equal(
      corruption.corrupt_annotations(targets, 0.0, 0.0, 0.0, rng), targets)


def test_loss_weights():
  targets = np.array([[23, 0, 1, 24, 25, 25], [23, 5, 24, 25, 25, 25]])
  np.testing.assert_array_equal(
      corruption.token_weights(targets),
      [[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
  assert corruption.token_weights(targets).dtype == np.float32
  annotations = np.array([[0, 1, 0], [0, 0, 0]], bool)
  weights = corruption.annotation_weights(annotations)
  np.testing.assert_array_equal(weights, [1, 0])
  assert weights.dtype == np.float32
