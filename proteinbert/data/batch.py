"""Pretraining batches: crop, tokenize, corrupt, weigh.

`make_batch` turns a chunk of proteins into one `Batch` exactly as the
original's `EpisodeDataManager._encode_epoch` and `EpochGenerator._encode_epoch`
do for each protein: `<START>` and `<END>` are added, a protein longer than the
episode's length is cropped at a uniformly random offset, test-set proteins
lose their annotations (so they are neither input nor target), and the input is
corrupted (`corruption.py`). `heldout_batches` uses the same recipe with a
fixed seed for evaluation.
"""

import copy
from typing import Iterator, NamedTuple, Protocol

import ml_collections
import numpy as np

from proteinbert import tokenization
from proteinbert.data import chunk as chunk_lib
from proteinbert.data import corruption


class ProteinDataset(Protocol):
  """What the loaders use of a dataset (`dataset.ProteinDataset` has it all).

  Attributes:
    num_proteins: N.
    num_annotations: A, the size of the annotation vocabulary.
    seq_lengths: int [N] residues per protein (no `<START>`/`<END>`).
  """
  num_proteins: int
  num_annotations: int
  seq_lengths: np.ndarray

  def read_indices(self, indices) -> chunk_lib.ProteinChunk:
    """The proteins at `indices` (int [M], any order, repeats allowed)."""


class Batch(NamedTuple):
  """One pretraining batch of B proteins at sequence length L.

  Attributes:
    tokens: int32 [B, L] corrupted input tokens.
    targets: int32 [B, L] original tokens.
    token_weights: float32 [B, L] 1 where `targets` is not `<PAD>`.
    corrupted: bool [B, L] positions with weight 1 whose input token differs
      from the target, for accuracy on corrupted positions.
    annotations: float32 [B, A] corrupted input annotations (0/1).
    annotation_targets: float32 [B, A] true annotations (0/1); all 0 for
      test-set proteins.
    annotation_weights: float32 [B] 1 for proteins with any target annotation.
  """
  tokens: np.ndarray
  targets: np.ndarray
  token_weights: np.ndarray
  corrupted: np.ndarray
  annotations: np.ndarray
  annotation_targets: np.ndarray
  annotation_weights: np.ndarray


def random_crop_offsets(token_lengths: np.ndarray, seq_len: int,
                        rng: np.random.Generator) -> np.ndarray:
  """Uniform crop offsets into the tokenized sequences.

  Args:
    token_lengths: int [B] tokenized lengths (with `<START>` and `<END>`).
    seq_len: window length L.
    rng: draws B integers.

  Returns:
    int64 [B] offsets, uniform over [0, max(0, length - L)]: a protein that
    fits gets 0, and a cropped one keeps `<START>` only at offset 0 and
    `<END>` only at the largest offset.
  """
  return rng.integers(0, np.maximum(token_lengths - seq_len, 0) + 1)


def make_batch(proteins: chunk_lib.ProteinChunk, seq_len: int,
               num_annotations: int, config: ml_collections.ConfigDict,
               rng: np.random.Generator) -> Batch:
  """Encodes and corrupts proteins into one batch.

  Args:
    proteins: B proteins.
    seq_len: L, tokens per sequence.
    num_annotations: A.
    config: the data config (`proteinbert.config.get_data_config()`), for the
      corruption probabilities.
    rng: the random source for crops and corruption, drawn in that order.

  Returns:
    A `Batch` of B proteins.
  """
  offsets = random_crop_offsets(
      tokenization.tokenized_lengths(proteins.seqs), seq_len, rng)
  targets = tokenization.tokenize(proteins.seqs, seq_len, crop_offsets=offsets)
  annotation_targets = proteins.dense_annotations(num_annotations)
  # As in the original, test-set proteins contribute nothing about their
  # annotations, so fine-tuning benchmarks built on them stay unseen.
  annotation_targets[proteins.is_test] = False

  tokens = corruption.corrupt_tokens(targets, config.seq_noise_prob,
                                     config.corrupt_padding, rng)
  token_weights = corruption.token_weights(targets)
  annotations = corruption.corrupt_annotations(
      annotation_targets, config.annotation_removal_prob,
      config.annotation_addition_prob, config.annotation_hide_prob, rng)
  return Batch(
      tokens=tokens,
      targets=targets,
      token_weights=token_weights,
      corrupted=(tokens != targets) & (token_weights > 0),
      annotations=annotations.astype(np.float32),
      annotation_targets=annotation_targets.astype(np.float32),
      annotation_weights=corruption.annotation_weights(annotation_targets))


def _pad_rows(batch: Batch, batch_size: int) -> Batch:
  """`batch` grown to `batch_size` rows of `<PAD>` tokens and zero weights."""
  def pad(array, value):
    widths = [(0, batch_size - len(array))] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, widths, constant_values=value)
  return Batch(*(
      pad(array, tokenization.PAD if name in ('tokens', 'targets') else 0)
      for name, array in zip(Batch._fields, batch)))


def heldout_batches(dataset: ProteinDataset, indices: np.ndarray, seq_len: int,
                    batch_size: int, config: ml_collections.ConfigDict,
                    seed: int,
                    reveal_test_annotations: bool = False) -> Iterator[Batch]:
  """Fixed evaluation batches of the pretraining task.

  The same proteins, crops and corruption come out on every call with the same
  arguments, so held-out losses are comparable across checkpoints. The last
  batch is filled up with zero-weight `<PAD>` rows, so every batch has the same
  shape.

  Args:
    dataset: the dataset.
    indices: int [M] the held-out proteins, in batch order.
    seq_len: L.
    batch_size: B.
    config: the data config, for the corruption probabilities.
    seed: seeds the crops and the corruption.
    reveal_test_annotations: evaluate annotation prediction on test-set
      proteins: their true annotations become targets (training never sees
      them) and every protein's input annotations are hidden, so the model
      predicts them from the sequence alone.

  Yields:
    ceil(M / B) batches of B rows.
  """
  rng = np.random.default_rng(seed)
  indices = np.asarray(indices)
  if reveal_test_annotations:
    config = copy.deepcopy(config)
    config.annotation_hide_prob = 1.0
  for begin in range(0, len(indices), batch_size):
    proteins = dataset.read_indices(indices[begin:begin + batch_size])
    if reveal_test_annotations:
      proteins = proteins.replace(is_test=np.zeros(len(proteins), bool))
    yield _pad_rows(
        make_batch(proteins, seq_len, dataset.num_annotations, config, rng),
        batch_size)
