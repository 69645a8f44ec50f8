"""A dataset held in memory, for tests and benchmarks."""

import numpy as np

from proteinbert.data import chunk as chunk_lib


class InMemoryDataset:
  """Serves a `ProteinChunk` as `dataset.ProteinDataset` serves a file.

  Attributes:
    num_proteins: N.
    num_annotations: A.
    seq_lengths: int64 [N] residues per protein.
    is_test: bool [N] test-set proteins.
  """

  def __init__(self, proteins: chunk_lib.ProteinChunk, num_annotations: int):
    """Serves `proteins`, annotated from a vocabulary of `num_annotations`."""
    self._proteins = proteins
    self.num_proteins = len(proteins)
    self.num_annotations = num_annotations
    self.seq_lengths = np.array([len(s) for s in proteins.seqs], np.int64)
    self.is_test = np.asarray(proteins.is_test, bool)

  def read(self, start: int, stop: int) -> chunk_lib.ProteinChunk:
    """Proteins [start, stop)."""
    return self._proteins.take(np.arange(start, stop))

  def read_indices(self, indices) -> chunk_lib.ProteinChunk:
    """The proteins at `indices` (int [M]), in that order."""
    return self._proteins.take(np.asarray(indices))
