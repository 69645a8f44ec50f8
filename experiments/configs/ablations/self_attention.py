"""Self-attention in place of the convolutions: the quadratic reference.

Every residue attends to every residue (rotary positions; see
`proteinbert/self_attention.py`), with the block's heads and key size.
"""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.local_mixer = 'self_attention'
  return config
