"""Pretraining configs: `pretrain.py` (= `:paper`), `:small` or `:demo`.

paper: the published model and the original's pretraining settings; point
  `--config.data.dataset_path` at a dataset built by `experiments.build_dataset`
  (or the original package's dataset.h5).
small: a ~3M-parameter model for a few hours on a 2-core CPU (the shipped
  `swissprot-small` was trained with it). Deviations from the paper, chosen
  because at the paper's settings a CPU-sized budget barely moves past the
  frequency baseline (see WORKSPACE_NOTES.md): 15% token noise instead of 5%
  (three times the denoising signal per sample), LAMB at 2e-3 instead of
  2e-4, and episodes of at most 512 tokens.
demo: a small model on the demo dataset bundled with the package, about a
  minute on a laptop CPU: the loss falls, metrics and checkpoints are written.
"""

from proteinbert import config as config_lib


def get_config(preset: str = 'paper'):
  config = config_lib.get_config()
  if preset == 'paper':
    return config
  if preset == 'small':
    return _small(config)
  if preset != 'demo':
    raise ValueError(f'Unknown preset {preset!r}; expected paper, small or '
                     'demo.')
  model = config.model
  model.num_blocks = 2
  model.local_dim = 64
  model.global_dim = 128
  model.num_heads = 4
  model.key_size = 16
  data = config.data
  data.episodes = ((128, 32), (512, 8), (1024, 4))
  data.batches_per_epoch = 10
  data.epochs_per_episode = 2
  data.load_chunk_size = 2000
  train = config.train
  train.num_steps = 150
  train.learning_rate = 2e-3
  train.plateau.min_learning_rate = 5e-4
  train.plateau.patience_epochs = 5
  train.log_every_steps = 10
  config.checkpoint.every_epochs = 5
  config.checkpoint.keep_every = 2
  config.eval.every_epochs = 5
  config.eval.num_proteins = 64
  config.eval.seq_len = 512
  config.eval.batch_size = 16
  return config


def _small(config):
  model = config.model
  model.num_blocks = 4
  model.local_dim = 128
  model.global_dim = 256
  model.num_heads = 4
  model.key_size = 32
  data = config.data
  # 8,192 tokens per step in every episode.
  data.episodes = ((128, 64), (256, 32), (512, 16))
  data.seq_noise_prob = 0.15
  data.batches_per_epoch = 50
  data.epochs_per_episode = 4
  data.load_chunk_size = 20_000
  train = config.train
  train.learning_rate = 2e-3
  train.plateau.patience_epochs = 10
  train.plateau.min_learning_rate = 1e-4
  train.log_every_steps = 50
  config.checkpoint.every_epochs = 10
  config.checkpoint.keep_every = 10
  config.eval.every_epochs = 10
  config.eval.num_proteins = 512
  config.eval.seq_len = 512
  config.eval.batch_size = 32
  return config
