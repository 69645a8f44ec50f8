"""Half the local (per-residue) channels."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.local_dim //= 2
  return config
