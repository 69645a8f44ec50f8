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
    config.model.update(dict(num_blocks=4, local_dim=128, global_dim=256,
                             num_heads=4, key_size=32))
    # 8,192 tokens per step in every episode.
    config.data.update(dict(episodes=((128, 64), (256, 32), (512, 16)),
                            seq_noise_prob=0.15, batches_per_epoch=50,
                            epochs_per_episode=4, load_chunk_size=20_000))
    config.train.update(dict(learning_rate=2e-3, log_every_steps=50))
    config.train.plateau.update(dict(patience_epochs=10,
                                     min_learning_rate=1e-4))
    config.checkpoint.update(dict(every_epochs=10, keep_every=10))
    config.eval.update(dict(every_epochs=10, num_proteins=512, seq_len=512,
                            batch_size=32))
    return config
  if preset != 'demo':
    raise ValueError(f'Unknown preset {preset!r}; expected paper, small or '
                     'demo.')
  config.model.update(dict(num_blocks=2, local_dim=64, global_dim=128,
                           num_heads=4, key_size=16))
  config.data.update(dict(episodes=((128, 32), (512, 8), (1024, 4)),
                          batches_per_epoch=10, epochs_per_episode=2,
                          load_chunk_size=2000))
  config.train.update(dict(num_steps=150, learning_rate=2e-3,
                           log_every_steps=10))
  config.train.plateau.update(dict(min_learning_rate=5e-4, patience_epochs=5))
  config.checkpoint.update(dict(every_epochs=5, keep_every=2))
  config.eval.update(dict(every_epochs=5, num_proteins=64, seq_len=512,
                          batch_size=16))
  return config
