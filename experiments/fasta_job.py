"""What the binaries that run a model over a FASTA file share.

Flags for batching the proteins (`experiments/embed.py`,
`experiments/predict_go.py`), SIGTERM handled as Ctrl-C, and a progress bar
on stderr.
"""

import signal
import sys
import time
from typing import Callable

from absl import flags

MAX_TOKENS = flags.DEFINE_integer('max_tokens', 16384,
                                  'Tokens per model call (memory).',
                                  lower_bound=1)


def interrupt_on_sigterm() -> None:
  """Makes SIGTERM (`timeout`, batch schedulers) stop the job as Ctrl-C does.

  A KeyboardInterrupt unwinds the job, so a half-written output's temporary
  file is removed; the journal keeps every protein done (`proteinbert.journal`
  survives SIGKILL as well), and a re-run resumes.
  """

  def interrupt(signum, frame):
    del frame
    raise KeyboardInterrupt(f'signal {signum}')

  signal.signal(signal.SIGTERM, interrupt)


def progress_bar(unit: str = 'proteins') -> Callable[[int, int], None]:
  """A `progress(done, total)` callback that redraws one line of stderr."""
  start = time.perf_counter()

  def show(done, total):
    width = 30
    filled = width * done // max(total, 1)
    rate = done / max(time.perf_counter() - start, 1e-9)
    sys.stderr.write(f'\r[{"#" * filled}{"." * (width - filled)}] '
                     f'{done}/{total} {unit}, {rate:.1f}/s')
    if done == total:
      sys.stderr.write('\n')
    sys.stderr.flush()

  return show
