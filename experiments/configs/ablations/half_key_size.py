"""Half the attention key (and query) size per head."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.key_size //= 2
  return config
