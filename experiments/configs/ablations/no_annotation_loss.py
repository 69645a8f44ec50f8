"""No GO objective: masked-token loss only (annotation output untrained)."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.train.annotation_loss_weight = 0.0
  return config
