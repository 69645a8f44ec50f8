"""Access to the original Keras package (protein-bert 1.0.1) for parity tests.

The original wheel installs a top-level `proteinbert` package that would
shadow ours, and its `__init__` pulls in pandas and the training code. So the
wheel is not installed: its model and tokenization modules are executed
straight from the wheel file (`pip download --no-deps --dest .cache/original
protein-bert==1.0.1`, part of README's test command).
"""

import glob
import importlib.util
import os
import sys
import tempfile
import types
import zipfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEEL_GLOB = os.path.join(REPO_ROOT, '.cache', 'original',
                          'protein_bert-1.0.1-*.whl')


def _wheel_path() -> str:
  path = os.environ.get('PROTEINBERT_ORIGINAL_WHEEL')
  if path:
    return path
  found = sorted(glob.glob(WHEEL_GLOB))
  if not found:
    pytest.fail(
        'TensorFlow is installed (the [parity] extra) but the original '
        'package is not: run `pip download --no-deps --dest .cache/original '
        'protein-bert==1.0.1` or set PROTEINBERT_ORIGINAL_WHEEL.')
  return found[-1]


def load_module(name: str) -> types.ModuleType:
  """Executes `proteinbert/<name>.py` of the original wheel as a module."""
  tensorflow = pytest.importorskip(
      'tensorflow', reason='Keras parity needs the [parity] extra.')
  del tensorflow
  module_name = f'original_proteinbert_{name}'
  if module_name in sys.modules:
    return sys.modules[module_name]
  with zipfile.ZipFile(_wheel_path()) as wheel:
    source = wheel.read(f'proteinbert/{name}.py')
  directory = tempfile.mkdtemp(prefix='original_proteinbert_')
  path = os.path.join(directory, f'{name}.py')
  with open(path, 'wb') as f:
    f.write(source)
  spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sys.modules[module_name] = module
  return module
