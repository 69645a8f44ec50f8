"""No narrow convolution: the wide (dilated) one alone mixes residues."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.narrow_conv = False
  return config
