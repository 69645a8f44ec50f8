"""A background thread that keeps a few items ready ahead of the consumer.

numpy releases the GIL in most of the batch work (random draws, copies,
comparisons), so building the next batches overlaps the training step. One
producer thread keeps the order deterministic.
"""

import queue
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar('T')

# How often a blocked producer checks whether it should stop.
_POLL_SECONDS = 0.1


class _Failure:
  """Carries an exception from the producer to the consumer."""

  def __init__(self, error: BaseException):
    self.error = error


class Prefetcher(Generic[T]):
  """Iterates over `produce()` results computed in a background thread.

  The thread calls `produce` repeatedly and keeps at most `depth` results
  waiting. An exception raised by `produce` is raised again by the `next` call
  that reaches it, after which the iterator is exhausted. `close()` (or leaving
  the `with` block) stops and joins the thread; results still waiting are
  dropped. While a Prefetcher runs, nothing else may touch what `produce`
  uses.
  """

  def __init__(self, produce: Callable[[], T], depth: int):
    """Starts the producer thread.

    Args:
      produce: returns the next item; called only from the producer thread.
      depth: how many items may wait ahead of the consumer (>= 1).
    """
    if depth < 1:
      raise ValueError(f'depth must be at least 1, got {depth}.')
    self._produce = produce
    self._queue = queue.Queue(maxsize=depth)
    self._stop = threading.Event()
    self._finished = False
    self._thread = threading.Thread(
        target=self._run, name='prefetch', daemon=True)
    self._thread.start()

  def _run(self) -> None:
    while not self._stop.is_set():
      try:
        item = self._produce()
      except BaseException as e:  # pylint: disable=broad-except
        item = _Failure(e)
      while not self._stop.is_set():
        try:
          self._queue.put(item, timeout=_POLL_SECONDS)
          break
        except queue.Full:
          continue
      if isinstance(item, _Failure):
        return

  def __iter__(self) -> 'Prefetcher[T]':
    return self

  def __next__(self) -> T:
    if self._finished:
      raise StopIteration
    item = self._queue.get()
    if isinstance(item, _Failure):
      self._finished = True
      self._thread.join()
      raise item.error
    return item

  def close(self) -> None:
    """Stops the producer and waits for it; safe to call more than once."""
    self._stop.set()
    self._finished = True
    # Unblock a producer waiting on a full queue.
    while True:
      try:
        self._queue.get_nowait()
      except queue.Empty:
        break
    self._thread.join()

  def __enter__(self) -> 'Prefetcher[T]':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
