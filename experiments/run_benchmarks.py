r"""Fine-tunes and evaluates every ProteinBERT benchmark in a directory.

  python -m experiments.run_benchmarks --benchmarks_dir=../shared/benchmarks \
      --workdir=/tmp/benchmarks --variant=paper \
      --init_checkpoint=epoch_92400_sample_23500000.pkl

Uses whichever of NAME.train.csv, NAME.valid.csv, NAME.test.csv exist
(carving a validation split from train when there is none) and writes
results.md and results.csv, with the paper's scores beside ours, to
--workdir; each task's model and tables go to --workdir/<task>/.
"""

from absl import app
from absl import flags
from absl import logging

from experiments.configs import finetune as finetune_configs
from proteinbert.finetuning import benchmarks

_BENCHMARKS_DIR = flags.DEFINE_string(
    'benchmarks_dir', '../shared/benchmarks', 'Directory of benchmark CSVs.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.',
                               required=True)
_VARIANT = flags.DEFINE_enum(
    'variant', 'paper', ['paper', 'scratch', 'small', 'tiny'],
    'Config variant of experiments/configs/finetune.py.')
_INIT_CHECKPOINT = flags.DEFINE_string(
    'init_checkpoint', '', 'Official pickle, .npz or pretraining checkpoint; '
    'empty initialises randomly.')
_TASKS = flags.DEFINE_list('tasks', [], 'Run only these benchmarks.')
_SEED = flags.DEFINE_integer(
    'seed', 0, 'config.train.seed: head initialisation, dropout, shuffling '
    '(the data subsample and the carved validation split stay fixed).')


def config_for(name: str):
  config = finetune_configs.get_config(f'{name},{_VARIANT.value}')
  config.init_checkpoint = _INIT_CHECKPOINT.value
  config.train.seed = _SEED.value
  return config


def main(argv):
  del argv
  rows = benchmarks.run_benchmarks(_BENCHMARKS_DIR.value, _WORKDIR.value,
                                   config_for, _TASKS.value or None)
  logging.info('Results:\n%s', '\n'.join(map(str, rows)))


if __name__ == '__main__':
  app.run(main)
