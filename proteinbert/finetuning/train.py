"""The original's fine-tuning schedule (protein_bert's `finetuning.finetune`).

  stage 'frozen'  the pretrained trunk frozen, only the head learns (the
                  demo's lr 1e-2); skipped when `begin_frozen` is False.
  stage 'all'     everything learns (lr 1e-4).
  stage 'final'   `final_epochs` epochs at `final_seq_len` (1024), batch size
                  scaled down to keep tokens per batch (lr 1e-5).

Every stage watches the validation loss after each epoch, with the demo's
Keras callbacks (reset at each stage, as Keras resets them per `fit`):
ReduceLROnPlateau(factor 0.25, patience 1, min_delta 1e-4, min_lr 1e-5) and
EarlyStopping(patience 2, restore_best_weights), configured as
`train.plateau` and `train.early_stopping`. The best parameters of the stage
are restored at its end, also when it ran out of epochs without stopping
early.

The training stack is pretraining's: a state NamedTuple
(`update.FinetuneState`), a pure update step jitted with the state donated
(`training.distributed.jit_update`), the same optimizer construction and
plateau rule (`training.optimizer`), loss scaling under float16 and batches
sharded over every device. The plateau rule is fed the validation loss once
per epoch (`optimizer.step_plateau`); early stopping is the pure
`early_stopping` record. Each stage starts a fresh optimizer; the dropout key,
the loss scale and the step count carry over.

With `checkpoints`, the run is checkpointed after every epoch and resumed from
the newest readable checkpoint (`finetuning.checkpoints`).

Training and validation sequences longer than the stage's length are left out
of that stage, as the original does (the log says how many);
`evaluate.evaluate_by_length` never leaves any out.
"""

import functools
import time
from typing import Callable, NamedTuple, Optional, Sequence

from absl import logging
import haiku as hk
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import ml_collections
import numpy as np

from proteinbert import batching
from proteinbert import tokenization
from proteinbert.finetuning import checkpoints as checkpoints_lib
from proteinbert.finetuning import early_stopping
from proteinbert.finetuning import evaluate
from proteinbert.finetuning import finetuned
from proteinbert.finetuning import heads
from proteinbert.finetuning import tasks
from proteinbert.finetuning import update as update_lib
from proteinbert.training import distributed
from proteinbert.training import optimizer as optimizer_lib
from proteinbert.training import state as state_lib


class Stage(NamedTuple):
  name: str
  seq_len: int
  batch_size: int
  max_epochs: int
  learning_rate: float
  train_trunk: bool


def stages(config: ml_collections.ConfigDict) -> list[Stage]:
  """The stages the `train` config section asks for, in order."""
  result = []
  if config.begin_frozen:
    result.append(Stage('frozen', config.seq_len, config.batch_size,
                        config.max_epochs_per_stage,
                        config.frozen_learning_rate, False))
  result.append(Stage('all', config.seq_len, config.batch_size,
                      config.max_epochs_per_stage, config.learning_rate, True))
  if config.final_epochs > 0:
    # The original scales the batch down by the length ratio.
    final_batch = max(int(config.batch_size * config.seq_len
                          / config.final_seq_len), 1)
    result.append(Stage('final', config.final_seq_len, final_batch,
                        config.final_epochs, config.final_learning_rate, True))
  return result


def check_lengths(schedule: Sequence[Stage], train_seqs: Sequence[str],
                  valid_seqs: Sequence[str]) -> None:
  """Raises ValueError if some stage would have no sequence that fits."""
  for stage in schedule:
    for what, seqs in (('training', train_seqs), ('validation', valid_seqs)):
      if not tasks.fits(seqs, stage.seq_len).any():
        raise ValueError(
            f'No {what} sequence fits in the {stage.name} stage\'s seq_len '
            f'{stage.seq_len} (<START> and <END> included; the shortest '
            f'has {min(map(len, seqs))} residues).')


class _Encoded(NamedTuple):
  tokens: np.ndarray
  targets: tasks.Targets


def _encode(spec, seqs, labels, seq_len, what) -> _Encoded:
  """Tokens and targets of the sequences that fit in seq_len."""
  keep = np.flatnonzero(tasks.fits(seqs, seq_len))
  logging.info('%s: left out %d of %d sequences longer than %d residues.',
               what, len(seqs) - len(keep), len(seqs),
               seq_len - tokenization.ADDED_TOKENS_PER_SEQ)
  return _Encoded(
      tokenization.tokenize([seqs[i] for i in keep], seq_len),
      tasks.targets(spec, [labels[i] for i in keep], seq_len))


def _batch(encoded: _Encoded, indices, batch_size: int) -> update_lib.Batch:
  """The rows `indices`, padded to batch_size with <PAD> of zero weight."""
  return update_lib.Batch(
      batching.pad_rows(encoded.tokens[indices], batch_size,
                        tokenization.PAD),
      batching.pad_rows(encoded.targets.values[indices], batch_size),
      batching.pad_rows(encoded.targets.weights[indices], batch_size))


# The loss of a batch, compiled per task and shape.
_loss_sums = jax.jit(heads.weighted_loss_sum, static_argnums=0)


def _labelled(array, weights):
  """Rows (global) or residues (per-residue) that carry a label."""
  return array[weights > 0]


def _validate(spec: tasks.TaskSpec, logits_fn: Callable, params: hk.Params,
              encoded: _Encoded, batch_size: int) -> dict:
  """Validation loss (mean over labels) and the task's metrics."""
  total = count = 0.0
  truths, predictions = [], []
  for part in batching.batch_slices(len(encoded.tokens), batch_size):
    batch = _batch(encoded, np.arange(part.start, part.stop), batch_size)
    logits = logits_fn(params, batch.tokens)
    batch_total, batch_count = _loss_sums(spec, logits, batch.values,
                                          batch.weights)
    total += float(batch_total)
    count += float(batch_count)
    truths.append(_labelled(batch.values, batch.weights))
    predictions.append(_labelled(
        np.asarray(finetuned.predictions(spec, logits)), batch.weights))
  truths = np.concatenate(truths)
  if spec.output_type == 'numeric':
    truths = truths * spec.target_std + spec.target_mean
  values, _ = evaluate.task_metrics(spec, truths, np.concatenate(predictions))
  return dict(valid_loss=total / max(count, 1.0),
              **{f'valid_{k}': v for k, v in values.items()})


def _copy(tree):
  """Device copies: what a donated state held would otherwise be freed."""
  return jax.tree_util.tree_map(jnp.copy, tree)


class _Run(NamedTuple):
  """What every stage of one `finetune` call reads; none of it changes."""
  model_config: ml_collections.ConfigDict
  spec: tasks.TaskSpec
  head_config: ml_collections.ConfigDict
  train: tuple[Sequence[str], Sequence]
  valid: tuple[Sequence[str], Sequence]
  config: ml_collections.ConfigDict
  mesh: Mesh
  on_epoch: Callable[[dict], None]
  # After each epoch: save(state, early-stopping record, stage index, epoch).
  save: Callable[[update_lib.FinetuneState, early_stopping.Best, int, int],
                 None]


def _optimizer(config: ml_collections.ConfigDict, learning_rate: float):
  return optimizer_lib.make_optimizer(config, None, config.optimizer,
                                      learning_rate)


def _stage_start(start: update_lib.FinetuneState, stage: Stage,
                 config: ml_collections.ConfigDict
                 ) -> update_lib.FinetuneState:
  """A stage's first state: a fresh optimizer on `start`'s params."""
  return update_lib.init_state(
      _copy(update_lib.all_params(start)), stage.train_trunk,
      _optimizer(config, stage.learning_rate), start.loss_scale, start.rng,
      start.step)


# A few runs' stages: each entry holds an executable.
@functools.lru_cache(maxsize=8)
def _jitted_update(model_config: ml_collections.FrozenConfigDict,
                   spec: tasks.TaskSpec,
                   head_config: ml_collections.FrozenConfigDict,
                   config: ml_collections.FrozenConfigDict,
                   learning_rate: float, mesh: Mesh) -> Callable:
  """A stage's update step, jitted; built once per process for each model,
  task, config and rate, so that a run resumed or repeated in one process
  (a notebook, the tests) reuses the executables instead of compiling them
  again."""
  return distributed.jit_update(update_lib.make_update_fn(
      model_config, spec, head_config, _optimizer(config, learning_rate)),
      mesh)


def _run_stage(run: _Run, stage: Stage, number: int,
               start: update_lib.FinetuneState,
               resumed: Optional[checkpoints_lib.Resumed] = None
               ) -> update_lib.FinetuneState:
  """Epochs until early stopping.

  Args:
    run: the call's model, data and config.
    stage: this stage.
    number: its position in the schedule (seeds its shuffles).
    start: the previous stage's final state, or the starting params (with
      nothing frozen) with a fresh loss scale and key.
    resumed: a checkpoint of this stage to continue from, or None.

  Returns:
    The final state, its params the stage's best epoch's.
  """
  logging.info('Stage %s: seq_len %d, batch %d, up to %d epochs, lr %g.',
               stage.name, stage.seq_len, stage.batch_size,
               stage.max_epochs, stage.learning_rate)
  config, spec = run.config, run.spec
  encoded_train = _encode(spec, *run.train, stage.seq_len, 'Training set')
  encoded_valid = _encode(spec, *run.valid, stage.seq_len, 'Validation set')
  # Keyed by value: a locked config and its unlocked copy are one key.
  key = lambda c: ml_collections.FrozenConfigDict(c.to_dict())
  update = _jitted_update(key(run.model_config), spec, key(run.head_config),
                          key(config), stage.learning_rate, run.mesh)
  logits_fn = finetuned.logits_fn(run.model_config, spec, run.head_config)
  if resumed is None:
    state = distributed.replicate(_stage_start(start, stage, config),
                                  run.mesh)
    best, first_epoch = early_stopping.start(_copy(state.params)), 1
  else:
    state = distributed.replicate(resumed.state, run.mesh)
    best, first_epoch = resumed.best, resumed.epoch + 1
  for epoch in range(first_epoch, stage.max_epochs + 1):
    # Keras decides after each epoch; deciding before the next is the same,
    # and ends a resumed stage that had stopped.
    if epoch > 1 and early_stopping.should_stop(
        best, config.early_stopping.patience_epochs):
      break
    started = time.perf_counter()
    learning_rate = stage.learning_rate * float(distributed.to_host(
        optimizer_lib.plateau_scale(state.opt_state)))
    order = np.random.default_rng((config.seed, number, epoch)).permutation(
        len(encoded_train.tokens))
    losses = []
    for part in batching.batch_slices(len(order), stage.batch_size):
      state, metrics = update(state, distributed.shard_batch(
          _batch(encoded_train, order[part], stage.batch_size), run.mesh))
      losses.append(metrics['loss'])
    record = dict(stage=stage.name, epoch=epoch, learning_rate=learning_rate,
                  train_proteins=len(encoded_train.tokens),
                  train_loss=float(np.mean(distributed.to_host(losses))))
    record.update(_validate(spec, logits_fn, update_lib.all_params(state),
                            encoded_valid, stage.batch_size))
    record['seconds'] = time.perf_counter() - started
    logging.info('%s', record)
    run.on_epoch(record)
    state = state._replace(opt_state=optimizer_lib.step_plateau(
        state.opt_state, config.plateau, stage.learning_rate,
        record['valid_loss']))
    best = early_stopping.update(best, record['valid_loss'],
                                 _copy(state.params))
    run.save(state, best, number, epoch)
  return state._replace(params=best.params)


def finetune(model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
             head_config: ml_collections.ConfigDict, params: hk.Params,
             train: tuple[Sequence[str], Sequence],
             valid: tuple[Sequence[str], Sequence],
             config: ml_collections.ConfigDict,
             on_epoch: Optional[Callable[[dict], None]] = None,
             schedule: Optional[Sequence[Stage]] = None,
             checkpoints: Optional[checkpoints_lib.Checkpoints] = None
             ) -> tuple[hk.Params, list[dict]]:
  """Runs the staged schedule.

  Args:
    model_config: the trunk's config.
    spec: the task.
    head_config: the head section.
    params: initial params (`finetuned.init_params`); left as they are.
    train: (sequences, parsed labels) to learn from.
    valid: (sequences, parsed labels) watched for early stopping.
    config: the `train` config section (see `finetuning.config`).
    on_epoch: called with each epoch's record as it is made; a resumed run
      first replays the records of the epochs before its checkpoint.
    schedule: the stages to run; None runs `stages(config)`.
    checkpoints: where to write a checkpoint after every epoch; if it holds
      some, the run continues from the newest readable one, and ends bitwise
      as it would have without the interruption.

  Returns:
    (the best params of the last stage, one record per epoch: stage, epoch,
    learning_rate, train_proteins (those that fit the stage), train_loss,
    valid_loss, valid_<metric>..., seconds).

  Raises:
    ValueError: no sequence fits a stage, or the newest readable checkpoint
      is another run's (other config, schedule or model).
  """
  schedule = stages(config) if schedule is None else schedule
  check_lengths(schedule, train[0], valid[0])
  state = update_lib.FinetuneState(
      params=params, frozen={}, opt_state=(),
      loss_scale=state_lib.make_loss_scale(model_config, config),
      rng=jax.random.PRNGKey(config.seed), step=jnp.zeros((), jnp.int32))
  resumed = None
  if checkpoints is not None:
    resumed = checkpoints.restore(
        schedule, lambda number: _stage_start(state, schedule[number], config))
  history = []

  def record(epoch_record):
    history.append(epoch_record)
    if on_epoch is not None:
      on_epoch(epoch_record)

  def save(state, best, number, epoch):
    if checkpoints is not None:
      path = checkpoints.save(state, best, number, epoch, history, schedule,
                              model_config, spec, head_config)
      logging.info('Saved %s.', path)

  for epoch_record in resumed.history if resumed else ():
    record(epoch_record)
  run = _Run(model_config, spec, head_config, train, valid, config,
             distributed.make_mesh(), record, save)
  for number, stage in enumerate(schedule):
    if resumed is None or number > resumed.stage:
      state = _run_stage(run, stage, number, state)
    elif number == resumed.stage:
      logging.info('Resuming stage %s after epoch %d.', stage.name,
                   resumed.epoch)
      state = _run_stage(run, stage, number, state, resumed)
  return update_lib.all_params(state), history
