"""Wide convolution dilated by 2 instead of 5 (receptive field 17, not 41)."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.wide_conv_dilation = 2
  return config
