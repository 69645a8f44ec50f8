r"""Fine-tunes ProteinBERT on one task, saves the model and evaluates it.

  python -m experiments.finetune \
      --config=experiments/configs/finetune.py:signalP_binary,scratch \
      --workdir=/tmp/finetune_signalp

  # From the official weights (or one of our checkpoints):
  python -m experiments.finetune \
      --config=experiments/configs/finetune.py:scop \
      --config.init_checkpoint=epoch_92400_sample_23500000.pkl --workdir=...

The work directory receives model.npz (reload it with
`proteinbert.finetuning.load_finetuned`), history.jsonl, eval_<split>.md/.csv
and summary.json, and a checkpoint after every epoch: run the same command
again to continue a killed run.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from proteinbert.finetuning import experiment

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'experiments/configs/finetune.py', 'Fine-tuning config.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Output directory: model, history, evaluation tables, '
    'checkpoints; resumed from if it holds checkpoints.', required=True)
_RESUME = flags.DEFINE_bool(
    'resume', True, 'Resume from the latest checkpoint in --workdir; '
    '--noresume refuses to run in a work directory with checkpoints.')


def main(argv):
  del argv
  config = _CONFIG.value
  logging.info('Config:\n%s', config)
  summary = experiment.run(config, _WORKDIR.value, resume=_RESUME.value)
  logging.info('Summary: %s', summary)


if __name__ == '__main__':
  app.run(main)
