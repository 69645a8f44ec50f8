"""Twice the global attention heads (each with half the value channels)."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.num_heads *= 2
  return config
