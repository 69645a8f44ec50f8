"""Our own parameter files: flat, inspectable .npz with strict key checking.

Each parameter is stored under `module/path//param` (e.g.
`protein_bert/block_1/local/narrow_conv//w`), so `numpy.load(path)` lists the
model without any of this code. The model config is stored beside the arrays
as JSON under `__model_config__`, so a file is self-describing.
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
_CONFIG_KEY = '__model_config__'


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
    arrays[_CONFIG_KEY] = np.array(model_config.to_json())
  with io_utils.atomic_path(path) as tmp, open(tmp, 'wb') as f:
    np.savez(f, **arrays)


def load_params(path: str) -> tuple[hk.Params,
                                    Optional[ml_collections.ConfigDict]]:
  """Reads a file written by `save_params`.

  Returns:
    (params, model config or None if the file carries none). The config is
    the default model config updated with the stored values, so files written
    before a key was added still load; unknown stored keys are an error.
  """
  try:
    with np.load(path, allow_pickle=False) as data:
      flat = {k: data[k] for k in data.files}
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise ValueError(f'{path}: not a readable .npz parameter file: {e}') from e
  config = None
  if _CONFIG_KEY in flat:
    stored = json.loads(str(flat.pop(_CONFIG_KEY)))
    config = config_lib.get_model_config()
    unknown = sorted(set(stored) - set(config.keys()))
    if unknown:
      raise ValueError(f'{path}: unknown model config keys {unknown}.')
    config.update(stored)
  return unflatten(flat), config
