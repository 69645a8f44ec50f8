"""The unit of data exchanged between dataset storage and the loaders."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ProteinChunk:
  """A run of N proteins with their annotations in CSR form.

  Attributes:
    seqs: N amino-acid sequences as bytes (no <START>/<END>).
    annotation_offsets: int64 [N + 1]; protein i carries the annotations
      `annotation_indices[annotation_offsets[i]:annotation_offsets[i + 1]]`.
    annotation_indices: int32 [nnz] indices into the dataset's annotation
      vocabulary, sorted within each protein.
    is_test: bool [N]; test-set proteins, whose annotations training hides.
  """
  seqs: list
  annotation_offsets: np.ndarray
  annotation_indices: np.ndarray
  is_test: np.ndarray

  def __len__(self) -> int:
    return len(self.seqs)

  def replace(self, **changes) -> 'ProteinChunk':
    """A copy with the given fields replaced."""
    return dataclasses.replace(self, **changes)

  def dense_annotations(self, num_annotations: int) -> np.ndarray:
    """bool [N, num_annotations] annotation masks."""
    masks = np.zeros((len(self.seqs), num_annotations), dtype=bool)
    rows = np.repeat(np.arange(len(self.seqs)), np.diff(self.annotation_offsets))
    masks[rows, self.annotation_indices] = True
    return masks

  def take(self, indices: np.ndarray) -> 'ProteinChunk':
    """The proteins at `indices` (int [M]), in that order."""
    indices = np.asarray(indices, dtype=np.int64)
    begins = self.annotation_offsets[indices]
    counts = self.annotation_offsets[indices + 1] - begins
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts)
    gathered = self.annotation_indices[np.repeat(begins, counts) + within]
    return ProteinChunk(
        seqs=[self.seqs[i] for i in indices.tolist()],
        annotation_offsets=offsets,
        annotation_indices=gathered.astype(np.int32),
        is_test=self.is_test[indices])

  @staticmethod
  def concatenate(chunks) -> 'ProteinChunk':
    """One chunk holding `chunks` one after another."""
    chunks = list(chunks)
    seqs = [s for c in chunks for s in c.seqs]
    shifts = np.cumsum([0] + [c.annotation_offsets[-1] for c in chunks[:-1]])
    offsets = np.concatenate(
        [[0]] + [c.annotation_offsets[1:] + shift for c, shift in zip(chunks, shifts)])
    return ProteinChunk(
        seqs=seqs,
        annotation_offsets=offsets.astype(np.int64),
        annotation_indices=np.concatenate(
            [np.zeros(0, np.int32)] + [c.annotation_indices for c in chunks]).astype(np.int32),
        is_test=np.concatenate(
            [np.zeros(0, bool)] + [c.is_test for c in chunks]).astype(bool))
