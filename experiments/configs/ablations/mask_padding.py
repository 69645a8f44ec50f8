"""Padding-masked model: <PAD> is zeroed before convs, hidden from attention.

<PAD> must stay <PAD> in the inputs for the mask to find it, so the corruption
leaves padding alone.
"""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.mask_padding = True
  config.data.corrupt_padding = False
  return config
