"""Half as many blocks (at least one)."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.num_blocks = max(1, config.model.num_blocks // 2)
  return config
