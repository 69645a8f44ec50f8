"""Our own parameter files: flat, inspectable .npz with strict key checking.

Each parameter is stored under `module/path//param` (e.g.
`protein_bert/block_1/local/narrow_conv//w`), so `numpy.load(path)` lists the
model without any of this code. The model config is stored beside the arrays
as JSON under `__model_config__`, so a file is self-describing. Entries
without `//` in their name are not parameters and are ignored when loading;
training checkpoints (`proteinbert.training.checkpoint`) keep their optimizer
and loader state there, so they are parameter files too.
"""

import json
import zipfile
from typing import Mapping, Optional

import haiku as hk
import jax
import ml_collections
import numpy as np

from proteinbert import config as config_lib
from proteinbert import io_utils

_SEPARATOR = '//'
CONFIG_KEY = '__model_config__'


def _flat_items(params):
  for module, values in params.items():
    for name, value in values.items():
      yield f'{module}{_SEPARATOR}{name}', value


def flatten(params: hk.Params) -> dict[str, np.ndarray]:
  """{'module/path//param': numpy array} for a Haiku params tree."""
  return {key: np.asarray(value) for key, value in _flat_items(params)}


def unflatten(flat: Mapping[str, np.ndarray]) -> hk.Params:
  """Inverse of `flatten`."""
  params = {}
  for key, value in flat.items():
    module, sep, name = key.rpartition(_SEPARATOR)
    if not sep:
      raise ValueError(f'Parameter key {key!r} lacks the {_SEPARATOR!r} '
                       'between module path and parameter name.')
    params.setdefault(module, {})[name] = value
  return params


def check_structure(params: hk.Params, expected, source: str = 'params'
                    ) -> None:
  """Raises ValueError listing missing, unexpected and mis-shaped entries.

  Args:
    params: the params to check.
    expected: a params tree of arrays or jax.ShapeDtypeStructs (e.g.
      `jax.eval_shape` of the model's init).
    source: how to name `params` in the error (e.g. the file path).
  """
  got = {k: tuple(v.shape) for k, v in _flat_items(params)}
  want = {k: tuple(v.shape) for k, v in _flat_items(expected)}
  problems = []
  missing = sorted(want.keys() - got.keys())
  extra = sorted(got.keys() - want.keys())
  if missing:
    problems.append(f'missing {missing}')
  if extra:
    problems.append(f'unexpected {extra}')
  problems += [f'{k} has shape {got[k]}, expected {want[k]}'
               for k in sorted(want.keys() & got.keys()) if got[k] != want[k]]
  if problems:
    raise ValueError(f'{source} does not match the model: '
                     + '; '.join(problems) + '.')


def save_params(path: str, params: hk.Params,
                model_config: Optional[ml_collections.ConfigDict] = None
                ) -> None:
  """Writes params (and the model config, if given) to `path` atomically."""
  arrays = flatten(jax.device_get(params))
  if model_config is not None:
    arrays[CONFIG_KEY] = np.array(model_config.to_json())
  with io_utils.atomic_path(path) as tmp, open(tmp, 'wb') as f:
    np.savez(f, **arrays)


def read_npz(path: str) -> dict[str, np.ndarray]:
  """Every entry of an .npz file, with a clear error if it is unreadable."""
  try:
    with np.load(path, allow_pickle=False) as data:
      return {k: data[k] for k in data.files}
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise ValueError(f'{path}: not a readable .npz file: {e}') from e


def from_arrays(arrays: Mapping[str, np.ndarray], source: str
                ) -> tuple[hk.Params, Optional[ml_collections.ConfigDict]]:
  """Params and model config from the entries of a parameter file.

  Returns:
    (params, model config or None if there is none). The config is the
    default model config updated with the stored values, so files written
    before a key was added still load; unknown stored keys are an error.
  """
  params = unflatten({k: v for k, v in arrays.items() if _SEPARATOR in k})
  if CONFIG_KEY not in arrays:
    return params, None
  stored = json.loads(str(arrays[CONFIG_KEY]))
  config = config_lib.get_model_config()
  unknown = sorted(set(stored) - set(config.keys()))
  if unknown:
    raise ValueError(f'{source}: unknown model config keys {unknown}.')
  config.update(stored)
  return params, config


def load_params(path: str) -> tuple[hk.Params,
                                    Optional[ml_collections.ConfigDict]]:
  """Reads a file written by `save_params` (or a training checkpoint).

  Returns:
    (params, model config or None); see `from_arrays`.
  """
  return from_arrays(read_npz(path), path)
