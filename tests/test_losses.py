"""The pretraining objective: masking, Keras reduction, metrics."""

import jax
import numpy as np
import pytest

from proteinbert import model as model_lib
from proteinbert.data import batch as batch_lib
from proteinbert.training import losses


def _batch(targets, weights, corrupted, annotation_targets, annotation_weights):
  targets = np.asarray(targets, np.int32)
  return batch_lib.Batch(
      tokens=targets, targets=targets,
      token_weights=np.asarray(weights, np.float32),
      corrupted=np.asarray(corrupted, bool),
      annotations=np.zeros_like(annotation_targets, np.float32),
      annotation_targets=np.asarray(annotation_targets, np.float32),
      annotation_weights=np.asarray(annotation_weights, np.float32))


def _output(token_logits, annotation_logits):
  return model_lib.ModelOutput(np.asarray(token_logits, np.float32),
                               np.asarray(annotation_logits, np.float32),
                               (), ())


def test_keras_reduction_and_masking():
  rng = np.random.default_rng(0)
  token_logits = rng.normal(size=(2, 3, 26))
  annotation_logits = rng.normal(size=(2, 4))
  targets = [[23, 5, 24], [23, 24, 25]]
  weights = [[1, 1, 1], [1, 1, 0]]
  annotation_targets = [[1, 0, 0, 1], [0, 0, 0, 0]]
  batch = _batch(targets, weights, [[0, 1, 0], [0, 0, 0]],
                 annotation_targets, [1, 0])
  loss, metrics = losses.pretraining_loss(
      _output(token_logits, annotation_logits), batch, 0.5)

  log_probs = np.asarray(jax.nn.log_softmax(token_logits))
  ce = -np.take_along_axis(log_probs, np.asarray(targets)[..., None], -1)[..., 0]
  p = 1 / (1 + np.exp(-annotation_logits))
  bce = -(np.asarray(annotation_targets) * np.log(p) + (
      1 - np.asarray(annotation_targets)) * np.log(1 - p)).mean(-1)
  # Keras divides weighted sums by the number of weight entries.
  want = (ce * weights).sum() / 6 + 0.5 * bce[0] / 2
  assert float(loss) == pytest.approx(want, rel=1e-5)
  assert float(metrics['token_loss']) == pytest.approx(
      (ce * weights).sum() / 5, rel=1e-5)
  assert float(metrics['annotation_loss']) == pytest.approx(bce[0], rel=1e-5)
  assert float(metrics['token_count']) == 5
  assert float(metrics['annotated_count']) == 1


def test_padding_and_unannotated_proteins_do_not_move_the_loss():
  rng = np.random.default_rng(1)
  token_logits = rng.normal(size=(1, 4, 26))
  annotation_logits = rng.normal(size=(2, 3))
  batch = _batch([[23, 1, 24, 25]], [[1, 1, 1, 0]], [[0, 0, 0, 0]],
                 [[1, 0, 0], [0, 0, 0]], [1, 0])
  base, _ = losses.pretraining_loss(
      _output(token_logits, annotation_logits), batch)
  token_logits[0, 3] += 100.0        # The <PAD> position.
  annotation_logits[1] += 100.0      # The unannotated protein.
  moved, _ = losses.pretraining_loss(
      _output(token_logits, annotation_logits), batch)
  assert float(moved) == pytest.approx(float(base), rel=1e-6)


def test_accuracies():
  token_logits = np.full((1, 4, 26), -5.0)
  for position, token in enumerate([23, 3, 7, 24]):
    token_logits[0, position, token] = 5.0
  targets = [[23, 3, 8, 24]]  # Position 2 is wrong.
  batch = _batch(targets, [[1, 1, 1, 1]], [[0, 0, 1, 1]],
                 np.zeros((1, 2)), [0])
  _, metrics = losses.pretraining_loss(
      _output(token_logits, np.zeros((1, 2))), batch)
  assert float(metrics['token_accuracy']) == pytest.approx(0.75)
  assert float(metrics['corrupted_token_accuracy']) == pytest.approx(0.5)


def test_denoising_metrics_leave_the_shown_token_out():
  # Two corrupted positions (shown 3 -> target 5, shown 7 -> target 9), one
  # clean position and one <PAD>.
  logits = np.zeros((1, 4, 26))
  logits[0, 0, 3], logits[0, 0, 5] = 9.0, 2.0     # Copies, then the target.
  logits[0, 1, 7], logits[0, 1, 4] = 9.0, 2.0     # Copies, then a wrong one.
  targets = np.array([[5, 9, 2, 25]], np.int32)
  tokens = np.array([[3, 7, 2, 25]], np.int32)
  batch = batch_lib.Batch(
      tokens=tokens, targets=targets,
      token_weights=np.array([[1, 1, 1, 0]], np.float32),
      corrupted=tokens != targets, annotations=np.zeros((1, 1), np.float32),
      annotation_targets=np.zeros((1, 1), np.float32),
      annotation_weights=np.zeros(1, np.float32))
  got = losses.denoising_metrics(logits, batch)
  assert float(got['corrupted_count']) == 2
  assert float(got['denoising_accuracy']) == pytest.approx(0.5)
  # Without the shown token: 25 remaining logits, one of them 2.
  others = np.log(np.exp(2.0) + 24)
  want = ((others - 2.0) + (others - 0.0)) / 2
  assert float(got['denoising_loss']) == pytest.approx(want, rel=1e-5)
  full = np.log(np.exp(9.0) + np.exp(2.0) + 24)
  want = ((full - 2.0) + (full - 0.0)) / 2
  assert float(got['corrupted_token_loss']) == pytest.approx(want, rel=1e-5)


def test_frequency_logits_are_the_posterior_of_uniform_replacement():
  rng = np.random.default_rng(0)
  frequencies = rng.random(26)
  frequencies /= frequencies.sum()
  rho = 0.15
  tokens = np.array([[4, 11]], np.int32)
  log_posterior = np.asarray(jax.nn.log_softmax(
      losses.frequency_logits(tokens, frequencies, rho)))
  for position, shown in enumerate(tokens[0]):
    joint = frequencies * (rho / 26 + (1 - rho) * (np.arange(26) == shown))
    np.testing.assert_allclose(np.exp(log_posterior[0, position]),
                               joint / joint.sum(), rtol=1e-5)


def test_token_frequencies_count_residues_and_ends():
  frequencies = losses.token_frequencies(['AAC', b'C'])
  counts = np.zeros(26)
  counts[0], counts[1] = 2, 2          # A, C.
  counts[23], counts[24] = 2, 2        # <START>, <END>.
  np.testing.assert_allclose(frequencies, counts / counts.sum(), rtol=1e-6)


def test_no_annotations_leave_only_the_token_term():
  rng = np.random.default_rng(2)
  token_logits = rng.normal(size=(2, 3, 26))
  batch = _batch([[23, 5, 24], [23, 4, 24]], np.ones((2, 3)),
                 np.zeros((2, 3)), np.zeros((2, 0)), [0, 0])
  loss, metrics = losses.pretraining_loss(
      _output(token_logits, np.zeros((2, 0))), batch)
  assert np.isfinite(float(loss))
  assert float(loss) == pytest.approx(float(metrics['token_loss']), rel=1e-6)
