"""No wide (dilated) convolution: the narrow one alone mixes residues."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.wide_conv = False
  return config
