"""No GO input: sequence only in; the annotation output and loss are kept."""

from experiments.configs.ablations import baseline


def get_config(preset: str = 'demo'):
  config = baseline.get_config(preset)
  config.model.annotation_input = False
  return config
