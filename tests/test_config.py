"""The pretraining config's validation (`config.validate`)."""

import pytest

from experiments.configs import pretrain
from proteinbert import config as config_lib
from proteinbert.training import loop


def test_defaults_and_presets_are_valid():
  for preset in ('paper', 'small', 'demo'):
    config_lib.validate(pretrain.get_config(preset))


@pytest.mark.parametrize('section, key, value, message', [
    ('data', 'episodes', ((128, -4),), r'data\.episodes must be'),
    ('data', 'episodes', ((128, 0), (512, 64)), r'data\.episodes must be'),
    ('data', 'episodes', (), r'data\.episodes must be'),
    ('data', 'batches_per_epoch', 0, r'data\.batches_per_epoch must be '
     'positive, got 0'),
    ('data', 'seq_noise_prob', 1.5, r'data\.seq_noise_prob must be in'),
    ('train', 'log_every_steps', 0, r'train\.log_every_steps must be '
     'positive, got 0'),
    ('train', 'learning_rate', -1.0, r'train\.learning_rate must be positive'),
    ('checkpoint', 'every_epochs', 0, r'checkpoint\.every_epochs must be'),
    ('eval', 'batch_size', 0, r'eval\.batch_size must be positive'),
])
def test_impossible_values_are_refused(section, key, value, message):
  config = config_lib.get_config()
  config[section][key] = value
  with pytest.raises(ValueError, match=r'Invalid pretraining config: .*'
                     + message):
    config_lib.validate(config)


def test_pretrain_validates_before_loading_anything(tmp_path):
  config = config_lib.get_config()
  config.data.dataset_path = str(tmp_path / 'absent.h5')
  config.train.log_every_steps = 0
  with pytest.raises(ValueError, match='log_every_steps'):
    loop.pretrain(config, str(tmp_path / 'work'))
  assert not (tmp_path / 'work').exists()
