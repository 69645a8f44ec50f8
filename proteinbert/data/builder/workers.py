"""The ordered process-pool map that both passes of the builder run on."""

import collections
import multiprocessing
import os
from typing import Callable, Iterable, Iterator, Optional

# What worker processes run, set when their pool starts.
_worker_function = None


def _start_worker(function: Callable) -> None:
  global _worker_function
  _worker_function = function


def _in_worker(item):
  return _worker_function(item)


def ordered_map(function: Callable, items: Iterable, num_workers: int,
                in_flight: Optional[int] = None) -> Iterator:
  """`function` over `items`, in order, on `num_workers` processes (0: here).

  At most `in_flight` (default: two per worker) items are being processed
  or waiting to be consumed, so a fast producer never queues up everything
  in memory (as `Pool.imap` would).
  """
  if not num_workers:
    yield from map(function, items)
    return
  methods = multiprocessing.get_all_start_methods()
  # Fork shares the ontology and lookup tables without pickling them.
  context = multiprocessing.get_context('fork' if 'fork' in methods else None)
  limit = in_flight or 2 * num_workers
  with context.Pool(num_workers, _start_worker, (function,)) as pool:
    pending = collections.deque()
    for item in items:
      pending.append(pool.apply_async(_in_worker, (item,)))
      if len(pending) >= limit:
        yield pending.popleft().get()
    while pending:
      yield pending.popleft().get()


def idle_cpus() -> int:
  """CPUs that other processes leave idle; 0 when fewer than two.

  Workers cost CPU time of their own (copying blocks between processes), so
  they pay only where they get CPUs to themselves.
  """
  idle = int((os.cpu_count() or 1) - os.getloadavg()[0])
  return idle if idle >= 2 else 0
