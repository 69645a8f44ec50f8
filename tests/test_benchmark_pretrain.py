"""The head-to-head arithmetic of experiments.benchmark_pretrain."""

import math

from experiments import benchmark_pretrain


def test_duel_rows_ratios_and_bounds():
  # 4 samples/step; ours 2 s/step, Keras 3 s/step; ours 0.5 s/seq, Keras
  # 1 s/seq; 10 FLOP/s; a step is 10 FLOP (1 s at the rate), a sequence 4.
  figures = {'rate': [9.0, 10.0, 11.0], 'train': [2.0, 2.0, 9.0],
             'keras_train': [3.0], 'predict': [0.5, 0.4, 0.6],
             'keras_predict': [1.0, 0.6, 1.0]}
  train, predict = benchmark_pretrain.duel_rows(
      figures, batch_size=4, train_flops=10.0, predict_flops=4.0)
  assert (train.ours, train.theirs, train.ratio) == (2.0, 4 / 3, 1.5)
  assert (train.our_mfu, train.their_mfu, train.ceiling) == (0.5, 1 / 3, 3.0)
  assert (predict.ours, predict.theirs, predict.ratio) == (2.0, 1.0, 2.0)
  assert (train.best_ratio, predict.best_ratio) == (1.5, 0.6 / 0.4)
  assert (predict.our_mfu, predict.their_mfu) == (0.8, 0.4)
  assert predict.ceiling == 2.5
  # No ratio can pass the ceiling without passing 100% MFU.
  for row in (train, predict):
    assert math.isclose(row.ratio / row.ceiling, row.our_mfu)


def test_duel_rows_without_keras():
  train, predict = benchmark_pretrain.duel_rows(
      {'rate': [1.0], 'train': [1.0], 'predict': [1.0]}, batch_size=2,
      train_flops=1.0, predict_flops=1.0)
  assert train.ours == 2.0 and math.isnan(train.theirs)
  assert math.isnan(predict.ratio) and math.isnan(predict.ceiling)
  assert math.isnan(predict.best_ratio)
