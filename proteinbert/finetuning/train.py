"""The original's fine-tuning schedule (protein_bert's `finetuning.finetune`).

  stage 'frozen'  the pretrained trunk frozen, only the head learns (the
                  demo's lr 1e-2); skipped when `begin_frozen` is False.
  stage 'all'     everything learns (lr 1e-4).
  stage 'final'   `final_epochs` epochs at `final_seq_len` (1024), batch size
                  scaled down to keep tokens per batch (lr 1e-5).

Every stage watches the validation loss after each epoch, with the demo's
Keras callbacks (reset at each stage, as Keras resets them per `fit`):
ReduceLROnPlateau(factor 0.25, patience 1, min_delta 1e-4, min_lr 1e-5) and
EarlyStopping(patience 2, restore_best_weights). The best parameters of the
stage are restored at its end, also when it ran out of epochs without
stopping early.

Training and validation sequences longer than the stage's length are left out
of that stage, as the original does (the log says how many);
`evaluate.evaluate_by_length` never leaves any out.
"""

import math
import time
from typing import Callable, NamedTuple, Optional, Sequence

from absl import logging
import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from proteinbert import batching
from proteinbert import tokenization
from proteinbert.finetuning import evaluate
from proteinbert.finetuning import finetuned
from proteinbert.finetuning import heads
from proteinbert.finetuning import tasks

OPTIMIZERS = ('adam', 'lamb')


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


class Plateau:
  """Keras' ReduceLROnPlateau and EarlyStopping on one monitored loss."""

  def __init__(self, learning_rate: float,
               config: ml_collections.ConfigDict):
    self.learning_rate = learning_rate
    self.stop = False
    self._config = config
    self._plateau_best = math.inf
    self._plateau_wait = 0
    self._stop_best = math.inf
    self._stop_wait = 0

  def update(self, loss: float) -> bool:
    """Takes an epoch's loss; returns whether it is the stage's best yet."""
    c = self._config
    if loss < self._plateau_best - c.plateau_min_delta:
      self._plateau_best, self._plateau_wait = loss, 0
    else:
      self._plateau_wait += 1
      if (self._plateau_wait >= c.plateau_patience
          and self.learning_rate > c.min_learning_rate):
        self.learning_rate = max(self.learning_rate * c.plateau_factor,
                                 c.min_learning_rate)
        self._plateau_wait = 0
    improved = loss < self._stop_best
    if improved:
      self._stop_best, self._stop_wait = loss, 0
    else:
      self._stop_wait += 1
      self.stop = self._stop_wait >= c.early_stopping_patience
    return improved


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


def _batch(encoded: _Encoded, indices, batch_size: int):
  """A fixed-size batch; padding rows are <PAD> with zero weight."""
  return (batching.pad_rows(encoded.tokens[indices], batch_size,
                            tokenization.PAD),
          batching.pad_rows(encoded.targets.values[indices], batch_size),
          batching.pad_rows(encoded.targets.weights[indices], batch_size))


def _make_optimizer(name: str) -> Callable:
  if name not in OPTIMIZERS:
    raise ValueError(f'Unknown optimizer {name!r}; expected one of '
                     f'{OPTIMIZERS}.')
  # The learning rate lives in the optimizer state, so the plateau rule can
  # change it between epochs without recompiling.
  return optax.inject_hyperparams(getattr(optax, name))


def _make_step(apply, spec: tasks.TaskSpec, optimizer) -> Callable:
  """The jitted update of the trainable params, the frozen ones held fixed."""

  def loss_fn(trainable, frozen, rng, tokens, values, weights):
    logits = apply(hk.data_structures.merge(frozen, trainable), rng, tokens,
                   True)
    total, count = heads.weighted_loss_sum(spec, logits, values, weights)
    return total / jnp.maximum(count, 1.0)

  @jax.jit
  def step(trainable, frozen, opt_state, rng, tokens, values, weights):
    loss, grads = jax.value_and_grad(loss_fn)(trainable, frozen, rng, tokens,
                                              values, weights)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    return optax.apply_updates(trainable, updates), opt_state, loss

  return step


# The loss of a batch, compiled per task and shape.
_loss_sums = jax.jit(heads.weighted_loss_sum, static_argnums=0)


def _labelled(array, weights):
  """Rows (global) or residues (per-residue) that carry a label."""
  return array[weights > 0]


class _Trainer:
  """What the stages of one `finetune` call share: model, data, RNGs, log."""

  def __init__(self, model_config, spec, head_config, train, valid, config,
               on_epoch):
    self._spec = spec
    self._train = train
    self._valid = valid
    self._config = config
    self._on_epoch = on_epoch
    self._apply = finetuned.build(model_config, spec,
                                  head_config).transformed.apply
    self._eval_logits = finetuned.logits_fn(model_config, spec, head_config)
    self._make_optimizer = _make_optimizer(config.optimizer)
    self._np_rng = np.random.default_rng(config.seed)
    self._rng = jax.random.PRNGKey(config.seed)

  def run_stage(self, stage: Stage, params: hk.Params) -> hk.Params:
    """Epochs until early stopping; returns the stage's best params."""
    logging.info('Stage %s: seq_len %d, batch %d, up to %d epochs, lr %g.',
                 stage.name, stage.seq_len, stage.batch_size,
                 stage.max_epochs, stage.learning_rate)
    spec = self._spec
    encoded_train = _encode(spec, *self._train, stage.seq_len, 'Training set')
    encoded_valid = _encode(spec, *self._valid, stage.seq_len,
                            'Validation set')
    trunk, head = heads.split_params(params)
    trainable, frozen = (params, {}) if stage.train_trunk else (head, trunk)
    optimizer = self._make_optimizer(learning_rate=stage.learning_rate)
    step = _make_step(self._apply, spec, optimizer)
    opt_state = optimizer.init(trainable)
    plateau = Plateau(stage.learning_rate, self._config)
    best = trainable
    for epoch in range(1, stage.max_epochs + 1):
      start = time.perf_counter()
      learning_rate = plateau.learning_rate
      opt_state.hyperparams['learning_rate'] = jnp.asarray(learning_rate)
      order = self._np_rng.permutation(len(encoded_train.tokens))
      losses = []
      for part in batching.batch_slices(len(order), stage.batch_size):
        self._rng, step_rng = jax.random.split(self._rng)
        trainable, opt_state, loss = step(
            trainable, frozen, opt_state, step_rng,
            *_batch(encoded_train, order[part], stage.batch_size))
        losses.append(loss)
      record = dict(stage=stage.name, epoch=epoch,
                    learning_rate=learning_rate,
                    train_proteins=len(encoded_train.tokens),
                    train_loss=float(np.mean(jax.device_get(losses))))
      record.update(self._validate(hk.data_structures.merge(frozen, trainable),
                                   encoded_valid, stage.batch_size))
      record['seconds'] = time.perf_counter() - start
      logging.info('%s', record)
      self._on_epoch(record)
      if plateau.update(record['valid_loss']):
        best = trainable
      if plateau.stop:
        break
    return hk.data_structures.merge(frozen, best)

  def _validate(self, params, encoded: _Encoded, batch_size: int) -> dict:
    """Validation loss (mean over labels) and the task's metrics."""
    spec = self._spec
    total = count = 0.0
    truths, predictions = [], []
    for part in batching.batch_slices(len(encoded.tokens), batch_size):
      tokens, values, weights = _batch(
          encoded, np.arange(part.start, part.stop), batch_size)
      logits = self._eval_logits(params, tokens)
      batch_total, batch_count = _loss_sums(spec, logits, values, weights)
      total += float(batch_total)
      count += float(batch_count)
      truths.append(_labelled(values, weights))
      predictions.append(_labelled(
          np.asarray(finetuned.predictions(spec, logits)), weights))
    truths = np.concatenate(truths)
    if spec.output_type == 'numeric':
      truths = truths * spec.target_std + spec.target_mean
    values, _ = evaluate.task_metrics(spec, truths,
                                      np.concatenate(predictions))
    return dict(valid_loss=total / max(count, 1.0),
                **{f'valid_{k}': v for k, v in values.items()})


def finetune(model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
             head_config: ml_collections.ConfigDict, params: hk.Params,
             train: tuple[Sequence[str], Sequence],
             valid: tuple[Sequence[str], Sequence],
             config: ml_collections.ConfigDict,
             on_epoch: Optional[Callable[[dict], None]] = None,
             schedule: Optional[Sequence[Stage]] = None
             ) -> tuple[hk.Params, list[dict]]:
  """Runs the staged schedule.

  Args:
    model_config: the trunk's config.
    spec: the task.
    head_config: the head section.
    params: initial params (`finetuned.init_params`).
    train: (sequences, parsed labels) to learn from.
    valid: (sequences, parsed labels) watched for early stopping.
    config: the `train` config section (see `finetuning.config`).
    on_epoch: called with each epoch's record as it is made.
    schedule: the stages to run; None runs `stages(config)`.

  Returns:
    (the best params of the last stage, one record per epoch: stage, epoch,
    learning_rate, train_proteins (those that fit the stage), train_loss,
    valid_loss, valid_<metric>..., seconds).
  """
  schedule = stages(config) if schedule is None else schedule
  check_lengths(schedule, train[0], valid[0])
  history = []

  def record(epoch_record):
    history.append(epoch_record)
    if on_epoch is not None:
      on_epoch(epoch_record)

  trainer = _Trainer(model_config, spec, head_config, train, valid, config,
                     record)
  for stage in schedule:
    params = trainer.run_stage(stage, params)
  return params, history
