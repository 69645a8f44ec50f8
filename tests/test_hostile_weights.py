"""Hostile weights files through every loader: fuzzing and peak memory.

Whatever bytes a weights file holds, loading it gives the params or a
ValueError naming the file, never another exception, a hang or memory out of
proportion to the file.
"""

import os
import pickle
import subprocess
import sys
import tempfile

import hypothesis
from hypothesis import strategies as st
import jax
import numpy as np
import pytest

from proteinbert import embeddings
from proteinbert import inference
from proteinbert import keras_weights
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert.finetuning import config as finetune_config_lib
from proteinbert.finetuning import experiment
from tests import helpers
from tests import hostile_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The smallest valid model, so that mutations often hit structure.
_CONFIG = helpers.tiny_model_config(
    num_blocks=1, local_dim=4, global_dim=8, num_heads=2, key_size=2,
    num_annotations=3, conv_kernel_size=3)


def _valid_files():
  """Our export, a protocol-2 dump as numpy 1.x wrote, and our .npz."""
  params = model_lib.init_params(_CONFIG, jax.random.PRNGKey(0))
  with tempfile.TemporaryDirectory() as directory:
    pkl, npz = (os.path.join(directory, name) for name in ('w.pkl', 'w.npz'))
    keras_weights.save_keras_pickle(pkl, params, _CONFIG)
    params_io.save_params(npz, params, _CONFIG)
    with open(pkl, 'rb') as f, open(npz, 'rb') as g:
      ours, npz_data = f.read(), g.read()
  protocol2 = pickle.dumps(
      (np.int64(_CONFIG.num_annotations),
       keras_weights.keras_weights_from_params(params, _CONFIG),
       [np.array(3, np.int64)]), protocol=2)
  return ours, protocol2, npz_data


_PICKLE, _PICKLE2, _NPZ = _valid_files()
_EXPECTED = {k: tuple(v.shape) for k, v in params_io.flatten(
    model_lib.init_params(_CONFIG, jax.random.PRNGKey(0))).items()}
# Python and numpy allocations while loading one of these files: a few MB
# for tracing the model's shapes. A file that unpacks into what it declares
# would be far over.
_PEAK_LIMIT = 64 << 20


def _load_checked(data: bytes) -> bool:
  """Loads `data` as a weights file: a clear error or consistent params.

  Returns:
    Whether it loaded.
  """
  with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, 'weights')
    with open(path, 'wb') as f:
      f.write(data)
    result = []

    def load():
      try:
        result.append(inference.load_params_any(path))
      except ValueError as e:
        assert path in str(e), e

    assert hostile_files.peak_traced_bytes(load) < _PEAK_LIMIT
  if result:
    params, _ = result[0]
    flat = params_io.flatten(params)
    assert {k: v.shape for k, v in flat.items()} == _EXPECTED
    assert all(np.isfinite(v).all() for v in flat.values())
  return bool(result)


def _mutated(data: bytes):
  """Valid files with bytes replaced, inserted or cut off."""
  n = len(data)
  edits = st.lists(st.tuples(st.integers(0, n - 1), st.binary(max_size=9),
                             st.integers(0, 9)), min_size=1, max_size=4)
  cut = st.one_of(st.just(n), st.integers(0, n))

  def apply(args):
    result = bytearray(data)
    for position, insert, remove in args[0]:
      result[position:position + remove] = insert
    return bytes(result[:args[1]])
  return st.tuples(edits, cut).map(apply)


_FUZZ = hypothesis.settings(max_examples=60, deadline=None, database=None)


@_FUZZ
@hypothesis.given(st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=2048).map(lambda b: b'\x80\x04' + b),
    st.binary(max_size=2048).map(lambda b: b'PK\x03\x04' + b)))
def test_arbitrary_bytes(data):
  _load_checked(data)


@_FUZZ
@hypothesis.given(st.one_of(_mutated(_PICKLE), _mutated(_PICKLE2)))
def test_mutated_official_pickles(data):
  _load_checked(data)


@_FUZZ
@hypothesis.given(_mutated(_NPZ))
def test_mutated_npz_files(data):
  _load_checked(data)


def test_the_valid_files_load():
  for data in (_PICKLE, _PICKLE2, _NPZ):
    assert _load_checked(data)


# Every entry point refuses impossible files, naming them.


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
  """A NaN pickle, an .npz with layer_norm_eps=-1, one with params of
  another architecture than its stored config."""
  directory = tmp_path_factory.mktemp('bad')
  params = model_lib.init_params(_CONFIG, jax.random.PRNGKey(0))
  weights = keras_weights.keras_weights_from_params(params, _CONFIG)
  weights[0] = np.array(weights[0])
  weights[0][0, 0] = np.nan
  nan_pkl = str(directory / 'nan.pkl')
  with open(nan_pkl, 'wb') as f:
    pickle.dump((_CONFIG.num_annotations, weights, []), f)
  eps_npz = str(directory / 'eps.npz')
  params_io.save_params(eps_npz, params, _CONFIG)
  arrays = dict(np.load(eps_npz))
  arrays[params_io.CONFIG_KEY] = np.array(
      helpers.tiny_model_config(layer_norm_eps=-1.0).to_json())
  np.savez(eps_npz, **arrays)
  other_npz = str(directory / 'other.npz')
  params_io.save_params(other_npz, params,
                        helpers.tiny_model_config(local_dim=8))
  return {'nan.pkl': (nan_pkl, 'dense-global-input/kernel.*NaN'),
          'eps.npz': (eps_npz, 'layer_norm_eps'),
          'other.npz': (other_npz, 'does not match the model')}


@pytest.mark.parametrize('name', ['nan.pkl', 'eps.npz', 'other.npz'])
def test_entry_points_refuse_impossible_files(bad_files, tmp_path, name):
  path, match = bad_files[name]
  match = f'{path}.*({match})'
  with pytest.raises(ValueError, match=match):
    inference.load_pretrained(path)
  with pytest.raises(ValueError, match=match):  # embed --checkpoint.
    embeddings.load_model(path)
  output = tmp_path / 'out.pkl'
  with pytest.raises(ValueError, match=match):
    inference.export(path, str(output), 'keras')
  assert not output.exists()
  config = finetune_config_lib.get_config()
  config.init_checkpoint = path
  with pytest.raises(ValueError, match=match):
    experiment.load_trunk(config)


# Peak memory of whole processes: crafted files cost what a legitimate file
# of their declared model costs.

_MEASURE = '''
import resource, sys
from proteinbert import inference
for path in sys.argv[1:]:
  try:
    inference.load_params_any(path)
    print('loaded', path)
  except ValueError as e:
    print('refused', path)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def _peak_rss(*paths: str) -> tuple[int, list[str]]:
  """(peak RSS in bytes, one line per path) of a process loading `paths`."""
  out = subprocess.run([sys.executable, '-c', _MEASURE, *paths], cwd=ROOT,
                       capture_output=True, text=True, check=True,
                       timeout=600).stdout.split('\n')
  return int(out[-2]) * 1024, out[:-2]


def test_crafted_files_use_no_more_memory_than_legitimate_ones(tmp_path):
  """Each crafted file declares ~0.5-2.4 GB; before the fix each was loaded
  or refused only after numpy had materialised it."""
  legit_pkl, legit_npz = str(tmp_path / 'w.pkl'), str(tmp_path / 'w.npz')
  with open(legit_pkl, 'wb') as f:
    f.write(_PICKLE)
  with open(legit_npz, 'wb') as f:
    f.write(_NPZ)
  # 147 bytes: an object array of 3e8 elements.
  object_bomb = str(tmp_path / 'object.pkl')
  with open(object_bomb, 'wb') as f:
    pickle.dump(hostile_files.Call(
        np.empty(0).__reduce__()[0],
        (np.ndarray, (300_000_000,), np.dtype(object))), f, protocol=2)
  # An unneeded 512 MB entry beside legitimate params.
  junk = str(tmp_path / 'junk.npz')
  with open(junk, 'wb') as f:
    f.write(_NPZ)
  hostile_files.add_zeros_entry(junk, 'junk', (128 << 20,))
  # A stored config of 2**23 annotations, whose two 256 MB annotation
  # layers are deflated zeros.
  declared = str(tmp_path / 'declared.npz')
  big = helpers.tiny_model_config(
      **dict(_CONFIG.to_dict(), num_annotations=1 << 23))
  layers = {'protein_bert/annotation_input//w': (1 << 23, 8),
            'protein_bert/annotation_head//w': (8, 1 << 23),
            'protein_bert/annotation_head//b': (1 << 23,)}
  np.savez(declared, **{k: v for k, v in params_io.flatten(
      model_lib.init_params(_CONFIG, jax.random.PRNGKey(0))).items()
                        if k not in layers},
           **{params_io.CONFIG_KEY: np.array(big.to_json())})
  for key, shape in layers.items():
    hostile_files.add_zeros_entry(declared, key, shape)
  assert max(map(os.path.getsize, (junk, declared))) < 4 << 20

  baseline, _ = _peak_rss()
  legit, lines = _peak_rss(legit_pkl, legit_npz)
  assert lines == [f'loaded {legit_pkl}', f'loaded {legit_npz}']
  crafted, lines = _peak_rss(object_bomb, junk, declared)
  assert lines == [f'refused {object_bomb}', f'loaded {junk}',
                   f'refused {declared}']
  # Loading the legitimate files costs a few MB over the imports (tracing
  # the model's shapes); each bomb would cost >= 512 MB.
  allowed = 2 * max(legit - baseline, 0) + (64 << 20)
  assert crafted - baseline <= allowed, (baseline, legit, crafted)
