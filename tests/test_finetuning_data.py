"""Fine-tuning inputs and outputs: CSV errors naming file and line, records of
carved splits named by their line in the user's file, strict JSON, and the
checked reader of fine-tuned models."""

import json
import logging

import jax
import numpy as np
import pytest

from experiments.configs import finetune as finetune_configs
from proteinbert.finetuning import data as data_lib
from proteinbert.finetuning import experiment
from proteinbert.finetuning import finetuned
from proteinbert.finetuning import tasks
from tests import helpers

MODEL = helpers.tiny_model_config(num_blocks=1)


@pytest.mark.parametrize('text, message', [
    ('seq,label,seq\nMKV,1,ACD\n', r"t\.csv:1: column\(s\) \['seq'\] appear "
     'more than once'),
    ('seq,label\nMKV,1\nACD,0,extra\n', r't\.csv:3: 3 fields, but the '
     'header has 2'),
    ('seq,label\nMKV,1\nACD\n', r't\.csv:3: no label'),
    ('seq,label\nMKV,1\n\nAC-D,1\n', r"t\.csv:4: invalid character '-' "
     r'\(character 3 of the sequence\)'),
])
def test_malformed_csv_names_file_and_line(tmp_path, text, message):
  path = tmp_path / 't.csv'
  path.write_text(text)
  with pytest.raises(ValueError, match=message):
    data_lib.read_csv(str(path))


def test_carved_records_keep_their_line_in_the_file(tmp_path):
  path = tmp_path / 'task.train.csv'
  path.write_text('seq,label\n' + ''.join(f'MKV{"A" * i},1\n'
                                          for i in range(20)) + 'MKV,x\n')
  splits = data_lib.load_splits(str(tmp_path), 'task', 0.5, seed=0)
  bad = next(s for s in (splits.train, splits.valid) if 22 in s.lines)
  assert bad.source == str(path)
  with pytest.raises(ValueError, match=r'task\.train\.csv:22 '
                     r"\(global_binary\): \['x'\] not among"):
    tasks.parse_labels(tasks.make_spec('global_binary'), bad.seqs,
                       bad.labels, bad.source, bad.lines)


def _config(tmp_path):
  config = finetune_configs.get_config('custom,tiny')
  config.train.update(dict(seq_len=64, max_epochs_per_stage=0,
                           final_epochs=0))
  config.data.update(dict(directory=str(tmp_path), name='task'))
  return config


def test_empty_categorical_label_is_an_error(tmp_path):
  (tmp_path / 'task.train.csv').write_text(
      'seq,label\nMKV,a\nMKT,b\nMKW,\nMKY,a\n')
  config = _config(tmp_path)
  config.task.kind = 'global_categorical'
  with pytest.raises(ValueError, match=r'task\.train\.csv:4 '
                     r'\(global_categorical\): empty label'):
    experiment.run(config, str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


def test_single_class_binary_split_reports_null_auc(tmp_path, caplog):
  (tmp_path / 'task.train.csv').write_text(
      'seq,label\n' + ''.join(f'MKV{"W" * (i % 5)},{i % 2}\n'
                              for i in range(16)))
  (tmp_path / 'task.valid.csv').write_text('seq,label\nMKV,0\nMKT,0\n')
  (tmp_path / 'task.test.csv').write_text('seq,label\nMKV,1\nMKW,1\n')
  workdir = tmp_path / 'out'
  with caplog.at_level(logging.WARNING):
    summary = experiment.run(_config(tmp_path), str(workdir))
  assert 'only class 0: ROC AUC is undefined' in caplog.text
  assert 'only class 1: ROC AUC is undefined' in caplog.text
  assert np.isnan(summary['valid']) and np.isnan(summary['test'])
  text = (workdir / 'summary.json').read_text()
  assert json.loads(text, parse_constant=pytest.fail)['test'] is None


def _save_finetuned(path):
  spec = tasks.make_spec('global_categorical', 'ab')
  head = finetuned.make_head_config()
  model = finetuned.FinetunedModel(
      finetuned.init_params(MODEL, spec, head, jax.random.PRNGKey(0)), MODEL,
      spec, head)
  model.save(path)
  return model


def test_load_finetuned_reads_through_the_checked_reader(tmp_path):
  path = str(tmp_path / 'model.npz')
  model = _save_finetuned(path)
  loaded = finetuned.load_finetuned(path)
  assert loaded.spec == model.spec
  arrays = dict(np.load(path))
  for key, value, match in (
      ('__finetuning__', '{"task": ', r'__finetuning__ is not valid JSON'),
      ('__finetuning__', '{"task": {"kind": "global_colour"}, "head": {}}',
       r'__finetuning__ must hold a valid task and head: .*global_colour'),
      ('__model_config__', '{"local_dim": ', '__model_config__ is not valid'),
      ('task_head/output//w', np.zeros((3, 3), np.float32),
       r'task_head/output//w has shape \(3, 3\)'),
      ('task_head/output//b', np.array(['a', 'b']),
       'has dtype <U1, expected floating point')):
    bad = str(tmp_path / 'bad.npz')
    np.savez(bad, **dict(arrays, **{key: np.array(value)}))
    with pytest.raises(ValueError, match=r'bad\.npz.*' + match):
      finetuned.load_finetuned(bad)
