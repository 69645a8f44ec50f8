"""Training checkpoints: atomic, strict, and readable as plain parameter files.

A checkpoint is one .npz file, `ckpt_<step>.npz`, holding
  `<module>//<param>`    the model parameters, exactly as `params_io` writes
                         them, with `__model_config__`; so a checkpoint is
                         also a parameter file (`proteinbert.load_pretrained`
                         reads it);
  `train_state/<path>`   the rest of the TrainState (optimizer state, loss
                         scale, rng, step), keyed by pytree path;
  `loader/<name>`        the data loader's state after the last batch trained;
  `__checkpoint__`       JSON: step, epoch, the experiment config but its model
                         section (that is the parameter file's model config).
Restoring checks every key, shape and dtype against a freshly initialised
state, so a checkpoint of another architecture or optimizer fails loudly; the
checks read the entries' headers, so nothing is decompressed before they
pass. Resuming skips a damaged newest checkpoint (e.g. truncated by a full
disk) for the newest readable one.

The state is pretraining's TrainState or any NamedTuple with the model's
`params` and a `step` (fine-tuning's, `finetuning.checkpoints`); where its
structure changes along a run, the template is a function of the metadata.
"""

import glob
import os
import re
from typing import Any, Callable, Mapping, NamedTuple, Optional, Union

from absl import logging
import jax
import ml_collections
import numpy as np

from proteinbert import io_utils
from proteinbert import params_io
from proteinbert.training import distributed
from proteinbert.training import state as state_lib

_STATE_PREFIX = 'train_state/'
_LOADER_PREFIX = 'loader/'
_META_KEY = '__checkpoint__'
_NAME = re.compile(r'ckpt_(\d+)\.npz$')


class Checkpoint(NamedTuple):
  """A restored checkpoint."""
  state: state_lib.TrainState  # Or the template's type.
  loader_state: dict
  metadata: dict


def _state_leaves(state: state_lib.TrainState) -> dict[str, Any]:
  """The non-parameter leaves of a state, keyed by pytree path."""
  rest = state._replace(params={})
  leaves, _ = jax.tree_util.tree_flatten_with_path(rest)
  return {_STATE_PREFIX + jax.tree_util.keystr(path): leaf
          for path, leaf in leaves}


def path_for(directory: str, step: int) -> str:
  return os.path.join(directory, f'ckpt_{step:010d}.npz')


def save(directory: str, state: state_lib.TrainState,
         loader_state: Mapping[str, np.ndarray],
         model_config: ml_collections.ConfigDict,
         metadata: Mapping[str, Any],
         go_vocabulary: Optional[Any] = None,
         extra: Optional[Mapping[str, np.ndarray]] = None) -> str:
  """Writes a checkpoint atomically; returns its path.

  Args:
    directory: where checkpoints live.
    state: the TrainState, or another NamedTuple with `params` and `step`
      (replicated jax arrays or numpy).
    loader_state: the loader's state after the last batch `state` trained on.
    model_config: the model config (stored as in parameter files).
    metadata: JSON-serialisable extras (step, epoch, config, ...).
    go_vocabulary: the dataset's `Vocabulary` (stored as in parameter files),
      so the checkpoint's annotation outputs map back to GO terms.
    extra: more entries by name, as `params_io.save_params` takes them (a
      fine-tuned model's task, so the checkpoint is also a model file).
  """
  state = distributed.to_host(state)
  step = int(state.step)
  entries = dict(extra or {})
  entries.update(_state_leaves(state))
  entries.update({_LOADER_PREFIX + k: np.asarray(v)
                  for k, v in loader_state.items()})
  entries[_META_KEY] = np.array(io_utils.json_dumps(dict(metadata,
                                                         step=step)))
  path = path_for(directory, step)
  params_io.save_params(path, state.params, model_config, go_vocabulary,
                        entries)
  return path


def list_steps(directory: str) -> list[int]:
  """Steps of the complete checkpoints in `directory`, ascending."""
  steps = []
  for path in glob.glob(os.path.join(directory, 'ckpt_*.npz')):
    match = _NAME.search(os.path.basename(path))
    if match:
      steps.append(int(match.group(1)))
  return sorted(steps)


def latest(directory: str) -> Optional[str]:
  steps = list_steps(directory)
  return path_for(directory, steps[-1]) if steps else None


Template = Union[state_lib.TrainState, Callable[[dict], Any]]


def restore(path: str, template: Template) -> Checkpoint:
  """Reads a checkpoint into the structure of `template`.

  Args:
    path: a file written by `save`.
    template: a state of the same model and optimizer (e.g. `init_state`);
      only its structure, shapes and dtypes are used. Or a function of the
      checkpoint's metadata that returns one, raising ValueError (reported
      with the path) for metadata it refuses.

  Returns:
    The Checkpoint, with numpy leaves.

  Raises:
    params_io.CorruptFileError: a damaged file (unreadable, truncated,
      invalid JSON, non-finite parameters).
    ValueError: any missing, unexpected, mis-shaped or mis-typed entry (all
      listed), found before any entry is decompressed.
  """
  with params_io.NpzReader(path) as reader:
    if _META_KEY not in reader:
      raise ValueError(f'{path}: not a training checkpoint (no {_META_KEY}).')
    metadata = reader.read_json(_META_KEY)
    if not isinstance(metadata, dict):
      raise params_io.CorruptFileError(
          f'{path}: {_META_KEY} must be a JSON object.')
    if callable(template):
      try:
        template = template(metadata)
      except ValueError as e:  # CorruptFileError stays one.
        raise type(e)(f'{path}: {e}') from e
    reader.read_model_config()  # Refuses an impossible stored config.
    params = reader.read_params(template.params)

    expected = _state_leaves(template)
    got = {k: reader.header(k) for k in reader.keys()
           if k.startswith(_STATE_PREFIX)}
    problems = [f'missing {k}' for k in sorted(expected.keys() - got.keys())]
    problems += [f'unexpected {k}'
                 for k in sorted(got.keys() - expected.keys())]
    for key in sorted(expected.keys() & got.keys()):
      want, (shape, dtype) = expected[key], got[key]
      if shape != np.shape(want) or dtype != want.dtype:
        problems.append(f'{key} is {dtype}{list(shape)}, expected '
                        f'{want.dtype}{list(np.shape(want))}')
    if problems:
      raise ValueError(f'{path} does not match this model/optimizer: '
                       + '; '.join(problems) + '.')
    rest = template._replace(params={})
    paths, treedef = jax.tree_util.tree_flatten_with_path(rest)
    leaves = [reader.read(_STATE_PREFIX + jax.tree_util.keystr(p))
              for p, _ in paths]
    loader_state = {k[len(_LOADER_PREFIX):]: reader.read(k)
                    for k in reader.keys() if k.startswith(_LOADER_PREFIX)}
  state = jax.tree_util.tree_unflatten(treedef, leaves)._replace(
      params=params)
  return Checkpoint(state, loader_state, metadata)


def restore_latest(directory: str, template: Template,
                   set_aside_unreadable: bool = False
                   ) -> tuple[str, Checkpoint]:
  """Restores the newest readable checkpoint in `directory`.

  A damaged newer checkpoint (e.g. truncated when the disk filled) is skipped
  with a warning naming it. With `set_aside_unreadable` (the one process that
  writes checkpoints), it is renamed to `<name>.unreadable` once an older one
  has been restored, so that it is kept for inspection but no longer counts
  as the latest: `prune` would otherwise keep it and delete the run's new
  checkpoints. A checkpoint that is readable but does not fit `template` is
  an error, not skipped: the older ones belong to the same run.

  Args:
    directory: where checkpoints live.
    template: see `restore`.
    set_aside_unreadable: rename the damaged newer checkpoints.

  Returns:
    (path, Checkpoint).

  Raises:
    ValueError: no checkpoint, none readable, or one that does not match.
  """
  damaged = []
  for step in reversed(list_steps(directory)):
    path = path_for(directory, step)
    try:
      restored = restore(path, template)
    except params_io.CorruptFileError as e:
      logging.warning('Skipping the damaged checkpoint %s: %s', path, e)
      damaged.append((path, e))
      continue
    for bad, _ in damaged if set_aside_unreadable else ():
      os.replace(bad, bad + '.unreadable')
      logging.warning('Renamed the damaged %s to %s.unreadable.', bad, bad)
    return path, restored
  raise ValueError(f'No readable checkpoint in {directory}'
                   + ''.join(f'; {e}' for _, e in damaged) + '.')


def prune(directory: str, keep: Callable[[int], bool]) -> None:
  """Deletes every checkpoint but the latest and those with keep(step)."""
  steps = list_steps(directory)
  for step in steps[:-1]:
    if not keep(step):
      os.remove(path_for(directory, step))
