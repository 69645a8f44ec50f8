"""Small shared test utilities."""

import ml_collections
import numpy as np

from proteinbert import config as config_lib
from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import dataset_writer


def tiny_model_config(**overrides) -> ml_collections.ConfigDict:
  """A fast model config (2 blocks, 16/32 channels, 10 annotations)."""
  config = config_lib.get_model_config()
  config.update(dict(num_annotations=10, num_blocks=2, local_dim=16,
                     global_dim=32, num_heads=2, key_size=8))
  config.update(overrides)
  return config


def write_tiny_dataset(path: str, num_proteins: int = 120,
                       num_annotations: int = 10, seed: int = 0) -> str:
  """A small sparse-layout dataset: random proteins of 20-300 residues.

  Every fifth protein is in the test set; each protein carries 0-3
  annotations.
  """
  rng = np.random.default_rng(seed)
  letters = np.frombuffer(b'ACDEFGHIKLMNPQRSTVWY', np.uint8)
  seqs = [rng.choice(letters, int(n)).tobytes()
          for n in rng.integers(20, 300, num_proteins)]
  counts = rng.integers(0, 4, num_proteins)
  indices = [np.sort(rng.choice(num_annotations, int(c), replace=False))
             for c in counts]
  proteins = chunk_lib.ProteinChunk(
      seqs=seqs,
      annotation_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(
          np.int64),
      annotation_indices=np.concatenate(indices).astype(np.int32),
      is_test=np.arange(num_proteins) % 5 == 0)
  return write_proteins(path, proteins, num_annotations)


def write_proteins(path: str, proteins: chunk_lib.ProteinChunk,
                   num_annotations: int) -> str:
  """Writes `proteins` as a sparse-layout dataset with made-up IDs."""
  num_proteins = len(proteins)
  ids = np.array([f'GO:{i:07d}' for i in range(num_annotations)])
  vocabulary = dataset_lib.Vocabulary(
      ids=ids, names=ids, namespaces=np.array(['molecular_function'] *
                                              num_annotations),
      counts=np.bincount(proteins.annotation_indices,
                         minlength=num_annotations).astype(np.int64))
  writer = dataset_writer.create_writer(path, 'sparse', vocabulary)
  writer.append(dataset_lib.Records(
      proteins, protein_ids=[f'P{i}' for i in range(num_proteins)],
      entry_ids=[f'UniRef90_P{i}' for i in range(num_proteins)],
      taxonomy_ids=np.full(num_proteins, -1, np.int32)))
  writer.close({})
  return path


def tiny_pretrain_config(dataset_path: str) -> ml_collections.ConfigDict:
  """A pretraining config that runs in seconds on one CPU core."""
  config = config_lib.get_config()
  config.model.update(tiny_model_config().to_dict())
  config.data.update(dict(dataset_path=dataset_path,
                          episodes=((64, 8), (128, 4)),
                          batches_per_epoch=3, epochs_per_episode=2,
                          load_chunk_size=50, prefetch_depth=2))
  config.train.update(dict(num_steps=24, learning_rate=1e-3,
                           log_every_steps=3))
  config.checkpoint.update(dict(every_epochs=2, keep_every=2))
  config.eval.update(dict(every_epochs=4, num_proteins=8, seq_len=64,
                          batch_size=4))
  return config
