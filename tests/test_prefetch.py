"""Tests for proteinbert/data/prefetch.py."""

import itertools
import threading
import time

import pytest

from proteinbert.data import prefetch


def test_items_arrive_in_order():
  counter = itertools.count()
  with prefetch.Prefetcher(lambda: next(counter), depth=3) as items:
    assert [next(items) for _ in range(50)] == list(range(50))


def test_producer_runs_at_most_depth_ahead():
  produced = []

  def produce():
    produced.append(len(produced))
    return produced[-1]

  with prefetch.Prefetcher(produce, depth=2) as items:
    next(items)
    time.sleep(0.3)
    # One consumed, two waiting, one built and blocked on the full queue.
    assert len(produced) <= 4


def test_producer_exception_reaches_the_consumer():
  counter = itertools.count()

  def produce():
    value = next(counter)
    if value == 3:
      raise KeyError('broken protein')
    return value

  items = prefetch.Prefetcher(produce, depth=2)
  assert [next(items) for _ in range(3)] == [0, 1, 2]
  with pytest.raises(KeyError, match='broken protein'):
    next(items)
  with pytest.raises(StopIteration):
    next(items)
  items.close()


def test_close_stops_a_blocked_producer():
  before = threading.active_count()
  items = prefetch.Prefetcher(lambda: 0, depth=1)
  next(items)
  items.close()
  items.close()
  assert threading.active_count() == before
  with pytest.raises(StopIteration):
    next(items)


def test_depth_must_be_positive():
  with pytest.raises(ValueError):
    prefetch.Prefetcher(lambda: 0, depth=0)
