"""No global attention: the global track never reads the residues."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.global_attention = False
  return config
