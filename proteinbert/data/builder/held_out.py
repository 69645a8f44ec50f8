"""The held-out test set: the test-ID file and random test-set draws."""

from typing import Dict

from absl import logging
import numpy as np

from proteinbert.data.builder import summary as summary_lib


def read_test_ids(path: str) -> Dict[str, int]:
  """ID -> line number, one ID per line ('#' comments and blanks skipped).

  Raises:
    ValueError: a line that is not UTF-8 or holds more than one ID, or a
      file without IDs.
  """
  ids = {}
  with open(path, 'rb') as f:
    for number, raw in enumerate(f, start=1):
      try:
        line = raw.decode('utf-8')
      except UnicodeDecodeError:
        raise ValueError(f'{path}:{number}: not UTF-8 text; expected one '
                         'protein ID per line.') from None
      line = line.split('#', 1)[0].strip()
      if not line:
        continue
      if len(line.split()) > 1 or ',' in line:
        raise ValueError(f'{path}:{number}: expected one protein ID per line, '
                         f'got {line[:80]!r}.')
      ids.setdefault(line, number)
  if not ids:
    raise ValueError(f'{path}: no protein IDs (the file is empty, or holds '
                     'only comments and blank lines); expected one ID per '
                     'line. Leave the test-ID file out for a test set drawn '
                     'at random alone.')
  return ids


def check_test_ids(path: str, ids: Dict[str, int], matched: set,
                   hint: str) -> int:
  """Logs the test IDs that named no protein; returns their number.

  Args:
    path: the test-ID file, for messages.
    ids: its IDs, as `read_test_ids` returns them.
    matched: the IDs that named a protein.
    hint: what the file should hold, for the error.

  Raises:
    ValueError: no ID matched at all (most likely a file of the wrong IDs).
  """
  unmatched = sorted((line, i) for i, line in ids.items() if i not in matched)
  if ids and len(unmatched) == len(ids):
    raise ValueError(
        f'{path}: none of its {len(ids):,} IDs names a protein of the '
        f'input; expected {hint}, one per line.')
  if unmatched:
    logging.warning(
        '%s: %d of %d test IDs name no protein of the input (skipped); '
        'first: %s', path, len(unmatched), len(ids),
        ', '.join(f'{i} (line {line})' for line, i in
                  unmatched[:summary_lib.MAX_LOGGED]))
  return len(unmatched)


class TestDraws:
  """Random test-set flags, drawn in output order."""

  def __init__(self, seed: int, fraction: float):
    """Each protein is a test protein with probability `fraction`.

    Raises:
      ValueError: `fraction` is not a probability.
    """
    if not 0 <= fraction <= 1:
      raise ValueError(f'test_fraction {fraction} is not in [0, 1].')
    self._fraction = fraction
    self._rng = self._generator(seed)

  @staticmethod
  def _generator(seed: int):
    return np.random.default_rng([seed, 2])

  def __call__(self, n: int) -> np.ndarray:
    """bool [n] flags of the next `n` proteins in output order."""
    if not self._fraction:
      return np.zeros(n, bool)
    return self._draw(n)

  def _draw(self, n: int) -> np.ndarray:
    return self._rng.random(n) < self._fraction
