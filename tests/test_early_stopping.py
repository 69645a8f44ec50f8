"""Early stopping: Keras' EarlyStopping(restore_best_weights=True)."""

from proteinbert.finetuning import early_stopping


def test_stops_after_patience_epochs_without_a_new_best_and_keeps_it():
  best = early_stopping.start('initial')
  stopped_at = None
  for epoch, loss in enumerate([1.0, 0.9, 0.89995, 0.95, 0.8, 0.85, 0.85, 0.7],
                               start=1):
    best = early_stopping.update(best, loss, f'epoch {epoch}')
    if early_stopping.should_stop(best, patience=2):
      stopped_at = epoch
      break
  # Any decrease counts (min_delta 0): 0.89995 is a new best; 0.8 (epoch 5)
  # is the last one, and two epochs without a better loss stop the stage.
  assert stopped_at == 7
  assert best == early_stopping.Best(0.8, 'epoch 5', 2)


def test_before_any_epoch_the_starting_params_are_kept():
  best = early_stopping.start('initial')
  assert best.params == 'initial'
  assert not early_stopping.should_stop(best, patience=1)
  # A first epoch always improves on nothing seen.
  assert early_stopping.update(best, 1e30, 'epoch 1').params == 'epoch 1'
