"""Our own parameter files: flat, inspectable .npz with strict key checking.

Each parameter is stored under `module/path//param` (e.g.
`protein_bert/block_1/local/narrow_conv//w`), so `numpy.load(path)` lists the
model without any of this code. The model config is stored beside the arrays
as JSON under `__model_config__`, and the GO vocabulary of the annotation
outputs (IDs, names, namespaces, training counts) under `__go_vocabulary__`
when the model was trained on a dataset that has one, so a file is
self-describing and its annotation outputs map back to GO terms. Entries
without `//` in their name are not parameters and are ignored when loading;
training checkpoints (`proteinbert.training.checkpoint`) keep their optimizer
and loader state there, so they are parameter files too.

Files are read as untrusted input (`NpzReader`): an entry is decompressed only
when a loader asks for it, after its .npy header (shape and dtype) has been
checked against what the loader expects, and no file may materialise more
than `_MAX_EXPANSION` times its own size, so a small file cannot unpack into
gigabytes (a zip bomb). Damaged files raise `CorruptFileError`; files that are
sound but do not fit the model raise ValueError; both name the file.
"""

import hashlib
import io
import json
import math
import os
import zipfile
from typing import Any, Mapping, Optional

import haiku as hk
import jax
import ml_collections
import numpy as np

from proteinbert import config as config_lib
from proteinbert import io_utils
from proteinbert import model as model_lib
from proteinbert.data import dataset as dataset_lib

_SEPARATOR = '//'
CONFIG_KEY = '__model_config__'
GO_VOCABULARY_KEY = '__go_vocabulary__'

# np.savez stores entries uncompressed, so the arrays of one of our files take
# about as many bytes as the file; np.savez_compressed shrinks float weights
# by ~10% and integer loader state by a few times. A deflate bomb expands
# ~1000x. Up to this many times the file's size (plus the slack, for tiny
# files of compressible zeros) may be decompressed from one file.
_MAX_EXPANSION = 16
_EXPANSION_SLACK = 16 << 20
# JSON entries: the model config and a checkpoint's metadata are a few KB;
# a GO vocabulary ~80 characters per term (650 KB at the paper's 8,943).
_MAX_JSON_CHARS = 8 << 20
# A .npy header is at most numpy's own limit (10,000 bytes) after 12 bytes of
# magic, version and length; only this prefix is decompressed to read it.
_NPY_PREFIX = 10_000 + 12
# Dtype kinds an entry may have: numbers and text. Object (pickled), void
# and structured entries are never read.
_READABLE_KINDS = frozenset('biufcSU')


class CorruptFileError(ValueError):
  """A damaged file.

  Not a readable .npz, a truncated or corrupt entry, invalid JSON, or
  parameters that are not finite numbers.
  """


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


def param_shapes(config: ml_collections.ConfigDict) -> hk.Params:
  """The model's params tree of jax.ShapeDtypeStructs (nothing allocated)."""
  return jax.eval_shape(
      lambda: model_lib.init_params(config, jax.random.PRNGKey(0)))


def fingerprint(params: hk.Params) -> str:
  """A short digest of the parameter values (16 hex digits)."""
  digest = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(jax.device_get(params)):
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()[:16]


def _structure_problems(got: Mapping[str, tuple], want: Mapping[str, tuple]
                        ) -> list[str]:
  """Missing, unexpected and mis-shaped keys of flat {key: shape} dicts."""
  problems = []
  missing = sorted(want.keys() - got.keys())
  extra = sorted(got.keys() - want.keys())
  if missing:
    problems.append(f'missing {missing}')
  if extra:
    problems.append(f'unexpected {extra}')
  problems += [f'{k} has shape {got[k]}, expected {want[k]}'
               for k in sorted(want.keys() & got.keys()) if got[k] != want[k]]
  return problems


def _raise_mismatch(source: str, problems: list[str]) -> None:
  if problems:
    raise ValueError(f'{source} does not match the model: '
                     + '; '.join(problems) + '.')


def check_structure(params: hk.Params, expected, source: str = 'params'
                    ) -> None:
  """Raises ValueError listing missing, unexpected and mis-shaped entries.

  Args:
    params: the params to check.
    expected: a params tree of arrays or jax.ShapeDtypeStructs (e.g.
      `param_shapes(config)`).
    source: how to name `params` in the error (e.g. the file path).
  """
  _raise_mismatch(source, _structure_problems(
      {k: tuple(v.shape) for k, v in _flat_items(params)},
      {k: tuple(v.shape) for k, v in _flat_items(expected)}))


def _check_finite(flat: Mapping[str, np.ndarray], source: str) -> None:
  bad = sorted(k for k, v in flat.items() if not np.isfinite(v).all())
  if bad:
    raise CorruptFileError(f'{source}: parameters with NaN or infinite '
                           f'values: {bad}.')


def _float_problems(dtypes: Mapping[str, np.dtype]) -> list[str]:
  return [f'{k} has dtype {d}, expected floating point'
          for k, d in sorted(dtypes.items()) if d.kind != 'f']


class NpzReader:
  """An .npz file whose entries are checked before they are decompressed.

  Use as a context manager. Every error is a ValueError naming the file:
  CorruptFileError when the file is damaged.
  """

  def __init__(self, path: str):
    self.path = path
    try:
      size = os.path.getsize(path)
      self._zip = zipfile.ZipFile(path)
    except Exception as e:  # zipfile raises assorted types on damaged input.
      raise CorruptFileError(f'{path}: not a readable .npz file: '
                             f'{type(e).__name__}: {e}') from e
    self._budget = _MAX_EXPANSION * size + _EXPANSION_SLACK
    self._members = {info.filename[:-len('.npy')]: info
                     for info in self._zip.infolist()
                     if info.filename.endswith('.npy')}
    self._headers = {}

  def __enter__(self) -> 'NpzReader':
    return self

  def __exit__(self, *exc_info) -> None:
    self._zip.close()

  def keys(self) -> list[str]:
    """The entries' names (members `<name>.npy`; other members are ignored)."""
    return list(self._members)

  def __contains__(self, key: str) -> bool:
    return key in self._members

  def _damaged(self, key: str, e: Exception) -> CorruptFileError:
    return CorruptFileError(f'{self.path}: entry {key!r} is unreadable '
                            f'(truncated or corrupt file?): '
                            f'{type(e).__name__}: {e}')

  def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of an entry, from its .npy header alone."""
    if key not in self._headers:
      try:
        with self._zip.open(self._members[key]) as f:
          prefix = io.BytesIO(f.read(_NPY_PREFIX))
        version = np.lib.format.read_magic(prefix)
        if version == (1, 0):
          shape, _, dtype = np.lib.format.read_array_header_1_0(prefix)
        elif version == (2, 0):
          shape, _, dtype = np.lib.format.read_array_header_2_0(prefix)
        else:
          raise ValueError(f'unsupported .npy version {version}')
      except Exception as e:  # zipfile, zlib and numpy's header parser
        raise self._damaged(key, e) from e  # raise assorted types.
      if (dtype.kind not in _READABLE_KINDS or dtype.fields is not None
          or dtype.subdtype is not None):
        raise CorruptFileError(f'{self.path}: entry {key!r} has dtype '
                               f'{dtype}; only plain numbers and text are '
                               'read.')
      self._headers[key] = (tuple(shape), dtype)
    return self._headers[key]

  def read(self, key: str) -> np.ndarray:
    """One entry, decompressed once its declared size fits the budget."""
    shape, dtype = self.header(key)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > self._budget:
      raise CorruptFileError(
          f'{self.path}: entry {key!r} declares {shape} {dtype} '
          f'({nbytes:,} bytes), more than {_MAX_EXPANSION}x the file\'s size '
          'allows (a zip bomb?).')
    self._budget -= nbytes
    try:
      with self._zip.open(self._members[key]) as f:
        value = np.lib.format.read_array(f, allow_pickle=False)
        if f.read(1):
          raise ValueError('trailing data after the array')
    except Exception as e:  # As in `header`.
      raise self._damaged(key, e) from e
    return value

  def read_json(self, key: str) -> Any:
    """A JSON entry (a 0-d text array, as `save_params` writes the config)."""
    shape, dtype = self.header(key)
    if (shape != () or dtype.kind != 'U'
        or dtype.itemsize > 4 * _MAX_JSON_CHARS):
      raise CorruptFileError(f'{self.path}: {key} must be a JSON string of '
                             f'at most {_MAX_JSON_CHARS:,} characters, got '
                             f'{dtype} {shape}.')
    return parse_json(self.read(key), key, self.path)

  def read_params(self, expected: Optional[hk.Params] = None) -> hk.Params:
    """The parameters (`//` entries), checked before any is decompressed.

    Args:
      expected: a params tree of arrays or jax.ShapeDtypeStructs; None
        accepts any set of floating-point entries.

    Returns:
      The params, numpy arrays.

    Raises:
      ValueError: missing, unexpected, mis-shaped or non-float entries (all
        listed).
      CorruptFileError: damaged entries or NaN/infinite values.
    """
    keys = [k for k in self.keys() if _SEPARATOR in k]
    headers = {k: self.header(k) for k in keys}
    problems = _float_problems({k: d for k, (_, d) in headers.items()})
    if expected is not None:
      problems += _structure_problems(
          {k: s for k, (s, _) in headers.items()},
          {k: tuple(v.shape) for k, v in _flat_items(expected)})
    _raise_mismatch(self.path, problems)
    flat = {k: self.read(k) for k in keys}
    _check_finite(flat, self.path)
    return unflatten(flat)

  def read_go_vocabulary(self) -> Optional[dataset_lib.Vocabulary]:
    """The stored GO vocabulary, or None if there is none."""
    if GO_VOCABULARY_KEY not in self:
      return None
    stored = self.read_json(GO_VOCABULARY_KEY)
    try:
      vocabulary = dataset_lib.Vocabulary(
          *(np.asarray(stored[f], dtype) for f, dtype in (
              ('ids', str), ('names', str), ('namespaces', str),
              ('counts', np.int64))))
    except (KeyError, TypeError, ValueError) as e:
      raise CorruptFileError(f'{self.path}: {GO_VOCABULARY_KEY} must hold '
                             'ids, names, namespaces and counts lists: '
                             f'{e}') from None
    if len({len(field) for field in vocabulary}) != 1:
      raise CorruptFileError(f'{self.path}: the lists of {GO_VOCABULARY_KEY} '
                             'differ in length.')
    return vocabulary

  def read_model_config(self) -> Optional[ml_collections.ConfigDict]:
    """The stored, validated model config, or None if there is none."""
    if CONFIG_KEY not in self:
      return None
    return model_config_from_json(self.read_json(CONFIG_KEY), self.path)


def parse_json(value: np.ndarray, key: str, source: str) -> Any:
  """The JSON in a 0-d text entry, or CorruptFileError naming source and key."""
  if not (isinstance(value, np.ndarray) and value.shape == ()
          and value.dtype.kind == 'U'):
    raise CorruptFileError(f'{source}: {key} must be a JSON string.')
  try:
    return json.loads(str(value))
  except (ValueError, RecursionError) as e:
    raise CorruptFileError(f'{source}: {key} is not valid JSON: {e}') from e


def model_config_from_json(stored: Any, source: str
                           ) -> ml_collections.ConfigDict:
  """The default model config updated with `stored`, validated.

  Files written before a key was added still load; unknown stored keys, values
  of the wrong type and impossible values are errors naming `source`.
  """
  if not isinstance(stored, dict):
    raise CorruptFileError(f'{source}: {CONFIG_KEY} must be a JSON object, '
                           f'got {type(stored).__name__}.')
  config = config_lib.get_model_config()
  unknown = sorted(set(stored) - set(config.keys()))
  if unknown:
    raise ValueError(f'{source}: unknown model config keys {unknown}.')
  try:
    config.update(stored)
  except (TypeError, ValueError) as e:  # ml_collections' type checks.
    raise ValueError(f'{source}: {CONFIG_KEY}: {e}') from e
  config_lib.validate_model_config(config, source)
  return config


def go_vocabulary_entry(vocabulary: dataset_lib.Vocabulary) -> np.ndarray:
  """The `__go_vocabulary__` entry of a vocabulary (JSON text)."""
  return np.array(io_utils.json_dumps(
      {field: np.asarray(values).tolist()
       for field, values in vocabulary._asdict().items()}))


def save_params(path: str, params: hk.Params,
                model_config: Optional[ml_collections.ConfigDict] = None,
                go_vocabulary: Optional[dataset_lib.Vocabulary] = None,
                extra: Optional[Mapping[str, np.ndarray]] = None) -> None:
  """Writes params (and the model config, GO vocabulary and any `extra`
  entries, if given) to `path` atomically: the one writer of our .npz files
  (parameter files, training checkpoints, fine-tuned models).

  Args:
    path: the file.
    params: the parameters (`module/path//param` entries).
    model_config: stored as `__model_config__`.
    go_vocabulary: stored as `__go_vocabulary__`.
    extra: more entries by name (no `//` in them): a checkpoint's train and
      loader state, a fine-tuned model's task.
  """
  arrays = flatten(jax.device_get(params))
  if model_config is not None:
    arrays[CONFIG_KEY] = np.array(model_config.to_json())
  if go_vocabulary is not None:
    arrays[GO_VOCABULARY_KEY] = go_vocabulary_entry(go_vocabulary)
  for key, value in (extra or {}).items():
    if _SEPARATOR in key or key in arrays:
      raise ValueError(f'Extra entry {key!r} would read as a parameter or '
                       'replace an entry.')
    arrays[key] = np.asarray(value)
  with io_utils.atomic_path(path) as tmp, open(tmp, 'wb') as f:
    np.savez(f, **arrays)


def load_params(path: str,
                config: Optional[ml_collections.ConfigDict] = None
                ) -> tuple[hk.Params, Optional[ml_collections.ConfigDict]]:
  """Reads a file written by `save_params` (or a training checkpoint).

  Only the parameters of the model are decompressed, each after its header
  matched the model's shape.

  Args:
    path: the file.
    config: the model config to check the params against, replacing the
      stored one; None uses the stored one.

  Returns:
    (params, model config, or None when neither the file nor `config` has
    one: then any set of floating-point entries is accepted).

  Raises:
    ValueError: the file is damaged (CorruptFileError) or does not match the
      model (the message names the file and lists every problem).
  """
  with NpzReader(path) as reader:
    stored = reader.read_model_config()
    if config is None:
      config = stored
    else:
      config_lib.validate_model_config(config, f'the config given for {path}')
    return reader.read_params(
        None if config is None else param_shapes(config)), config
