"""Keras' EarlyStopping(restore_best_weights=True) as a pure record.

The original watches the validation loss after each epoch with min_delta 0:
an epoch improves when its loss is below the best so far; `patience` epochs in
a row without improvement stop the stage, whose best parameters are then the
ones kept (also when the stage ends by running out of epochs).

    best = early_stopping.start(params)
    for epoch ...:
      best = early_stopping.update(best, valid_loss, copy_of_params)
      if early_stopping.should_stop(best, patience):
        break
    params = best.params
"""

import math
from typing import Any, NamedTuple


class Best(NamedTuple):
  """The best epoch so far.

  Attributes:
    loss: its monitored loss (inf before any epoch).
    params: its parameters (the starting ones before any epoch).
    epochs_since: epochs after it that did not improve on it.
  """
  loss: float
  params: Any
  epochs_since: int


def start(params: Any) -> Best:
  """The record before the first epoch: `params` kept, nothing seen."""
  return Best(math.inf, params, 0)


def update(best: Best, loss: float, params: Any) -> Best:
  """The record after an epoch of monitored `loss` that ended at `params`.

  Args:
    best: the record so far.
    loss: the epoch's monitored loss.
    params: the epoch's parameters; kept as they are when the epoch is the
      best, so pass a copy that later updates do not overwrite or donate.

  Returns:
    The new record.
  """
  if loss < best.loss:
    return Best(loss, params, 0)
  return best._replace(epochs_since=best.epochs_since + 1)


def should_stop(best: Best, patience: int) -> bool:
  """Whether `patience` epochs in a row have passed without improvement."""
  return best.epochs_since >= patience
