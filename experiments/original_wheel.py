"""The original Keras package (protein-bert 1.0.1), imported from its wheel.

Installing the wheel would shadow our `proteinbert` package, and its
`__init__` pulls in pandas and the training code. So the wheel's modules are
unpacked as the package `original_proteinbert` with an empty `__init__`: its
model, tokenization and model-loading modules import as the original wrote
them (relative imports included), and nothing else is loaded.

  pip download --no-deps --dest .cache/original protein-bert==1.0.1
"""

import functools
import importlib
import os
import sys
import tempfile
import types
import zipfile

from absl import flags

DEFAULT_WHEEL = '.cache/original/protein_bert-1.0.1-py3-none-any.whl'
WHEEL = flags.DEFINE_string(
    'original_wheel', DEFAULT_WHEEL,
    'The original package\'s wheel (`pip download --no-deps --dest '
    '.cache/original protein-bert==1.0.1`); it is read, never installed.')
PACKAGE = 'original_proteinbert'


@functools.lru_cache(maxsize=None)
def _unpack(wheel: str) -> None:
  """Unpacks the wheel's `proteinbert/` as PACKAGE onto sys.path, once."""
  root = tempfile.mkdtemp(prefix='original_wheel_')
  with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
      if name.startswith('proteinbert/') and name.endswith('.py'):
        path = os.path.join(root, PACKAGE, name[len('proteinbert/'):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
          f.write(b'' if name == 'proteinbert/__init__.py'
                  else archive.read(name))
  sys.path.insert(0, root)


def import_module(wheel: str, name: str) -> types.ModuleType:
  """The original's `proteinbert.<name>` (e.g. 'model_generation')."""
  _unpack(os.path.abspath(wheel))
  return importlib.import_module(f'{PACKAGE}.{name}')
