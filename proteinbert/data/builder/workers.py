"""The ordered process-pool map that both passes of the builder run on."""

import collections
from concurrent import futures
from concurrent.futures import process
import multiprocessing
import os
from typing import Callable, Iterable, Iterator, Optional

# What worker processes run, set when their pool starts.
_worker_function = None


class WorkerDied(RuntimeError):
  """A worker process ended without a result (killed, or out of memory)."""


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
  in memory (as `Pool.imap` would). A worker that dies (SIGKILL, the OOM
  killer) ends the map with `WorkerDied`, where `multiprocessing.Pool` would
  replace the worker and wait for the lost result for ever.

  Raises:
    WorkerDied: a worker process died.
  """
  if not num_workers:
    yield from map(function, items)
    return
  methods = multiprocessing.get_all_start_methods()
  # Fork shares the ontology and lookup tables without pickling them.
  context = multiprocessing.get_context('fork' if 'fork' in methods else None)
  limit = in_flight or 2 * num_workers
  pool = futures.ProcessPoolExecutor(num_workers, context, _start_worker,
                                     (function,))
  try:
    pending = collections.deque()
    for item in items:
      pending.append(pool.submit(_in_worker, item))
      if len(pending) >= limit:
        yield _result(pending.popleft())
    while pending:
      yield _result(pending.popleft())
  finally:
    pool.shutdown(cancel_futures=True)


def _result(future: futures.Future):
  try:
    return future.result()
  except process.BrokenProcessPool:
    raise WorkerDied(
        'A worker process of the dataset build died (killed by a signal, '
        'or by the out-of-memory killer: see `dmesg`); the build stops '
        'without output. Rerun it, with fewer workers (num_workers) or a '
        'smaller bucket_size if memory ran out.') from None


def idle_cpus() -> int:
  """CPUs that other processes leave idle; 0 when fewer than two.

  Workers cost CPU time of their own (copying blocks between processes), so
  they pay only where they get CPUs to themselves.
  """
  idle = int((os.cpu_count() or 1) - os.getloadavg()[0])
  return idle if idle >= 2 else 0
