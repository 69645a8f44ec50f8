"""Wide convolution dilated by 10 instead of 5 (receptive field 81, not 41)."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.wide_conv_dilation = 10
  return config
