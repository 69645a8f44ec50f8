"""Metrics to `metrics.jsonl` (one JSON record per logging step) and
TensorBoard event files, both under the work directory."""

import json
import math
import os
from typing import Mapping

import tensorboardX


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
      value = float(value)
      # JSON has no NaN/inf; null keeps the line parseable.
      record[name] = value if math.isfinite(value) else None
      self._tensorboard.add_scalar(name, value, int(step))
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()
    self._tensorboard.flush()

  def close(self) -> None:
    self._jsonl.close()
    self._tensorboard.close()
