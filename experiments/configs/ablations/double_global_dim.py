"""Twice the global (per-protein) channels."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.global_dim *= 2
  return config
