r"""Pretrains ProteinBERT.

  python -m experiments.pretrain --config=experiments/configs/pretrain.py:demo \
      --workdir=/tmp/proteinbert_demo

Multi-host: run one process per host with --coordinator_address=HOST:PORT,
--num_processes and --process_id (or let JAX read them from the environment).
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import malloc_tunables
from proteinbert import config as config_lib
from proteinbert.training import distributed
from proteinbert.training import loop

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'experiments/configs/pretrain.py', 'Experiment config.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, metrics and TensorBoard '
    'events; resumed from if it holds checkpoints.', required=True)
_RESUME = flags.DEFINE_bool(
    'resume', True, 'Resume from the latest checkpoint in --workdir; '
    '--noresume refuses to run in a work directory with checkpoints.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', '', 'host:port of process 0 (multi-host only).')
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', -1, 'Processes in the job; -1 detects.')
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', -1, 'This process; -1 detects.')


def main(argv):
  del argv
  config_lib.validate(_CONFIG.value)  # Before anything is loaded.
  malloc_tunables.reexec(__spec__.name)
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                         _PROCESS_ID.value)
  config = _CONFIG.value
  logging.info('Config:\n%s', config)
  loop.pretrain(config, _WORKDIR.value, resume=_RESUME.value)


if __name__ == '__main__':
  app.run(main)
