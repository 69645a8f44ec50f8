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


def model_config_for(config: ml_collections.ConfigDict,
                     num_annotations: int) -> ml_collections.ConfigDict:
  """The model config with the dataset's annotation vocabulary size."""
  model_config = copy.deepcopy(config.model)
  if model_config.num_annotations != num_annotations:
    logging.info('Dataset has %d annotations; model.num_annotations %d -> %d.',
                 num_annotations, model_config.num_annotations,
                 num_annotations)
    with model_config.unlocked():
      model_config.num_annotations = num_annotations
  return model_config


def heldout_indices(dataset, num_proteins: int) -> np.ndarray:
  """Test-set proteins that have annotations, up to `num_proteins`."""
  candidates = np.flatnonzero(dataset.is_test)
  return candidates[:num_proteins]


class _Throughput:
  """Samples, tokens and seconds since the last report, per episode."""

  def __init__(self):
    self.reset()
    self.seconds_per_episode = {}

  def reset(self):
    self.samples, self.tokens = 0, 0
    self.since = time.perf_counter()

  def add(self, batch):
    self.samples += batch.tokens.shape[0]
    self.tokens += batch.tokens.size

  def report(self, seq_len: int, process_count: int) -> dict:
    seconds = time.perf_counter() - self.since
    self.seconds_per_episode[seq_len] = (
        self.seconds_per_episode.get(seq_len, 0.0) + seconds)
    out = {
        'samples_per_s': self.samples * process_count / seconds,
        'tokens_per_s': self.tokens * process_count / seconds,
        'episode_seq_len': seq_len,
    }
    out.update({f'episode_seconds/{k}': v
                for k, v in self.seconds_per_episode.items()})
    self.reset()
    return out


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
  process_index, process_count = jax.process_index(), jax.process_count()
  is_chief = process_index == 0
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  dataset = open_pretraining_dataset(config)
  model_config = model_config_for(config, dataset.num_annotations)
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

  def save(state, loader_state):
    if is_chief:
      path = checkpoint.save(
          ckpt_dir, state, loader_state, model_config,
          {'epoch': int(state.step) // batches_per_epoch,
           'config': json.loads(config.to_json_best_effort())},
          dataset.vocabulary if dataset.num_annotations else None)
      save_every = batches_per_epoch * config.checkpoint.every_epochs
      checkpoint.prune(ckpt_dir, lambda step: (
          step % save_every == 0
          and (step // save_every) % config.checkpoint.keep_every == 0))
      logging.info('Saved %s.', path)

  def run_eval(state):
    if not eval_indices.size:
      return {}
    params = jax.tree_util.tree_map(lambda x: x.addressable_data(0),
                                    state.params)
    batches = batch_lib.heldout_batches(
        dataset, eval_indices, config.eval.seq_len, config.eval.batch_size,
        config.data, seed=config.data.seed, reveal_test_annotations=True)
    return evaluation.evaluate(eval_step, params, batches)

  step = int(distributed.to_host(state.step))
  total = config.train.num_steps
  stop = total if max_steps is None else min(
      total if total >= 0 else np.inf, step + max_steps)
  history, throughput, compile_seconds = [], _Throughput(), {}
  last_loader_state = loader_state
  try:
    with loader.prefetch() as batches:
      while stop < 0 or step < stop:
        batch, last_loader_state = next(batches)
        seq_len = batch.tokens.shape[1]
        if seq_len not in compile_seconds:
          # The first step of an episode length compiles; keep that time
          # out of the throughput figures.
          started = time.perf_counter()
          state, metrics = update(state, distributed.shard_batch(batch, mesh))
          jax.block_until_ready(metrics)
          compile_seconds[seq_len] = time.perf_counter() - started
          logging.info('Compiled the step for seq_len %d in %.1f s.', seq_len,
                       compile_seconds[seq_len])
          throughput.reset()
        else:
          state, metrics = update(state, distributed.shard_batch(batch, mesh))
          throughput.add(batch)
        history.append(metrics)
        step += 1
        epoch_end = step % batches_per_epoch == 0
        checkpoint_due = epoch_end and (
            step // batches_per_epoch) % config.checkpoint.every_epochs == 0
        if step % config.train.log_every_steps == 0 or checkpoint_due or (
            step == stop):
          record = _mean_metrics(history)
          history = []
          if not np.isfinite(record['loss']):
            raise FloatingPointError(
                f'Loss is {record["loss"]} by step {step}; stopping. The last '
                f'good checkpoint is {checkpoint.latest(ckpt_dir)}.')
          record['learning_rate'] = optimizer_lib.learning_rate(
              distributed.to_host(state.opt_state), config.train)
          record.update(throughput.report(seq_len, process_count))
          record.update({f'compile_seconds/{k}': v
                         for k, v in compile_seconds.items()})
          if writer:
            writer.write(step, record)
          logging.info('step %d: loss %.4f token_loss %.4f (%.1f samples/s)',
                       step, record['loss'], record['token_loss'],
                       record['samples_per_s'])
        if checkpoint_due:
          save(state, last_loader_state)
        if epoch_end and config.eval.every_epochs and (
            step // batches_per_epoch) % config.eval.every_epochs == 0:
          heldout = run_eval(state)
          if writer and heldout:
            writer.write(step, heldout)
          throughput.reset()
    if last_loader_state is not None and (
        checkpoint.latest(ckpt_dir) != checkpoint.path_for(ckpt_dir, step)):
      save(state, last_loader_state)
  finally:
    if writer:
      writer.close()
  return state
