"""Fine-tuning checkpoints: one after every epoch, in pretraining's format.

The files are `training.checkpoint`'s (`ckpt_<step>.npz`, written atomically,
checked entry by entry against the run before anything is decompressed, a
damaged newest one skipped for the newest readable one), holding:
  `<module>//<param>`   the stage's best model so far, i.e. the params the
                        stage ends with if it stops now (after the last
                        epoch: the run's result), with `__model_config__` and
                        `__finetuning__`, so a checkpoint is a fine-tuned
                        model file (`finetuned.load_finetuned`);
  `train_state/.trained...`  the params the stage trains, as they stand;
  `train_state/.opt_state...`, `.loss_scale`, `.rng`, `.step`  the rest of
                        the `FinetuneState` (the plateau rule's counters and
                        scale are in the optimizer state);
  `train_state/.best_loss`, `.epochs_since`  the early-stopping record (its
                        params are the file's);
  `__checkpoint__`      JSON: the position (stage: index in the schedule,
                        epoch: epochs of that stage done), the epoch records
                        so far, and the config and schedule of the run.
The params a stage holds fixed (the trunk, in the frozen stage) are the best
model's too, so they are stored once. Shuffles are drawn per (seed, stage,
epoch), so this is all a resumed run needs to end bitwise equal to an
uninterrupted one. A run resumes only under the config and schedule it was
written with: under others it would be another run.
"""

import json
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import haiku as hk
import jax
import jmp
import ml_collections
import numpy as np
import optax

from proteinbert import io_utils
from proteinbert import params_io
from proteinbert.finetuning import early_stopping
from proteinbert.finetuning import finetuned
from proteinbert.finetuning import tasks
from proteinbert.finetuning import update as update_lib
from proteinbert.training import checkpoint


class Resumed(NamedTuple):
  """A run as it stood after a checkpointed epoch.

  Attributes:
    stage: the stage's index in the schedule.
    epoch: epochs of that stage done (1 or more).
    state: the FinetuneState after the epoch (numpy leaves).
    best: the stage's early-stopping record after the epoch.
    history: the epoch records so far, in order (JSON: undefined metrics are
      None).
  """
  stage: int
  epoch: int
  state: update_lib.FinetuneState
  best: early_stopping.Best
  history: list[dict]


class _Saved(NamedTuple):
  """A checkpoint's state: `params` are its parameter entries."""
  params: hk.Params
  trained: hk.Params
  opt_state: optax.OptState
  loss_scale: jmp.LossScale
  rng: jax.Array
  step: jax.Array
  best_loss: np.ndarray
  epochs_since: np.ndarray


def _saved(state: update_lib.FinetuneState,
           best: early_stopping.Best) -> _Saved:
  return _Saved(
      params=update_lib.all_params(state._replace(params=best.params)),
      trained=state.params, opt_state=state.opt_state,
      loss_scale=state.loss_scale, rng=state.rng, step=state.step,
      best_loss=np.asarray(best.loss, np.float64),
      epochs_since=np.asarray(best.epochs_since, np.int64))


def _unsaved(saved: _Saved, train_trunk: bool
             ) -> tuple[update_lib.FinetuneState, early_stopping.Best]:
  best_params, frozen = update_lib.split(saved.params, train_trunk)
  state = update_lib.FinetuneState(
      params=saved.trained, frozen=frozen, opt_state=saved.opt_state,
      loss_scale=saved.loss_scale, rng=saved.rng, step=saved.step)
  return state, early_stopping.Best(float(saved.best_loss), best_params,
                                    int(saved.epochs_since))


def _json(value: Any) -> Any:
  """`value` as it reads back from a checkpoint's JSON."""
  return json.loads(io_utils.json_dumps(value, default=str))


def _flat(tree: Any, prefix: str = '') -> dict[str, Any]:
  """{'a.b.0.c': value} of nested dicts and lists; other values are leaves."""
  if isinstance(tree, list):
    tree = dict(enumerate(tree))
  if not isinstance(tree, dict):
    return {prefix: tree}
  flat = {}
  for key, value in tree.items():
    flat.update(_flat(value, f'{prefix}.{key}' if prefix else str(key)))
  return flat


def _differences(stored: Mapping[str, Any], current: Mapping[str, Any]
                 ) -> list[str]:
  """'key: value in the checkpoint, value now' for each differing key."""
  stored, current = _flat(stored), _flat(current)
  show = lambda values, key: repr(values[key]) if key in values else 'absent'
  return [f'{key}: {show(stored, key)} in the checkpoint, '
          f'{show(current, key)} now'
          for key in sorted(stored.keys() | current.keys())
          if key not in stored or key not in current
          or stored[key] != current[key]]


class Checkpoints:
  """Where a fine-tuning run keeps its checkpoints, and what it must match.

  `train.finetune` writes one after every epoch and, given a directory that
  holds some, resumes from the newest readable one.
  """

  def __init__(self, directory: str,
               config: ml_collections.ConfigDict | Mapping[str, Any],
               keep_last: int = 2):
    """
    Args:
      directory: where the checkpoints go.
      config: what a run must be configured with to resume here, e.g. the
        experiment config but its checkpoint section (JSON-serialisable).
      keep_last: the newest this many are kept; older ones are deleted.

    Raises:
      ValueError: keep_last is below 1.
    """
    if keep_last < 1:
      raise ValueError(f'checkpoint.keep_last must be 1 or more, got '
                       f'{keep_last!r}.')
    self.directory = directory
    if isinstance(config, ml_collections.ConfigDict):
      config = config.to_dict()
    self._config = _json(config)
    self._keep_last = keep_last

  def latest(self) -> Optional[str]:
    """The newest checkpoint's path, or None."""
    return checkpoint.latest(self.directory)

  def _identity(self, schedule: Sequence[Any]) -> dict:
    return {'config': self._config,
            'schedule': _json([stage._asdict() for stage in schedule])}

  def save(self, state: update_lib.FinetuneState, best: early_stopping.Best,
           stage: int, epoch: int, history: Sequence[dict],
           schedule: Sequence[Any], model_config: ml_collections.ConfigDict,
           spec: tasks.TaskSpec, head_config: ml_collections.ConfigDict
           ) -> str:
    """Writes the run after an epoch; keeps the newest `keep_last`.

    Args:
      state: the FinetuneState after the epoch, its plateau rule stepped.
      best: the stage's early-stopping record after the epoch.
      stage: the stage's index in `schedule`.
      epoch: epochs of that stage done.
      history: every epoch record so far.
      schedule: the run's stages (`train.Stage`s).
      model_config, spec, head_config: the model (stored as a fine-tuned
        model file's).

    Returns:
      The checkpoint's path.
    """
    path = checkpoint.save(
        self.directory, _saved(state, best), {}, model_config,
        dict(self._identity(schedule), stage=stage, epoch=epoch,
             history=list(history)),
        extra=finetuned.model_entries(spec, head_config))
    kept = checkpoint.list_steps(self.directory)[-self._keep_last:]
    checkpoint.prune(self.directory, lambda step: step in kept)
    return path

  def restore(self, schedule: Sequence[Any],
              stage_start: Callable[[int], update_lib.FinetuneState]
              ) -> Optional[Resumed]:
    """The newest readable checkpoint's run, or None if there is none.

    Args:
      schedule: the run's stages; with the config, they must be the
        checkpoint's.
      stage_start: a stage's first state by index: only its structure is
        used.

    Raises:
      ValueError: the newest readable checkpoint was written under another
        config or schedule (the message lists what differs), or does not
        match the model; no checkpoint is readable.
    """
    if self.latest() is None:
      return None
    identity = self._identity(schedule)

    def template(metadata: dict) -> _Saved:
      differences = _differences(
          {k: metadata.get(k) for k in identity}, identity)
      if differences:
        raise ValueError(
            'written under another config; resume with its config or use '
            'another work directory. Differences: '
            + '; '.join(differences) + '.')
      stage, epoch = metadata.get('stage'), metadata.get('epoch')
      if (type(stage) is not int or not 0 <= stage < len(schedule)
          or type(epoch) is not int or epoch < 1
          or not isinstance(metadata.get('history'), list)):
        raise params_io.CorruptFileError(
            f'__checkpoint__ must hold a stage in [0, {len(schedule)}), an '
            f'epoch of 1 or more and a history list, got stage {stage!r}, '
            f'epoch {epoch!r}.')
      state = stage_start(stage)
      return _saved(state, early_stopping.start(state.params))

    _, restored = checkpoint.restore_latest(self.directory, template,
                                            set_aside_unreadable=True)
    metadata = restored.metadata
    state, best = _unsaved(restored.state,
                           schedule[metadata['stage']].train_trunk)
    return Resumed(metadata['stage'], metadata['epoch'], state, best,
                   metadata['history'])
