"""glibc malloc settings for the binaries that step XLA:CPU in a loop.

XLA:CPU allocates a fresh temporary arena for every executed step (~2 GB for
a pretraining step at 512 x 32) and glibc serves allocations that large with
mmap, so every step page-faults its arena in again: a third of the CPU time
of a training step on CPU. GLIBC_TUNABLES are read only at process start, so
`reexec` restarts the binary under settings that keep freed memory in one
heap instead of returning it to the kernel (documented glibc tunables, safe
for any process; the price is that the process keeps its peak memory).
"""

import os
import sys

from absl import flags

_ENABLED = flags.DEFINE_bool(
    'malloc_tunables', True,
    'Re-execute under GLIBC_TUNABLES that stop per-step page faults of '
    'XLA:CPU\'s temporary memory (Linux; no effect on accelerators).')

TUNABLES = ('glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:'
            'glibc.malloc.trim_threshold=1099511627776')
# Where the re-executed process finds the GLIBC_TUNABLES it was started with.
_ORIGINAL = 'PROTEINBERT_ORIGINAL_GLIBC_TUNABLES'


def reexec(module: str) -> None:
  """Restarts `python -m module argv` under TUNABLES unless already there.

  Call first thing in main(), before any computation: the process image is
  replaced (same PID, same arguments).
  """
  if (not _ENABLED.value or not sys.platform.startswith('linux')
      or os.environ.get('GLIBC_TUNABLES') == TUNABLES):
    return
  env = dict(os.environ, GLIBC_TUNABLES=TUNABLES)
  env[_ORIGINAL] = os.environ.get('GLIBC_TUNABLES', '')
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, '-m', module] + sys.argv[1:],
            env)


def original_env() -> dict:
  """The environment the binary was started with, before `reexec`."""
  env = dict(os.environ)
  original = env.pop(_ORIGINAL, None)
  if original is not None:
    env.pop('GLIBC_TUNABLES', None)
    if original:
      env['GLIBC_TUNABLES'] = original
  return env
