"""The pretraining loop end to end: outputs, exact resume, NaN stop, devices."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from proteinbert import inference
from proteinbert import params_io
from proteinbert.data import build
from proteinbert.data import dataset as dataset_lib
from proteinbert.training import checkpoint
from proteinbert.training import loop
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def dataset_path(tmp_path_factory):
  return helpers.write_tiny_dataset(
      str(tmp_path_factory.mktemp('data') / 'tiny.h5'))


def _records(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def _final_params(workdir):
  params, _ = params_io.load_params(
      checkpoint.latest(os.path.join(workdir, 'checkpoints')))
  return params_io.flatten(params)


def _subprocess(code, env=None):
  return subprocess.Popen(
      [sys.executable, '-c', code], cwd=ROOT,
      env=dict(os.environ, **(env or {})))


def _pretrain_code(dataset_path, workdir, num_steps):
  return (
      'from tests import helpers\n'
      'from proteinbert.training import loop\n'
      f'config = helpers.tiny_pretrain_config({dataset_path!r})\n'
      f'config.train.num_steps = {num_steps}\n'
      f'loop.pretrain(config, {str(workdir)!r})\n')


def test_writes_config_metrics_events_and_checkpoints(dataset_path, tmp_path):
  config = helpers.tiny_pretrain_config(dataset_path)
  loop.pretrain(config, str(tmp_path))
  assert json.load(open(tmp_path / 'config.json'))['train']['num_steps'] == 24
  records = _records(tmp_path)
  train_records = [r for r in records if 'token_loss' in r]
  assert [r['step'] for r in train_records] == list(range(3, 25, 3))
  for key in ('loss', 'token_accuracy', 'corrupted_token_accuracy',
              'denoising_accuracy', 'denoising_loss', 'annotation_loss',
              'learning_rate', 'samples_per_s', 'tokens_per_s'):
    assert all(key in r for r in train_records), key
  heldout = [r for r in records if 'heldout/annotation_auc' in r]
  assert [r['step'] for r in heldout] == [12, 24]
  for key in ('token_loss', 'denoising_accuracy', 'denoising_loss',
              'corrupted_token_loss'):
    # The model's figure and the frequency baseline's beside it.
    assert all(np.isfinite(r[f'heldout/{key}']) for r in heldout), key
    assert all(np.isfinite(r[f'heldout/frequency_baseline/{key}'])
               for r in heldout), key
  assert os.listdir(tmp_path / 'tensorboard')
  # Saves after epochs 2, 4, ..., 8 (steps 6, ..., 24); keep_every=2 keeps
  # the 2nd and 4th saves besides the latest.
  assert checkpoint.list_steps(str(tmp_path / 'checkpoints')) == [12, 24]
  # Checkpoints carry the dataset's GO vocabulary.
  with dataset_lib.open_dataset(dataset_path) as data:
    want = list(data.vocabulary.ids)
  model = inference.load_pretrained(checkpoint.latest(
      str(tmp_path / 'checkpoints')))
  assert list(model.go_vocabulary.ids) == want


def test_refuses_to_overwrite_without_resume(dataset_path, tmp_path):
  config = helpers.tiny_pretrain_config(dataset_path)
  config.train.num_steps = 6
  loop.pretrain(config, str(tmp_path))
  with pytest.raises(ValueError, match='already has checkpoints'):
    loop.pretrain(config, str(tmp_path), resume=False)


def test_killed_and_resumed_run_ends_bitwise_equal(dataset_path, tmp_path):
  num_steps = 45
  reference = tmp_path / 'reference'
  config = helpers.tiny_pretrain_config(dataset_path)
  config.train.num_steps = num_steps
  loop.pretrain(config, str(reference))

  killed = tmp_path / 'killed'
  process = _subprocess(_pretrain_code(dataset_path, killed, num_steps))
  ckpt_dir = str(killed / 'checkpoints')
  deadline = time.time() + 300
  while not checkpoint.list_steps(ckpt_dir) and time.time() < deadline:
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  process.wait()
  steps = checkpoint.list_steps(ckpt_dir)
  assert steps and steps[-1] < num_steps, 'the run was not interrupted'

  loop.pretrain(config, str(killed))
  want, got = _final_params(reference), _final_params(killed)
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(dataset_path,
                                                           tmp_path):
  config = helpers.tiny_pretrain_config(dataset_path)
  config.train.num_steps = 6
  loop.pretrain(config, str(tmp_path))
  config.train.num_steps = 24
  config.train.learning_rate = 1e30
  with pytest.raises(FloatingPointError, match='ckpt_0000000006'):
    loop.pretrain(config, str(tmp_path))
  ckpt_dir = str(tmp_path / 'checkpoints')
  assert checkpoint.list_steps(ckpt_dir) == [6]
  for value in _final_params(tmp_path).values():
    assert np.all(np.isfinite(value))


def test_four_devices_give_the_losses_of_one(dataset_path, tmp_path):
  runs = {}
  for devices in (1, 4):
    workdir = tmp_path / f'devices{devices}'
    env = {'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}
    process = _subprocess(_pretrain_code(dataset_path, workdir, 6), env)
    assert process.wait() == 0
    runs[devices] = [r['loss'] for r in _records(workdir) if 'loss' in r]
  assert len(runs[1]) == 2
  np.testing.assert_allclose(runs[4], runs[1], rtol=2e-5)


def test_bad_dataset_paths(tmp_path):
  config = helpers.tiny_pretrain_config(str(tmp_path / 'missing.h5'))
  with pytest.raises((ValueError, FileNotFoundError), match='missing.h5'):
    loop.pretrain(config, str(tmp_path / 'w1'))
  not_hdf5 = tmp_path / 'text.h5'
  not_hdf5.write_text('hello')
  config = helpers.tiny_pretrain_config(str(not_hdf5))
  with pytest.raises(ValueError, match='text.h5'):
    loop.pretrain(config, str(tmp_path / 'w2'))


def test_two_processes_train_together(dataset_path, tmp_path):
  """Two CPU processes on localhost: one job, process 0 writes."""
  workdir = tmp_path / 'multihost'
  code = (
      'import sys\n'
      'from proteinbert.training import distributed\n'
      "distributed.initialize('localhost:' + sys.argv[1], 2, "
      'int(sys.argv[2]))\n' + _pretrain_code(dataset_path, workdir, 6))
  port = str(20000 + os.getpid() % 10000)
  processes = [subprocess.Popen([sys.executable, '-c', code, port, str(i)],
                                cwd=ROOT) for i in range(2)]
  assert [p.wait(timeout=600) for p in processes] == [0, 0]
  assert [r['step'] for r in _records(workdir) if 'loss' in r] == [3, 6]
  assert checkpoint.list_steps(str(workdir / 'checkpoints')) == [6]


def test_a_sequence_only_dataset_trains_the_token_objective(tmp_path):
  # A FASTA without annotations builds a dataset with no GO vocabulary;
  # pretraining on it trains the token objective alone.
  rng = np.random.default_rng(0)
  fasta = tmp_path / 'repertoire.fasta'
  fasta.write_text(''.join(
      f'>seq{i}\n' + ''.join(rng.choice(list('ACDEFGHIKLMNPQRSTVWY'),
                                        int(n))) + '\n'
      for i, n in enumerate(rng.integers(20, 120, 60))))
  dataset_path = str(tmp_path / 'repertoire.h5')
  build.build_dataset(None, None, dataset_path, fasta=str(fasta),
                      test_fraction=0.2, num_workers=0, show_progress=False)
  config = helpers.tiny_pretrain_config(dataset_path)
  config.train.num_steps = 12
  loop.pretrain(config, str(tmp_path / 'run'))
  records = _records(tmp_path / 'run')
  train_records = [r for r in records if 'token_loss' in r]
  assert all(np.isfinite(r['loss']) and r['annotated_count'] == 0
             and r['annotation_loss'] == 0 for r in train_records)
  assert train_records[-1]['token_loss'] < train_records[0]['token_loss']
  heldout = [r for r in records if 'heldout/token_loss' in r]
  assert heldout and all(np.isfinite(r['heldout/denoising_loss'])
                         for r in heldout)
  model = inference.load_pretrained(checkpoint.latest(
      str(tmp_path / 'run' / 'checkpoints')))
  assert model.config.num_annotations == 0 and model.go_vocabulary is None
