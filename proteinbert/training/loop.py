"""The pretraining loop: data in, update steps, metrics and checkpoints out.

Work directory layout:
  config.json          the resolved experiment config
  metrics.jsonl        one JSON record per logging step (and per evaluation)
  tensorboard/         TensorBoard event files with the same scalars
  checkpoints/         ckpt_<step>.npz (see `checkpoint.py`)
A work directory that holds checkpoints is resumed from its latest one.
"""

import copy
import json
import os
import time
from typing import Optional

from absl import logging
import jax
import ml_collections
import numpy as np

from proteinbert import config as config_lib
from proteinbert import io_utils
from proteinbert.data import batch as batch_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import loader as loader_lib
from proteinbert.training import checkpoint
from proteinbert.training import distributed
from proteinbert.training import evaluation
from proteinbert.training import metrics_writer
from proteinbert.training import optimizer as optimizer_lib
from proteinbert.training import state as state_lib
from proteinbert.training import update as update_lib


def open_pretraining_dataset(config: ml_collections.ConfigDict):
  """The configured dataset, or the bundled demo dataset for ''."""
  path = config.data.dataset_path or dataset_lib.demo_dataset_path()
  return dataset_lib.open_dataset(path)


def resolve_annotations(config: ml_collections.ConfigDict,
                        num_annotations: int) -> ml_collections.ConfigDict:
  """A copy of `config` whose model has the dataset's annotation vocabulary.

  The annotation layers' size is the dataset's, whatever the config says;
  the copy is what config.json and checkpoints store, so no stored config
  disagrees with the model.
  """
  if config.model.num_annotations != num_annotations:
    logging.warning('The dataset has %d annotations: model.num_annotations '
                    '%d -> %d.', num_annotations, config.model.num_annotations,
                    num_annotations)
  config = copy.deepcopy(config)
  config.model.num_annotations = num_annotations
  return config


def heldout_indices(dataset, num_proteins: int) -> np.ndarray:
  """Test-set proteins that have annotations, up to `num_proteins`."""
  candidates = np.flatnonzero(dataset.is_test)
  return candidates[:num_proteins]


class _Throughput:
  """Samples and tokens per second of update steps since the last report.

  Steps that compile and time spent evaluating or checkpointing are left
  out: the caller resets the clock after them.
  """

  def __init__(self):
    self.reset()

  def reset(self):
    self.samples, self.tokens = 0, 0
    self.since = time.perf_counter()

  def add(self, batch):
    self.samples += batch.tokens.shape[0]
    self.tokens += batch.tokens.size

  def report(self, process_count: int) -> dict:
    seconds = max(time.perf_counter() - self.since, 1e-9)
    return {'samples_per_s': self.samples * process_count / seconds,
            'tokens_per_s': self.tokens * process_count / seconds}


class _Cadence:
  """When the loop logs, checkpoints and evaluates: predicates of the step.

  Every cadence counts update steps from the start of the run (resumes
  included), so a resumed run keeps the same schedule.
  """

  def __init__(self, config: ml_collections.ConfigDict, stop: int):
    epoch = config.data.batches_per_epoch
    self._log = config.train.log_every_steps
    self._checkpoint = epoch * config.checkpoint.every_epochs
    self._eval = epoch * config.eval.every_epochs
    self._stop = stop

  def checkpoint(self, step: int) -> bool:
    return step % self._checkpoint == 0

  def evaluate(self, step: int) -> bool:
    return self._eval > 0 and step % self._eval == 0

  def log(self, step: int) -> bool:
    """Also at every checkpoint and at the last step, so that what is saved
    has been logged."""
    return (step % self._log == 0 or self.checkpoint(step)
            or step == self._stop)

  def kept(self, step: int, keep_every: int) -> bool:
    """Whether a periodic checkpoint of `step` survives pruning."""
    return (self.checkpoint(step)
            and (step // self._checkpoint) % keep_every == 0)


def _mean_metrics(history: list) -> dict:
  fetched = distributed.to_host(history)
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}


def _write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  with io_utils.atomic_path(os.path.join(workdir, 'config.json')) as tmp:
    with open(tmp, 'w') as f:
      f.write(config.to_json_best_effort(indent=2))


def pretrain(config: ml_collections.ConfigDict, workdir: str,
             resume: bool = True,
             max_steps: Optional[int] = None) -> state_lib.TrainState:
  """Pretrains until `config.train.num_steps` (or `max_steps` in this call).

  Args:
    config: the full experiment config (`proteinbert.config.get_config()`).
    workdir: where config, metrics, TensorBoard events and checkpoints go.
    resume: continue from the latest checkpoint in `workdir` if there is
      one; False refuses to run in a work directory that has checkpoints.
    max_steps: stop after this many steps of this call (e.g. benchmarks).

  Returns:
    The final TrainState (replicated over devices).

  Raises:
    FloatingPointError: the loss became NaN/inf; the last checkpoint written
      before it is kept.
    ValueError: bad dataset, config or checkpoint (the message says which).
  """
  config_lib.validate(config)
  process_index, process_count = jax.process_index(), jax.process_count()
  is_chief = process_index == 0
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  dataset = open_pretraining_dataset(config)
  config = resolve_annotations(config, dataset.num_annotations)
  model_config = config.model
  batches_per_epoch = config.data.batches_per_epoch
  optimizer = optimizer_lib.make_optimizer(config.train, batches_per_epoch)
  state = state_lib.init_state(model_config, config.train, optimizer,
                               config.train.seed)

  loader_state = None
  latest = checkpoint.latest(ckpt_dir)
  if latest is not None:
    if not resume:
      raise ValueError(f'{workdir} already has checkpoints ({latest}); resume '
                       'or choose another work directory.')
    latest, (state, loader_state, _) = checkpoint.restore_latest(
        ckpt_dir, state, set_aside_unreadable=is_chief)
    logging.info('Resumed from %s (step %d).', latest, int(state.step))
  if is_chief:
    _write_config(workdir, config)

  mesh = distributed.make_mesh()
  state = distributed.replicate(state, mesh)
  update = distributed.jit_update(
      update_lib.make_update_fn(model_config, config.train, optimizer), mesh)
  loader = loader_lib.PretrainingLoader(
      dataset, config.data, process_index=process_index,
      process_count=process_count, state=loader_state)

  writer = metrics_writer.MetricsWriter(workdir) if is_chief else None
  eval_indices = heldout_indices(dataset, config.eval.num_proteins)
  eval_step = evaluation.make_eval_step(
      model_config, config.train,
      evaluation.corpus_frequencies(dataset) if eval_indices.size else None,
      config.data.seq_noise_prob)

  step = int(distributed.to_host(state.step))
  total = config.train.num_steps
  stop = total if max_steps is None else min(
      total if total >= 0 else np.inf, step + max_steps)
  cadence = _Cadence(config, stop)

  def save(state, loader_state):
    if is_chief:
      path = checkpoint.save(
          ckpt_dir, state, loader_state, model_config,
          # The model config is stored once, as the parameter file's.
          {'epoch': int(state.step) // batches_per_epoch,
           'config': {k: v for k, v in json.loads(
               config.to_json_best_effort()).items() if k != 'model'}},
          dataset.vocabulary if dataset.num_annotations else None)
      checkpoint.prune(ckpt_dir, lambda step: cadence.kept(
          step, config.checkpoint.keep_every))
      logging.info('Saved %s.', path)

  def run_eval(state):
    params = jax.tree_util.tree_map(lambda x: x.addressable_data(0),
                                    state.params)
    batches = batch_lib.heldout_batches(
        dataset, eval_indices, config.eval.seq_len, config.eval.batch_size,
        config.data, seed=config.data.seed, reveal_test_annotations=True)
    return evaluation.evaluate(eval_step, params, batches)

  def log(state, history):
    record = _mean_metrics(history)
    if not np.isfinite(record['loss']):
      raise FloatingPointError(
          f'Loss is {record["loss"]} by step {step}; stopping. The last '
          f'good checkpoint is {checkpoint.latest(ckpt_dir)}.')
    # Only the plateau scale leaves the device, not the optimizer moments.
    record['learning_rate'] = config.train.learning_rate * float(
        distributed.to_host(optimizer_lib.plateau_scale(state.opt_state)))
    record.update(throughput.report(process_count))
    if writer:
      writer.write(step, record)
    logging.info('step %d: loss %.4f token_loss %.4f (%.1f samples/s)',
                 step, record['loss'], record['token_loss'],
                 record['samples_per_s'])

  history, throughput, compiled_lengths = [], _Throughput(), set()
  last_loader_state = loader_state
  try:
    with loader.prefetch() as batches:
      while stop < 0 or step < stop:
        batch, last_loader_state = next(batches)
        seq_len = batch.tokens.shape[1]
        state, metrics = update(state, distributed.shard_batch(batch, mesh))
        if seq_len in compiled_lengths:
          throughput.add(batch)
        else:
          # The first step of an episode length compiles; keep its time out
          # of the throughput figures.
          started = time.perf_counter()
          jax.block_until_ready(metrics)
          logging.info('Compiled and ran the step for seq_len %d in %.1f s.',
                       seq_len, time.perf_counter() - started)
          compiled_lengths.add(seq_len)
          throughput.reset()
        history.append(metrics)
        step += 1
        if cadence.log(step):
          log(state, history)
          history = []
        if cadence.checkpoint(step):
          save(state, last_loader_state)
        if cadence.evaluate(step) and eval_indices.size:
          heldout = run_eval(state)
          if writer:
            writer.write(step, heldout)
        if cadence.log(step) or cadence.evaluate(step):
          throughput.reset()
    if last_loader_state is not None and (
        checkpoint.latest(ckpt_dir) != checkpoint.path_for(ckpt_dir, step)):
      save(state, last_loader_state)
  finally:
    if writer:
      writer.close()
  return state
