"""The ablation reference: a pretraining preset, unchanged.

Every variant in this directory is `baseline.get_config(preset)` with one
difference, so the same variant applies to either preset of
`experiments/configs/pretrain.py`: 'demo' (the default here; small enough to
train every variant on a CPU) or 'paper' (the published model):

  python -m experiments.ablate --variants='no_*' --preset=paper \
      --dataset_path=dataset.h5 --budget=100000 --output_dir=/tmp/ablations
  python -m experiments.pretrain \
      --config=experiments/configs/ablations/no_wide_conv.py:paper ...

Differences in depth and width are relative (halve, double) for the same
reason.
"""

from experiments.configs import pretrain


def get_config(preset: str = 'demo'):
  return pretrain.get_config(preset)
