r"""Trains architecture variants alike and compares them in one table.

  python -m experiments.ablate --variants='*' --budget=300 --seeds=0,1 \
      --output_dir=experiments/results/ablations

Variants are the files of experiments/configs/ablations/ (`--variants` takes
names or shell patterns, comma-separated: 'baseline,no_*,dilation_*'). Each
trains with the same data, seeds and number of steps (`--budget=300`, or
`--budget=10m`: the steps the first variant trains in about 10 minutes), and
is evaluated on the same held-out proteins. Re-running the command skips
finished runs and resumes interrupted ones. See `experiments/ablation.py`
for the outputs.
"""

import os

from absl import app
from absl import flags

from experiments import ablation

_CONFIG_DIR = os.path.join(os.path.dirname(__file__), 'configs', 'ablations')

_VARIANTS = flags.DEFINE_list(
    'variants', ['*'], 'Variant names or shell patterns, in table order; '
    f'from {_CONFIG_DIR}.')
_BUDGET = flags.DEFINE_string(
    'budget', '150', "Per variant: steps ('300') or minutes ('10m'); rounded "
    'up to a whole number of evaluation periods.')
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', None, 'Work directories of the variants, tables and plots.',
    required=True)
_PRESET = flags.DEFINE_string(
    'preset', 'demo', 'Preset of experiments/configs/pretrain.py every '
    'variant starts from: demo or paper.')
_DATASET_PATH = flags.DEFINE_string(
    'dataset_path', '', 'Dataset to pretrain on; empty for the demo dataset.')
_SEEDS = flags.DEFINE_list(
    'seeds', ['0'], 'Every variant trains once per seed (initialisation, '
    'data order and corruption); the table gives the mean and half range.')
_OVERRIDES = flags.DEFINE_multi_string(
    'override', [], 'section.key=value applied to every variant, e.g. '
    '--override=eval.num_proteins=128.')


def main(argv):
  del argv
  ablation.run_ablation(
      ablation.select_variants(_VARIANTS.value, _CONFIG_DIR), _CONFIG_DIR,
      _OUTPUT_DIR.value, ablation.parse_budget(_BUDGET.value),
      preset=_PRESET.value, dataset_path=_DATASET_PATH.value,
      overrides=_OVERRIDES.value, seeds=[int(s) for s in _SEEDS.value])


if __name__ == '__main__':
  app.run(main)
