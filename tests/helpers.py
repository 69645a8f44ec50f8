"""Small shared test utilities."""

import ml_collections

from proteinbert import config as config_lib


def tiny_model_config(**overrides) -> ml_collections.ConfigDict:
  """A fast model config (2 blocks, 16/32 channels, 10 annotations)."""
  config = config_lib.get_model_config()
  config.update(dict(num_annotations=10, num_blocks=2, local_dim=16,
                     global_dim=32, num_heads=2, key_size=8))
  config.update(overrides)
  return config
