"""One fine-tuning experiment: data and checkpoint in, model and tables out.

Work directory layout:
  config.json         the resolved config
  checkpoints/        ckpt_<step>.npz after every epoch, the newest
                      `checkpoint.keep_last` kept (`finetuning.checkpoints`)
  history.jsonl       one JSON record per epoch (stage, losses, metrics, lr)
  model.npz           the fine-tuned model (`finetuning.load_finetuned`)
  eval_<split>.md     evaluation by length (+ confusion matrix) per split
  eval_<split>.csv    the same table as CSV
  summary.json        the headline figures (what the benchmark runner reads)
Every input is read and checked before anything is written; every file is
written atomically. The JSON files are strict JSON: a metric that is
undefined (ROC AUC of a split with one class) is null.

A work directory that holds checkpoints is resumed from the newest readable
one, which must have been written under the same config (but its checkpoint
section); config.json is then the one the run started with.
"""

import copy
import os
import time
from typing import Optional

from absl import logging
import haiku as hk
import jax
import ml_collections
import numpy as np

from proteinbert import inference
from proteinbert import io_utils
from proteinbert import tables
from proteinbert.finetuning import checkpoints as checkpoints_lib
from proteinbert.finetuning import data as data_lib
from proteinbert.finetuning import evaluate
from proteinbert.finetuning import finetuned
from proteinbert.finetuning import tasks
from proteinbert.finetuning import train as train_lib

# How the model runs rather than what it is: taken from config.model even
# when the architecture comes from a checkpoint.
_RUNTIME_KEYS = ('mask_padding', 'precision')


def load_trunk(config: ml_collections.ConfigDict
               ) -> tuple[Optional[hk.Params], ml_collections.ConfigDict]:
  """The starting trunk: (pretrained params or None, model config).

  Raises:
    ValueError: the checkpoint is unreadable or not a ProteinBERT model.
  """
  if not config.init_checkpoint:
    return None, copy.deepcopy(config.model)
  params, model_config = inference.load_params_any(config.init_checkpoint)
  differing = sorted(k for k in model_config.keys()
                     if k not in _RUNTIME_KEYS
                     and model_config[k] != config.model[k])
  if differing:
    logging.warning('The architecture comes from %s; it differs from '
                    'config.model in %s.', config.init_checkpoint, differing)
  with model_config.unlocked():
    for key in _RUNTIME_KEYS:
      model_config[key] = config.model[key]
  return params, model_config


def _limited(data: Optional[data_lib.LabelledData], limit: int, seed: int):
  if data is None or not limit or len(data.seqs) <= limit:
    return data
  keep = np.sort(np.random.default_rng(seed).permutation(
      len(data.seqs))[:limit])
  return data.subset(keep)


class _Prepared:
  """Checked inputs of an experiment: splits, task, parsed labels."""

  def __init__(self, config: ml_collections.ConfigDict):
    splits = data_lib.load_splits(config.data.directory, config.data.name,
                                  config.data.valid_fraction, config.data.seed)
    self.notes = splits.notes
    self.splits = {
        name: _limited(split, config.data.limit, config.data.seed)
        for name, split in (('train', splits.train), ('valid', splits.valid),
                            ('test', splits.test)) if split is not None}
    kind = config.task.kind
    classes = config.task.classes
    if tasks.output_type(kind) in ('categorical', 'multilabel') and not classes:
      classes = tasks.infer_classes(
          kind, [l for s in self.splits.values() for l in s.labels])
    spec = tasks.make_spec(kind, classes)
    self.labels = {name: tasks.parse_labels(spec, s.seqs, s.labels, s.source,
                                            s.lines)
                   for name, s in self.splits.items()}
    if config.task.standardize:
      spec = tasks.standardized(spec, self.labels['train'])
    self.spec = spec
    if spec.output_type == 'binary':
      for name, labels in self.labels.items():
        present = np.unique(np.concatenate([np.ravel(l) for l in labels]))
        if len(present) < 2:
          logging.warning(
              'The %s split (%s) has only class %d: ROC AUC is undefined '
              'there, and is reported as null.', name,
              self.splits[name].source, int(present[0]))

  def pair(self, name):
    return self.splits[name].seqs, self.labels[name]


def _write_json(path: str, value) -> None:
  tables.write_text(path, io_utils.json_dumps(value, indent=2, default=str)
                    + '\n')


def _evaluate(model: finetuned.FinetunedModel, prepared: _Prepared,
              config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Writes eval_<split>.md/.csv; returns {split: metric over all lengths}."""
  spec = model.spec
  metric = evaluate.PRIMARY_METRIC[spec.output_type]
  start_seq_len = config.eval.start_seq_len or config.train.seq_len
  results = {}
  for name in ('valid', 'test'):
    if name not in prepared.splits:
      continue
    evaluation = evaluate.evaluate_by_length(
        model, *prepared.pair(name), start_seq_len, config.eval.batch_size)
    text = (f'# {config.data.name}: {name} split by length\n\n'
            + tables.markdown(evaluation.rows))
    if evaluation.confusion_matrix is not None:
      text += ('\nConfusion matrix (all sequences; rows true, columns '
               'predicted):\n\n' + tables.matrix_markdown(
                   evaluation.confusion_matrix, spec.classes))
    prefix = os.path.join(workdir, f'eval_{name}')
    tables.write_csv(prefix + '.csv', evaluation.rows)
    tables.write_text(prefix + '.md', text)
    logging.info('%s %s: %s', config.data.name, name, evaluation.rows[-1])
    results[name] = evaluation.rows[-1][metric]
  return results


def run(config: ml_collections.ConfigDict, workdir: str,
        resume: bool = True) -> dict:
  """Fine-tunes, saves and evaluates one task.

  Args:
    config: a fine-tuning config (`finetuning.config.get_config()`).
    workdir: output directory (see the module docstring).
    resume: continue from the newest readable checkpoint in `workdir` if
      there is one; False refuses to run in a work directory that has
      checkpoints.

  Returns:
    The summary: task, kind, metric, valid and test values of the metric
    (over all lengths), split sizes, epochs (all, a resumed run's included),
    minutes (of this call), starting point, notes.

  Raises:
    ValueError: bad data, config or starting checkpoint, checkpoints in
      `workdir` without `resume`, or checkpoints of another config.
  """
  start = time.perf_counter()
  # Checked as everything else, before anything is written.
  checkpoints = checkpoints_lib.Checkpoints(
      os.path.join(workdir, 'checkpoints'),
      {k: v for k, v in config.to_dict().items() if k != 'checkpoint'},
      config.checkpoint.keep_last)
  latest = checkpoints.latest()
  if latest is not None and not resume:
    raise ValueError(f'{workdir} already has checkpoints ({latest}); resume '
                     'or choose another work directory.')
  prepared = _Prepared(config)
  train_lib.check_lengths(train_lib.stages(config.train),
                          prepared.splits['train'].seqs,
                          prepared.splits['valid'].seqs)
  spec = prepared.spec
  trunk_params, model_config = load_trunk(config)
  params = finetuned.init_params(model_config, spec, config.head,
                                 jax.random.PRNGKey(config.train.seed),
                                 trunk_params)
  logging.info('Task %s (%s): %s.', config.data.name, spec.kind,
               {k: len(v.seqs) for k, v in prepared.splits.items()})

  os.makedirs(workdir, exist_ok=True)
  if latest is None:
    _write_json(os.path.join(workdir, 'config.json'), config.to_dict())
  history = []

  def on_epoch(record):
    history.append(record)
    tables.write_text(os.path.join(workdir, 'history.jsonl'),
                      ''.join(io_utils.json_dumps(r) + '\n'
                              for r in history))

  params, _ = train_lib.finetune(
      model_config, spec, config.head, params, prepared.pair('train'),
      prepared.pair('valid'), config.train, on_epoch,
      checkpoints=checkpoints)
  model = finetuned.FinetunedModel(params, model_config, spec, config.head)
  model.save(os.path.join(workdir, 'model.npz'))

  summary = dict(task=config.data.name, kind=spec.kind,
                 metric=evaluate.PRIMARY_METRIC[spec.output_type],
                 init=config.init_checkpoint or 'random',
                 notes=prepared.notes)
  summary.update(_evaluate(model, prepared, config, workdir))
  summary.update({f'{k}_proteins': len(v.seqs)
                  for k, v in prepared.splits.items()})
  summary['epochs'] = len(history)
  summary['minutes'] = (time.perf_counter() - start) / 60
  _write_json(os.path.join(workdir, 'summary.json'), summary)
  return summary
