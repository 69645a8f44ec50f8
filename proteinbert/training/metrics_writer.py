"""Metrics to `metrics.jsonl` (one JSON record per logging step) and
TensorBoard event files, both under the work directory."""

import os
from typing import Mapping

import tensorboardX

from proteinbert import io_utils


class MetricsWriter:
  """Appends scalar metrics; a resumed run continues the same files."""

  def __init__(self, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
    self._tensorboard = tensorboardX.SummaryWriter(
        os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, metrics: Mapping[str, float]) -> None:
    """Writes one record: {"step": step, **metrics}."""
    record = {'step': int(step)}
    for name, value in metrics.items():
      record[name] = float(value)
      self._tensorboard.add_scalar(name, record[name], int(step))
    # JSON has no NaN/inf: they are written as null.
    self._jsonl.write(io_utils.json_dumps(record) + '\n')
    self._jsonl.flush()
    self._tensorboard.flush()

  def close(self) -> None:
    self._jsonl.close()
    self._tensorboard.close()
