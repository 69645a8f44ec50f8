r"""Pretraining speed: our training step and inference against the original.

  python -m experiments.benchmark_pretrain
  python -m experiments.benchmark_pretrain --nokeras --episodes=512:64
  python -m experiments.benchmark_pretrain --device_independent
  python -m experiments.benchmark_pretrain --episodes=512:32 --breakdown

Per episode (seq_len:batch) it times the jitted update step of the pretraining
loop (`training.update` with LAMB + plateau, state donated) on one synthetic
batch from the real batch pipeline, and reports samples/s, tokens/s (padded
positions included), XLA cost-analysis FLOPs and model FLOP utilisation: FLOPs
per step / step time / this machine's matmul rate, measured with a large
matmul in the compute dtype next to every timing. Inference is
`PretrainedModel.predict` (probabilities only) at --seq_len x --batch_size.

On CPU with --keras the original Keras model (protein-bert 1.0.1 executed from
its wheel; tf-keras with TF_USE_LEGACY_KERAS=1, the published size, the
original's compile: sparse CE on tokens + BCE on annotations with sample
weights) trains on the same batch with Adam (tf-keras has no LAMB) and runs
`model.predict` on the same sequences. It lives in a subprocess that waits
while we run, and the two alternate (J K J K ...); the table compares medians
and the fastest rounds, and gives both sides' MFU and the ceiling: the ratio
to Keras that an implementation running at the matmul rate would reach
(`duel_rows`).

Like experiments.pretrain, this binary re-executes itself under glibc malloc
tunables that stop XLA:CPU's per-step page faults (`malloc_tunables`,
--nomalloc_tunables to compare); the Keras subprocess runs with the
environment we were started with.
--device_independent prints only what does not need timing: FLOPs per sample,
XLA memory per step and the parameter count.

--breakdown also times the step and the predict batch of the head-to-head
with each switchable part of the model removed (`model.global_attention`,
`narrow_conv`, `wide_conv`, `global_to_local`), in the same alternating
rounds, and prints each part's marginal cost. XLA:CPU runs independent ops
concurrently, so a profiler's per-op durations overlap and do not add up to
the step; removal does.
"""

import json
import os
import sys
import time
from typing import Callable, NamedTuple

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import malloc_tunables
from experiments import original_wheel
from experiments import timing
from proteinbert import compiled
from proteinbert import config as config_lib
from proteinbert import inference
from proteinbert import model as model_lib

_SEQ_LEN = flags.DEFINE_integer(
    'seq_len', 512, 'Sequence length of the head-to-head with Keras and of '
    'inference.')
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', 32, 'Batch size of the head-to-head and of inference.')
_KERAS = flags.DEFINE_bool(
    'keras', True, 'Also time the original Keras model (CPU only).')
_PRECISION = flags.DEFINE_string(
    'precision', '', 'jmp policy; empty: float32 on CPU, bfloat16 compute on '
    'accelerators.')
_DEVICE_INDEPENDENT = flags.DEFINE_bool(
    'device_independent', False,
    'Print only FLOPs, XLA memory and parameter counts; time nothing.')
_BREAKDOWN = flags.DEFINE_bool(
    'breakdown', False,
    'Also time the head-to-head step and predict batch without each part of '
    'the model (alternating with the full model) and print the parts\' '
    'marginal costs.')
_WORKER = flags.DEFINE_enum(
    'worker', '', ['', 'keras'],
    'Internal: serve Keras timings on stdin/stdout for the parent process.')
# The parts --breakdown removes, by the model config switch that removes each.
_PARTS = {
    'global attention': 'global_attention',
    'narrow convolution': 'narrow_conv',
    'wide convolution': 'wide_conv',
    'global-to-local broadcast': 'global_to_local',
}


class JaxPredictor:
  """`PretrainedModel.predict` on fixed sequences, probabilities only."""

  def __init__(self, config: ml_collections.ConfigDict, seq_len: int,
               batch_size: int, batches: int):
    params = model_lib.init_params(config.model,
                                   jax.random.PRNGKey(timing.SEED))
    self._model = inference.PretrainedModel(params, config.model)
    batch = timing.synthetic_batch(seq_len, batch_size,
                                   config.model.num_annotations)
    self._tokens = np.tile(batch.targets, (batches, 1)).astype(np.int32)
    self._annotations = np.tile(batch.annotation_targets,
                                (batches, 1)).astype(np.float32)
    self._batch_size = batch_size

  def flops_per_sequence(self) -> float:
    """XLA cost-analysis FLOPs of one predicted sequence.

    JAX caches the executable that `predict` compiled, so after
    `time_sequences` this compiles nothing.
    """
    predict = compiled.build(inference.prediction_fn, self._model.config,
                             False).apply
    executable = predict.lower(
        self._model.params, None, self._tokens[:self._batch_size],
        self._annotations[:self._batch_size]).compile()
    return float(executable.cost_analysis()['flops']) / self._batch_size

  def time_sequences(self) -> float:
    """Seconds per sequence (the first call also compiles)."""
    return timing.seconds_each(
        lambda: self._model.predict(self._tokens, self._annotations,
                                    batch_size=self._batch_size,
                                    with_hidden=False).token_probs,
        len(self._tokens))


def _serve_keras() -> None:
  """Worker: builds the Keras model, then times on request (`timing.serve`).

  'train' answers seconds per step, 'predict' seconds per sequence.
  """
  os.environ.update(TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='2')
  from tensorflow import keras  # pylint: disable=g-import-not-at-top
  seq_len, batch_size = _SEQ_LEN.value, _BATCH_SIZE.value
  steps = timing.STEPS.value
  model_config = config_lib.get_model_config()
  original = original_wheel.import_module(original_wheel.WHEEL.value,
                                          'conv_and_global_attention_model')
  model = original.create_model(seq_len, model_config.vocab_size,
                                model_config.num_annotations)
  # The original's ModelGenerator.create_model compile, with Adam for LAMB.
  model.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-4),
                loss=['sparse_categorical_crossentropy',
                      'binary_crossentropy'], loss_weights=[1, 1])
  b = timing.synthetic_batch(seq_len, batch_size, model_config.num_annotations)
  predict_inputs = [np.tile(b.targets, (steps, 1)),
                    np.tile(b.annotation_targets, (steps, 1))]

  def train():
    for _ in range(steps):
      loss = model.train_on_batch(
          [b.tokens, b.annotations], [b.targets, b.annotation_targets],
          sample_weight=[b.token_weights, b.annotation_weights])
    return loss

  answers = {
      'train': lambda _: timing.seconds_each(train, steps),
      'predict': lambda _: timing.seconds_each(
          lambda: model.predict(predict_inputs, batch_size=batch_size,
                                verbose=0)[0], len(predict_inputs[0])),
  }
  # Warm-up: builds the tf.functions.
  answers['train'](''), answers['predict']('')
  timing.serve(answers)


def _keras_worker() -> timing.Worker:
  """The Keras worker (`_serve_keras`), in the environment we started in."""
  return timing.Worker(
      [sys.executable, '-m', __spec__.name, '--worker=keras',
       f'--seq_len={_SEQ_LEN.value}', f'--batch_size={_BATCH_SIZE.value}',
       f'--steps={timing.STEPS.value}',
       f'--original_wheel={original_wheel.WHEEL.value}',
       '--nomalloc_tunables'], env=malloc_tunables.original_env())


def _default_precision() -> str:
  if jax.default_backend() == 'cpu':
    return 'params=float32,compute=float32,output=float32'
  return 'params=float32,compute=bfloat16,output=float32'


def _device_independent(precision: str) -> None:
  """Prints FLOPs, XLA memory and parameters of every episode's step."""
  print(f'{"episode":>10} {"GFLOP/step":>11} {"GFLOP/sample":>13} '
        f'{"XLA MiB":>9}')
  config = timing.with_precision(config_lib.get_config(), precision)
  for seq_len, batch_size in timing.parse_episodes(timing.EPISODES.value):
    trainer = timing.JaxTrainer(config, seq_len, batch_size)
    print(f'{seq_len:>5}x{batch_size:<4} {trainer.flops / 1e9:11.1f} '
          f'{trainer.flops / batch_size / 1e9:13.3f} '
          f'{trainer.xla_bytes / 2**20:9.0f}')
  shapes = jax.eval_shape(lambda: model_lib.init_params(
      config_lib.get_model_config(), jax.random.PRNGKey(0)))
  print(f'parameters: {model_lib.num_params(shapes):,}')


def _rounds(measures: dict[str, Callable[[], float]]) -> dict[str, list]:
  """Runs every measure once per round, in order; their results by name."""
  results = {name: [] for name in measures}
  for i in range(timing.ROUNDS.value):
    for name, measure in measures.items():
      results[name].append(measure())
    logging.info('round %d: %s', i, {k: v[-1] for k, v in results.items()})
  return results


def _print_episodes(episodes: dict) -> None:
  print(f'{"episode":>10} {"samples/s":>10} {"tokens/s":>9} {"ms/step":>8} '
        f'{"GFLOP/sample":>13} {"MFU":>6} {"XLA MiB":>8}')
  for (seq_len, batch_size), (trainer, figures) in episodes.items():
    step = timing.median(figures['train'])
    mfu = trainer.flops / step / timing.median(figures['rate'])
    print(f'{seq_len:>5}x{batch_size:<4} {batch_size / step:10.1f} '
          f'{batch_size * seq_len / step:9.0f} {step * 1e3:8.0f} '
          f'{trainer.flops / batch_size / 1e9:13.3f} {mfu:6.1%} '
          f'{trainer.xla_bytes / 2**20:8.0f}')


def _without(config: ml_collections.ConfigDict,
             switch: str) -> ml_collections.ConfigDict:
  config = config.copy_and_resolve_references()
  config.model[switch] = False
  return config


def _breakdown_measures(config: ml_collections.ConfigDict) -> dict:
  """'train without PART' / 'predict without PART' timings, compiled."""
  measures = {}
  for part, switch in _PARTS.items():
    without = _without(config, switch)
    trainer = timing.JaxTrainer(without, _SEQ_LEN.value, _BATCH_SIZE.value)
    predictor = JaxPredictor(without, _SEQ_LEN.value, _BATCH_SIZE.value,
                             batches=timing.STEPS.value)
    trainer.warm_up(timing.STEPS.value), predictor.time_sequences()
    measures[f'train without {part}'] = (
        lambda t=trainer: t.time_steps(timing.STEPS.value))
    measures[f'predict without {part}'] = predictor.time_sequences
  return measures


def _print_breakdown(figures: dict) -> None:
  batch_size = _BATCH_SIZE.value
  full_train = timing.median(figures['train'])
  full_predict = timing.median(figures['predict']) * batch_size
  print(f'\nmarginal cost of each part at {_SEQ_LEN.value}x{batch_size} '
        '(full model minus the model without it; medians):')
  print(f'{"":28} {"train ms/step":>14} {"predict ms/batch":>17}')
  print(f'{"full model":28} {full_train * 1e3:14.0f} '
        f'{full_predict * 1e3:17.0f}')
  for part in _PARTS:
    train = full_train - timing.median(figures[f'train without {part}'])
    predict = full_predict - timing.median(
        figures[f'predict without {part}']) * batch_size
    print(f'{part:28} {train * 1e3:14.0f} {predict * 1e3:17.0f}')


class DuelRow(NamedTuple):
  """One row of the head-to-head: a throughput on both sides and its bound.

  Attributes:
    label: what is counted per second.
    ours: our throughput (samples or sequences per second).
    theirs: the Keras original's.
    ratio: ours / theirs.
    best_ratio: the same from each side's fastest round, which Keras'
      round-to-round swings (its predict alternates between two speeds)
      move less than the medians.
    our_mfu: our FLOPs per second over the matmul rate.
    their_mfu: the same FLOPs over Keras' time, over the matmul rate.
    ceiling: the ratio an implementation at 100% MFU would reach, i.e. Keras'
      time over the time these FLOPs take at the matmul rate.
  """
  label: str
  ours: float
  theirs: float
  ratio: float
  best_ratio: float
  our_mfu: float
  their_mfu: float
  ceiling: float


def duel_rows(figures: dict, batch_size: int, train_flops: float,
              predict_flops: float) -> list[DuelRow]:
  """Training and inference rows of the head-to-head.

  Both sides do the same arithmetic, so our XLA FLOP counts serve for Keras
  too. The time those FLOPs take at the measured matmul rate is a floor that
  no implementation goes below on this machine, so Keras' time over it is the
  highest ratio against Keras that any implementation could reach here.

  Args:
    figures: timings by measure name: 'train' and 'keras_train' in seconds
      per step of `batch_size` samples, 'predict' and 'keras_predict' in
      seconds per sequence (the Keras ones may be missing), 'rate' in FLOP/s.
    batch_size: samples per training step.
    train_flops: FLOPs of one training step.
    predict_flops: FLOPs of predicting one sequence.

  Returns:
    [training row, inference row]; NaN where Keras was not timed.
  """
  rate = timing.median(figures['rate'])
  rows = []
  for label, key, flops, count in (
      ('train samples/s', 'train', train_flops, batch_size),
      ('inference sequences/s', 'predict', predict_flops, 1)):
    theirs_rounds = figures.get(f'keras_{key}', [float('nan')])
    ours, theirs = timing.median(figures[key]), timing.median(theirs_rounds)
    floor = flops / rate
    rows.append(DuelRow(label, count / ours, count / theirs, theirs / ours,
                        min(theirs_rounds) / min(figures[key]),
                        floor / ours, floor / theirs, theirs / floor))
  return rows


def _print_duel(figures: dict, train_flops: float, predict_flops: float,
                ours_rss: float, theirs_rss: float) -> None:
  batch_size = _BATCH_SIZE.value
  print(f'\nat {_SEQ_LEN.value}x{batch_size}, medians of {timing.ROUNDS.value} '
        f'rounds of {timing.STEPS.value} steps / '
        f'{timing.STEPS.value * batch_size} '
        'sequences:')
  print(f'{"":24} {"JAX":>9} {"Keras":>9} {"ratio":>6} {"best":>6} '
        f'{"JAX MFU":>8} {"Keras MFU":>10} {"ceiling":>8}')
  for row in duel_rows(figures, batch_size, train_flops, predict_flops):
    print(f'{row.label:24} {row.ours:9.1f} {row.theirs:9.1f} '
          f'{row.ratio:6.2f} {row.best_ratio:6.2f} {row.our_mfu:8.1%} '
          f'{row.their_mfu:10.1%} {row.ceiling:8.2f}')
  print(f'{"peak RSS MiB":24} {ours_rss:9.1f} {theirs_rss:9.1f} '
        f'{ours_rss / theirs_rss:6.2f}')
  print(f'best: the ratio of the fastest rounds; MFU: FLOPs / time / matmul '
        f'rate (median {timing.median(figures["rate"]) / 1e9:.0f} GFLOP/s); '
        'ceiling: the ratio to Keras of an implementation at 100% MFU.')
  print('per round (s/step, s/sequence): ' + json.dumps(
      {k: [round(x, 5) for x in v] for k, v in figures.items()
       if k != 'rate'}))


def main(argv):
  del argv
  if _WORKER.value == 'keras':
    _serve_keras()
    return
  malloc_tunables.reexec(__spec__.name)
  precision = _PRECISION.value or _default_precision()
  if _DEVICE_INDEPENDENT.value:
    _device_independent(precision)
    return
  on_cpu = jax.default_backend() == 'cpu'
  rate = timing.MatmulRate(jnp.float32 if on_cpu else jnp.bfloat16,
                           2048 if on_cpu else 8192)
  keras = _keras_worker() if _KERAS.value and on_cpu else None
  config = timing.with_precision(config_lib.get_config(), precision)

  # Head to head at --seq_len x --batch_size: ours and Keras alternate.
  duel = (_SEQ_LEN.value, _BATCH_SIZE.value)
  trainer = timing.JaxTrainer(config, *duel)
  predictor = JaxPredictor(config, *duel, batches=timing.STEPS.value)
  # Compile and warm up.
  trainer.warm_up(timing.STEPS.value), predictor.time_sequences()
  measures = {'rate': rate.measure,
              'train': lambda: trainer.time_steps(timing.STEPS.value),
              'predict': predictor.time_sequences}
  if keras:
    measures.update(keras_train=lambda: keras.ask('train'),
                    keras_predict=lambda: keras.ask('predict'))
  if _BREAKDOWN.value:
    measures.update(_breakdown_measures(config))
  episodes = {duel: (trainer, _rounds(measures))}
  ours_rss = timing.peak_rss_mib()
  theirs_rss = keras.ask('quit') if keras else float('nan')

  for episode in timing.parse_episodes(timing.EPISODES.value):
    if episode not in episodes:
      trainer = timing.JaxTrainer(config, *episode)
      trainer.warm_up(timing.STEPS.value)
      episodes[episode] = (trainer, _rounds({
          'rate': rate.measure,
          'train': lambda t=trainer: t.time_steps(timing.STEPS.value)}))

  print(f'\n{time.strftime("%Y-%m-%d %H:%M")}  python -m {__spec__.name} '
        + ' '.join(sys.argv[1:]))
  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}), '
        f'precision: {precision}, GLIBC_TUNABLES='
        f'{os.environ.get("GLIBC_TUNABLES", "")!r}')
  rates = [r for _, figures in episodes.values() for r in figures['rate']]
  print('matmul rate, median of all rounds: '
        f'{timing.median(rates) / 1e9:.0f} GFLOP/s\n')
  _print_episodes(episodes)
  _print_duel(episodes[duel][1], episodes[duel][0].flops,
              predictor.flops_per_sequence(), ours_rss, theirs_rss)
  if _BREAKDOWN.value:
    _print_breakdown(episodes[duel][1])
  if not on_cpu:
    stats = jax.devices()[0].memory_stats() or {}
    print(f'device peak memory: '
          f'{stats.get("peak_bytes_in_use", float("nan")) / 2**20:.0f} MiB')


if __name__ == '__main__':
  app.run(main)
