"""Access to the original Keras package (protein-bert 1.0.1) for parity tests.

The wheel is not installed (it would shadow our `proteinbert`): its modules
are imported from it by `experiments.original_wheel` (`pip download --no-deps
--dest .cache/original protein-bert==1.0.1`, part of README's test command).
"""

import glob
import os
import types

import pytest

from experiments import original_wheel

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
  """The original wheel's `proteinbert/<name>.py` as a module."""
  tensorflow = pytest.importorskip(
      'tensorflow', reason='Keras parity needs the [parity] extra.')
  del tensorflow
  return original_wheel.import_module(_wheel_path(), name)
