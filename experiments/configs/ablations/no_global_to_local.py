"""No global-to-local broadcast: residues never see the global vector."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.global_to_local = False
  return config
