"""Fine-tuning: every task type learns, the staged schedule, save and reload,
the experiment and benchmark runner end to end, bad inputs."""

import csv
import os

import jax
import jmp
import numpy as np
import pytest

from experiments import transfer_table
from experiments.configs import finetune as finetune_configs
from proteinbert import inference
from proteinbert import keras_weights
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tables
from proteinbert import tokenization
from proteinbert.finetuning import benchmarks
from proteinbert.finetuning import checkpoints as checkpoints_lib
from proteinbert.finetuning import config as config_lib
from proteinbert.finetuning import data as data_lib
from proteinbert.finetuning import experiment
from proteinbert.finetuning import finetuned
from proteinbert.finetuning import tasks
from proteinbert.finetuning import train
from proteinbert.finetuning import update as finetune_update
from proteinbert.training import checkpoint
from proteinbert.training import optimizer as optimizer_lib
from proteinbert.training import state as state_lib
from tests import helpers

MODEL = helpers.tiny_model_config(num_blocks=1)
BASE = 'ADEFGHIKLMNPQRSTV'
MARKS = 'WCY'
BENCHMARKS_DIR = os.path.join(os.path.dirname(__file__), '..', '..', 'shared',
                              'benchmarks')


def _synthetic(kind, num, rng, max_len=30):
  """Random proteins whose labels follow the marks W, C, Y planted in them."""
  seqs, labels = [], []
  for _ in range(num):
    seq = list(rng.choice(list(BASE), rng.integers(12, max_len)))
    plant = lambda letter, count: [seq.__setitem__(p, letter) for p in
                                   rng.choice(len(seq), count, replace=False)]
    if kind == 'global_binary':
      label = int(rng.integers(0, 2))
      plant('W', 3 * label)
    elif kind == 'global_categorical':
      label = 'abc'[rng.integers(0, 3)]
      plant(MARKS['abc'.index(label)], 3)
    elif kind == 'global_numeric':
      label = int(rng.integers(0, 5))
      plant('W', label)
    elif kind == 'global_multilabel':
      present = [m for m in 'abc' if rng.random() < 0.5]
      label = ';'.join(present)
      for m in present:
        plant(MARKS['abc'.index(m)], 2)
    else:
      for p in rng.choice(len(seq), len(seq) // 3, replace=False):
        seq[p] = rng.choice(['W', 'C'])
      code = {'residue_binary': {'W': '1'},
              'residue_categorical': {'W': '1', 'C': '2'},
              'residue_numeric': {'W': '1', 'C': '0.5'}}[kind]
      label = ','.join(code.get(c, '0') for c in seq)
    seqs.append(''.join(seq))
    labels.append(str(label))
  return seqs, labels


def _task(kind, seed=0, num_train=128, num_valid=48):
  rng = np.random.default_rng(seed)
  train_data = _synthetic(kind, num_train, rng)
  valid_data = _synthetic(kind, num_valid, rng)
  classes = ()
  if kind in ('global_categorical', 'global_multilabel',
              'residue_categorical'):
    classes = tasks.infer_classes(kind, train_data[1] + valid_data[1])
  spec = tasks.make_spec(kind, classes)
  train_labels = tasks.parse_labels(spec, *train_data)
  spec = tasks.standardized(spec, train_labels)
  return (spec, (train_data[0], train_labels),
          (valid_data[0], tasks.parse_labels(spec, *valid_data)))


def _config(**train_overrides):
  config = config_lib.get_config()
  config.model.update(MODEL.to_dict())
  config.train.update(dict(seq_len=32, batch_size=16, **train_overrides))
  return config


# Chance: AUC 0.5, accuracy 1/3 (global) or 0.67 (residues: the majority
# class), Spearman 0.
@pytest.mark.parametrize('kind,metric,threshold', [
    ('global_binary', 'valid_auc', 0.9),
    ('global_categorical', 'valid_accuracy', 0.7),
    ('global_numeric', 'valid_spearman', 0.6),
    ('global_multilabel', 'valid_micro_auc', 0.7),
    ('residue_binary', 'valid_auc', 0.9),
    ('residue_categorical', 'valid_accuracy', 0.85),
    ('residue_numeric', 'valid_spearman', 0.6),
])
def test_each_task_type_learns_its_synthetic_labels(kind, metric, threshold):
  # The head alone learns on a frozen random trunk: the trunk's backward
  # pass would only add compile time (test_schedule trains it).
  spec, train_data, valid_data = _task(kind)
  config = _config()
  params = finetuned.init_params(config.model, spec, config.head,
                                 jax.random.PRNGKey(0))
  new_params, history = train.finetune(
      config.model, spec, config.head, params, train_data, valid_data,
      config.train,
      schedule=[train.Stage('frozen', 32, 16, 4, 3e-2, False)])
  assert max(h[metric] for h in history) > threshold, history
  np.testing.assert_array_equal(
      new_params['protein_bert/block_1/local/dense']['w'],
      params['protein_bert/block_1/local/dense']['w'])


def test_update_holds_the_frozen_params_and_scales_float16_losses():
  model_config = MODEL.copy_and_resolve_references()
  model_config.precision = 'params=float32,compute=float16,output=float32'
  spec, (seqs, labels), _ = _task('global_binary', num_train=8)
  config = _config()
  params = finetuned.init_params(model_config, spec, config.head,
                                 jax.random.PRNGKey(0))
  optimizer = optimizer_lib.make_optimizer(config.train, None, 'adam', 1e-2)
  state = finetune_update.init_state(
      params, False, optimizer,
      state_lib.make_loss_scale(model_config, config.train),
      jax.random.PRNGKey(1))
  update = jax.jit(finetune_update.make_update_fn(model_config, spec,
                                                  config.head, optimizer))
  targets = tasks.targets(spec, labels, 32)
  batch = finetune_update.Batch(tokenization.tokenize(seqs, 32),
                                targets.values, targets.weights)
  finite = []
  for _ in range(6):
    state, metrics = update(state, batch)
    finite.append(float(metrics['grads_finite']))
  # The initial scale overflows float16 at first: those steps are skipped.
  assert isinstance(state.loss_scale, jmp.DynamicLossScale)
  assert finite[-1] == 1.0 and np.isfinite(float(metrics['loss']))
  assert int(state.step) == 6
  new_params = finetune_update.all_params(state)
  module = 'protein_bert/block_1/local/dense'
  np.testing.assert_array_equal(new_params[module]['w'], params[module]['w'])
  assert not np.allclose(new_params['task_head/output']['w'],
                         params['task_head/output']['w'])


def test_stages_follow_the_original():
  config = config_lib.get_config().train
  assert [tuple(s) for s in train.stages(config)] == [
      ('frozen', 512, 32, 40, 1e-2, False), ('all', 512, 32, 40, 1e-4, True),
      ('final', 1024, 16, 1, 1e-5, True)]
  config.begin_frozen, config.final_epochs = False, 0
  assert [s.name for s in train.stages(config)] == ['all']


def test_schedule_freezes_trains_trunk_and_admits_long_sequences_last():
  spec, (seqs, labels), valid_data = _task('residue_binary', num_train=48)
  rng = np.random.default_rng(5)
  long_seqs, long_labels = _synthetic('residue_binary', 4, rng)
  long_seqs = [s + 'A' * 30 for s in long_seqs]
  long_labels = tasks.parse_labels(
      spec, long_seqs, [l + ',0' * 30 for l in long_labels])
  config = _config(final_seq_len=64, max_epochs_per_stage=1,
                   learning_rate=1e-2)
  params = finetuned.init_params(MODEL, spec, config.head,
                                 jax.random.PRNGKey(0))
  records = []
  new_params, history = train.finetune(
      MODEL, spec, config.head, params, (seqs + long_seqs,
                                         labels + long_labels),
      valid_data, config.train, on_epoch=records.append)
  assert records == history
  assert [h['stage'] for h in history] == ['frozen', 'all', 'final']
  # The 4 long proteins sit out the 32-token stages and join the final one.
  assert [h['train_proteins'] for h in history] == [48, 48, 52]
  assert [h['learning_rate'] for h in history] == [1e-2, 1e-2, 1e-5]
  changed = lambda module: not np.allclose(params[module]['w'],
                                           new_params[module]['w'])
  assert changed('task_head/output')
  assert changed('protein_bert/block_1/local/dense')


def test_early_stopping_restores_the_best_epoch():
  spec, train_data, valid_data = _task('global_binary', num_train=16)
  config = _config()
  params = finetuned.init_params(MODEL, spec, config.head,
                                 jax.random.PRNGKey(0))
  # 16 proteins at a high rate: the validation loss is best at epoch 2, then
  # worsens twice, which stops the stage.
  stage = train.Stage('frozen', 32, 16, 6, 0.1, False)
  params, history = train.finetune(MODEL, spec, config.head, params,
                                   train_data, valid_data, config.train,
                                   schedule=[stage])
  losses = [h['valid_loss'] for h in history]
  assert len(losses) == 4 and np.argmin(losses) == 1, losses
  model = finetuned.FinetunedModel(params, MODEL, spec, config.head)
  probs = np.array(model.predict(valid_data[0], 32, 16), np.float64)
  truths = np.array(valid_data[1])
  loss = -np.mean(truths * np.log(probs) + (1 - truths) * np.log(1 - probs))
  assert loss == pytest.approx(losses[1], rel=1e-4)


def test_save_reload_predict_round_trip(tmp_path):
  spec, _, (seqs, _) = _task('residue_numeric', num_train=8, num_valid=6)
  spec = spec._replace(target_mean=2.0, target_std=3.0)
  head = finetuned.make_head_config('hidden', 0.3)
  params = finetuned.init_params(MODEL, spec, head,
                                 jax.random.PRNGKey(0))
  model = finetuned.FinetunedModel(params, MODEL, spec, head)
  seqs = seqs + ['ACDEFGHIKLMNPQRSTVWY' * 3]  # Longer than the first bucket.
  before = model.predict(seqs, start_seq_len=32, batch_size=4)
  path = str(tmp_path / 'model.npz')
  model.save(path)
  loaded = finetuned.load_finetuned(path)
  assert loaded.spec == spec
  assert loaded.head_config.dropout_rate == 0.3
  after = loaded.predict(seqs, start_seq_len=32, batch_size=4)
  for seq, b, a in zip(seqs, before, after):
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert a.shape == (len(seq),)


def test_load_errors(tmp_path):
  pretrained = str(tmp_path / 'pretrained.npz')
  params_io.save_params(pretrained, model_lib.init_params(
      MODEL, jax.random.PRNGKey(0)), MODEL)
  with pytest.raises(ValueError, match='not a fine-tuned model'):
    finetuned.load_finetuned(pretrained)
  spec = tasks.make_spec('global_categorical', 'ab')
  head = finetuned.make_head_config()
  params = finetuned.init_params(MODEL, spec, head, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match='task_head/output//w has shape'):
    finetuned.FinetunedModel(params, MODEL,
                             tasks.make_spec('global_categorical', 'abc'),
                             head)


def _write_csv(path, seqs, labels, columns=('seq', 'label')):
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    writer.writerows(zip(seqs, labels))


def _tiny_benchmark_config(name):
  """The tiny preset, with no epochs: these tests are about the plumbing."""
  config = finetune_configs.get_config(f'{name},tiny')
  config.train.update(dict(seq_len=64, max_epochs_per_stage=0,
                           final_epochs=0))
  return config


def test_benchmark_runner_end_to_end(tmp_path):
  rng = np.random.default_rng(3)
  directory = tmp_path / 'benchmarks'
  directory.mkdir()
  _write_csv(directory / 'signalP_binary.train.csv',
             *_synthetic('global_binary', 80, rng))
  _write_csv(directory / 'signalP_binary.test.csv',
             *_synthetic('global_binary', 20, rng, max_len=62))
  _write_csv(directory / 'unknown_task.valid.csv', ['ACD'], ['1'])
  workdir = tmp_path / 'out'
  rows = benchmarks.run_benchmarks(str(directory), str(workdir),
                                   _tiny_benchmark_config)
  assert [r['task'] for r in rows] == ['signalP_binary']
  row = rows[0]
  assert row['notes'].startswith('valid carved from signalP_binary.train')
  assert (row['train_proteins'], row['valid_proteins'],
          row['test_proteins']) == (64, 8, 20)
  assert 0 <= row['test'] <= 1
  table = (workdir / 'results.md').read_text()
  assert '0.9960' in table and '0.9910' in table
  with open(workdir / 'results.csv') as f:
    assert next(csv.DictReader(f))['task'] == 'signalP_binary'
  task_dir = workdir / 'signalP_binary'
  evaluation = (task_dir / 'eval_test.md').read_text()
  assert '| 64 | 20 | 20 |' in evaluation and 'Confusion matrix' in evaluation
  model = finetuned.load_finetuned(str(task_dir / 'model.npz'))
  assert model.predict(['MKVW'], 64)[0].shape == ()


@pytest.mark.parametrize('problem,message', [
    ('columns', 'no \\[\'label\'\\] column'),
    ('labels', 'not among the task classes'),
    ('sequence', "invalid character '-'"),
    ('architecture', 'does not match'),
    ('too_long', 'No training sequence fits'),
])
def test_bad_input_fails_before_writing(tmp_path, problem, message):
  rng = np.random.default_rng(4)
  seqs, labels = _synthetic('global_binary', 10, rng)
  columns = ('seq', 'label')
  if problem == 'columns':
    columns = ('seq', 'target')
  elif problem == 'labels':
    labels[3] = '0.5'
  elif problem == 'sequence':
    seqs[2] = 'ACD-EF'
  elif problem == 'too_long':
    seqs = [s * 10 for s in seqs]
  _write_csv(tmp_path / 'task.train.csv', seqs, labels, columns)
  config = _tiny_benchmark_config('custom')
  config.data.update(dict(directory=str(tmp_path), name='task'))
  if problem == 'architecture':
    # Params of one architecture stored with the config of another.
    path = str(tmp_path / 'mismatched.npz')
    params_io.save_params(path, model_lib.init_params(
        MODEL, jax.random.PRNGKey(0)), helpers.tiny_model_config())
    config.init_checkpoint = path
  workdir = tmp_path / 'out'
  with pytest.raises(ValueError, match=message):
    experiment.run(config, str(workdir))
  assert not workdir.exists()


@pytest.mark.skipif(not os.path.isdir(BENCHMARKS_DIR),
                    reason='shared benchmarks not present')
@pytest.mark.parametrize('name', sorted(benchmarks.BENCHMARKS))
def test_benchmark_presets_parse_the_shared_data(name):
  config = finetune_configs.get_config(name)
  paths = [data_lib.split_path(BENCHMARKS_DIR, name, s)
           for s in data_lib.SPLITS]
  splits = [data_lib.read_csv(p) for p in paths if os.path.exists(p)]
  if not splits:
    pytest.skip(f'{name} not in the shared benchmarks')
  kind = config.task.kind
  spec = tasks.make_spec(kind, tasks.infer_classes(
      kind, [l for s in splits for l in s.labels]))
  for split in splits:
    tasks.parse_labels(spec, split.seqs[:300], split.labels[:300],
                       split.source)


def test_architecture_comes_from_the_checkpoint_runtime_keys_from_config(
    tmp_path):
  path = str(tmp_path / 'official_format.pkl')
  keras_weights.save_keras_pickle(
      path, model_lib.init_params(MODEL, jax.random.PRNGKey(0)), MODEL)
  config = config_lib.get_config()
  config.init_checkpoint = path
  config.model.mask_padding = True
  params, model_config = experiment.load_trunk(config)
  assert (model_config.num_blocks, model_config.local_dim,
          model_config.num_annotations) == (1, 16, 10)
  assert model_config.mask_padding
  assert 'protein_bert/block_1/local/dense' in params


def test_small_variant_is_the_shipped_models_architecture():
  """The transfer comparison's random-init arm trains what swissprot-small
  is, so the two arms differ only in where the trunk starts."""
  shipped = inference.load_pretrained('swissprot-small').config
  for name in benchmarks.BENCHMARKS:
    config = finetune_configs.get_config(f'{name},small')
    assert config.model.to_dict() == shipped.to_dict(), name
    assert config.train.seq_len <= 256 and config.train.final_epochs == 0


def test_transfer_table_pairs_the_arms_with_the_paper(tmp_path):
  arms = {}
  for arm, scores in (('pre0', (0.9, 0.5)), ('pre1', (0.8, 0.7)),
                      ('rand0', (0.6, 0.1))):
    workdir = tmp_path / arm
    workdir.mkdir()
    tables.write_csv(str(workdir / 'results.csv'), [
        {'task': 'signalP_binary', 'valid': scores[0]},
        {'task': 'stability', 'valid': scores[1]}])
    arms[arm] = str(workdir)
  rows = transfer_table.transfer_rows(
      transfer_table.read_scores([arms['pre0'], arms['pre1']]),
      transfer_table.read_scores([arms['rand0']]))
  assert [r['task'] for r in rows] == ['signalP_binary', 'stability']
  assert rows[0]['pretrained'] == pytest.approx(0.85)
  assert rows[0]['difference'] == pytest.approx(0.25)
  assert rows[1]['pretrained (seeds)'] == '0.500 / 0.700'
  assert (rows[0]['paper pretrained'], rows[0]['paper no pretraining']) == (
      0.996, 0.991)
  with pytest.raises(ValueError, match='no results.csv'):
    transfer_table.read_scores([str(tmp_path)])


class _Stop(Exception):
  """Stands for a kill: raised from on_epoch, before the epoch's checkpoint."""


def _stop_at(num_records):
  records = []

  def on_epoch(record):
    records.append(record)
    if len(records) == num_records:
      raise _Stop

  return on_epoch


def _without_seconds(history):
  return [{k: v for k, v in r.items() if k != 'seconds'} for r in history]


def test_a_stopped_run_resumes_bitwise_past_a_damaged_checkpoint(tmp_path,
                                                                 caplog):
  # The task, config and rates of test_schedule_...: the update steps are
  # cached per process, so after it nothing here compiles.
  spec, train_data, valid_data = _task('residue_binary', num_train=48)
  config = _config(final_seq_len=64, max_epochs_per_stage=1,
                   learning_rate=1e-2)
  params = finetuned.init_params(MODEL, spec, config.head,
                                 jax.random.PRNGKey(0))
  schedule = [train.Stage('frozen', 32, 16, 2, 1e-2, False),
              train.Stage('all', 32, 16, 3, 1e-2, True)]
  ckpt_dir = str(tmp_path / 'checkpoints')

  def finetune(on_epoch=None, checkpoints=True, train_config=config.train):
    return train.finetune(
        MODEL, spec, config.head, params, train_data, valid_data,
        train_config, on_epoch, schedule,
        checkpoints_lib.Checkpoints(ckpt_dir, train_config, keep_last=2)
        if checkpoints else None)

  want_params, want_history = finetune(checkpoints=False)
  assert [r['stage'] for r in want_history] == ['frozen'] * 2 + ['all'] * 3
  # Stopped in the frozen stage's 2nd epoch, then in the 'all' stage's 3rd;
  # the checkpoint of its 2nd is damaged: each resume continues a stage
  # midway.
  with pytest.raises(_Stop):
    finetune(_stop_at(2))
  assert len(checkpoint.list_steps(ckpt_dir)) == 1
  with pytest.raises(_Stop):
    finetune(_stop_at(5))
  _, newest = checkpoint.list_steps(ckpt_dir)  # After epochs 3 and 4.
  newest = checkpoint.path_for(ckpt_dir, newest)
  with open(newest, 'r+b') as f:  # As a full disk would leave it.
    f.truncate(os.path.getsize(newest) // 2)

  records = []
  got_params, got_history = finetune(records.append)
  assert f'Skipping the damaged checkpoint {newest}' in caplog.text
  assert os.path.exists(newest + '.unreadable')
  assert records == got_history  # The earlier epochs replayed first.
  assert _without_seconds(got_history) == _without_seconds(want_history)
  want, got = params_io.flatten(want_params), params_io.flatten(got_params)
  assert want.keys() == got.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  assert len(checkpoint.list_steps(ckpt_dir)) == 2

  # The last checkpoint is the result, as a fine-tuned model file; a
  # finished run resumed ends at once with it.
  model = finetuned.load_finetuned(checkpoint.latest(ckpt_dir))
  for key, value in params_io.flatten(model.params).items():
    np.testing.assert_array_equal(value, want[key], err_msg=key)
  again, _ = finetune()
  for key, value in params_io.flatten(again).items():
    np.testing.assert_array_equal(value, want[key], err_msg=key)

  # Another config (or schedule) is another run.
  other = config.train.copy_and_resolve_references()
  other.plateau.factor = 0.5
  with pytest.raises(ValueError, match=r'ckpt_\d+\.npz: written under '
                     r'another config.*plateau\.factor: 0\.25 in the '
                     r'checkpoint, 0\.5 now'):
    finetune(train_config=other)


def test_experiment_resumes_its_work_directory_and_refuses_another_config(
    tmp_path):
  rng = np.random.default_rng(6)
  _write_csv(tmp_path / 'task.train.csv', *_synthetic('residue_binary', 48,
                                                      rng))
  _write_csv(tmp_path / 'task.valid.csv', *_synthetic('residue_binary', 16,
                                                      rng))
  config = finetune_configs.get_config('custom,tiny')
  config.task.kind = 'residue_binary'
  config.data.update(dict(directory=str(tmp_path), name='task'))
  # test_schedule_...'s model, task and config: its compiled steps serve.
  config.model.update(MODEL.to_dict())
  config.train.update(_config(final_seq_len=64, max_epochs_per_stage=1,
                              learning_rate=1e-2).train.to_dict())
  workdir = tmp_path / 'out'
  first = experiment.run(config, str(workdir))
  history = (workdir / 'history.jsonl').read_text()
  assert first['epochs'] == 3 and history.count('\n') == 3

  # Run again, it resumes after the last epoch: nothing trains again.
  again = experiment.run(config, str(workdir))
  assert {**again, 'minutes': 0} == {**first, 'minutes': 0}
  assert (workdir / 'history.jsonl').read_text() == history

  stored = (workdir / 'config.json').read_text()
  other = config.copy_and_resolve_references()
  other.train.seed = 1
  with pytest.raises(ValueError, match=r'another config.*train\.seed: 0 in '
                     'the checkpoint, 1 now'):
    experiment.run(other, str(workdir))
  assert (workdir / 'config.json').read_text() == stored
  with pytest.raises(ValueError, match='already has checkpoints'):
    experiment.run(config, str(workdir), resume=False)
