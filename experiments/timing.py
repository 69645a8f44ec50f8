"""Pieces the speed benchmarks share, and their common flags.

  synthetic_batch   one pretraining batch from the real batch pipeline
  MatmulRate        the machine's matmul throughput, the MFU yardstick
  JaxTrainer        the jitted, sharded pretraining update step, timed
  Worker / serve    a subprocess that times another implementation on
                    request (JSON lines over its stdin and stdout), so the
                    two alternate in one run without sharing a heap
"""

import json
import resource
import subprocess
import sys
import time
from typing import Callable, Mapping, Optional, Sequence

from absl import flags
import jax
from jax.sharding import Mesh
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import benchmark_data_loader
from proteinbert import config as config_lib
from proteinbert.data import batch as batch_lib
from proteinbert.training import distributed
from proteinbert.training import optimizer as optimizer_lib
from proteinbert.training import state as state_lib
from proteinbert.training import update as update_lib

EPISODES = flags.DEFINE_list(
    'episodes',
    [f'{s}:{b}' for s, b in config_lib.get_data_config().episodes],
    'seq_len:batch_size pairs of the timed training steps (default: the '
    'paper\'s pretraining episodes).')
STEPS = flags.DEFINE_integer(
    'steps', 5, 'Training steps (or inference batches) per timing.')
JSON = flags.DEFINE_string('json', '', 'Also write the results to this '
                           'JSON file.')
ROUNDS = flags.DEFINE_integer(
    'rounds', 3, 'Timings per figure, after an untimed warm-up; tables '
    'report medians.')

SEED = 0


def synthetic_batch(seq_len: int, batch_size: int,
                    num_annotations: int) -> batch_lib.Batch:
  """One pretraining batch of UniRef-like proteins, the same in every process.

  Args:
    seq_len: L.
    batch_size: B.
    num_annotations: A.

  Returns:
    A numpy `Batch` from the real pipeline (crop, tokenize, corrupt, weigh).
  """
  dataset = benchmark_data_loader.synthetic_dataset(batch_size,
                                                    num_annotations, SEED)
  return batch_lib.make_batch(dataset.read(0, batch_size), seq_len,
                              num_annotations, config_lib.get_data_config(),
                              np.random.default_rng(SEED))


def peak_rss_mib() -> float:
  """This process's peak resident memory so far, in MiB (Linux units)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values) -> float:
  return float(np.median(values))


def seconds_each(run: Callable[[], object], count: int) -> float:
  """Wall seconds of one `run()`, divided by the `count` items it does."""
  start = time.perf_counter()
  jax.block_until_ready(run())
  return (time.perf_counter() - start) / count


def with_precision(config: ml_collections.ConfigDict,
                   precision: str) -> ml_collections.ConfigDict:
  """A copy of `config` whose model runs under the jmp policy `precision`."""
  config = config.copy_and_resolve_references()
  config.model.precision = precision
  return config


def write_json(result: dict, path: str) -> None:
  """Writes a benchmark's result dict as indented JSON."""
  with open(path, 'w') as f:
    json.dump(result, f, indent=1)


def parse_episodes(episodes: Sequence[str]) -> list[tuple[int, int]]:
  """['seq_len:batch_size', ...] -> [(seq_len, batch_size), ...]."""
  return [tuple(int(v) for v in e.split(':')) for e in episodes]


class MatmulRate:
  """The machine's matmul throughput in FLOP/s, in one dtype."""

  def __init__(self, dtype, size: int):
    keys = jax.random.split(jax.random.PRNGKey(SEED))
    self._a, self._b = (jax.random.normal(k, (size, size), dtype)
                        for k in keys)
    self._matmul = jax.jit(jnp.matmul)
    self._flops = 2 * size**3
    jax.block_until_ready(self._matmul(self._a, self._b))

  def measure(self, repeats: int = 3) -> float:
    """Best of `repeats` products: the rate the machine offers right now."""
    best = np.inf
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(self._matmul(self._a, self._b))
      best = min(best, time.perf_counter() - start)
    return self._flops / best


class JaxTrainer:
  """The pretraining update step on one fixed batch, as the loop runs it.

  The state is replicated and the batch split over `mesh`
  (`training.distributed`), the step jitted with the state donated.

  Attributes:
    flops: XLA cost-analysis FLOPs of one step of the compiled program (one
      device's share when the mesh has several).
    xla_bytes: XLA's memory estimate of one step (arguments, outputs and
      temporaries, less donated buffers), per device.
    compile_seconds: wall seconds of lowering and compiling the step.
  """

  def __init__(self, config: ml_collections.ConfigDict, seq_len: int,
               batch_size: int, mesh: Optional[Mesh] = None):
    mesh = mesh or distributed.make_mesh()
    optimizer = optimizer_lib.make_optimizer(config.train,
                                             config.data.batches_per_epoch)
    self._state = distributed.replicate(
        state_lib.init_state(config.model, config.train, optimizer,
                             config.train.seed), mesh)
    self._batch = distributed.shard_batch(
        synthetic_batch(seq_len, batch_size, config.model.num_annotations),
        mesh)
    start = time.perf_counter()
    self._update = distributed.jit_update(
        update_lib.make_update_fn(config.model, config.train, optimizer),
        mesh).lower(self._state, self._batch).compile()
    self.compile_seconds = time.perf_counter() - start
    self.flops = float(self._update.cost_analysis()['flops'])
    memory = self._update.memory_analysis()
    self.xla_bytes = (memory.temp_size_in_bytes
                      + memory.argument_size_in_bytes
                      + memory.output_size_in_bytes
                      - memory.alias_size_in_bytes)

  def _steps(self, steps: int):
    for _ in range(steps):
      self._state, metrics = self._update(self._state, self._batch)
    return metrics

  def warm_up(self, steps: int) -> None:
    """Runs one timing's worth of steps untimed.

    The first steps after compiling are much slower while the heap grows to
    its working size (2.6-2.8 s against ~1.7 s at 512x32 on a CPU), and
    accelerators settle their clocks and autotuned kernels.
    """
    self.time_steps(steps)

  def time_steps(self, steps: int) -> float:
    """Seconds per step over `steps` steps."""
    return seconds_each(lambda: self._steps(steps), steps)


def serve(answers: Mapping[str, Callable[[str], object]]) -> None:
  """The worker's side: answers 'command [argument]' lines until 'quit'.

  Prints {"result": "ready"} first, then for each line on stdin the JSON line
  {"result": answers[command](argument)}. 'quit' answers with the worker's
  peak RSS in MiB and returns.
  """
  print(json.dumps({'result': 'ready'}), flush=True)
  for line in sys.stdin:
    command, _, argument = line.strip().partition(' ')
    if command == 'quit':
      print(json.dumps({'result': peak_rss_mib()}), flush=True)
      return
    print(json.dumps({'result': answers[command](argument)}), flush=True)


class Worker:
  """The parent's handle on a subprocess that runs `serve`."""

  def __init__(self, argv: Sequence[str], env: Optional[dict] = None):
    self._argv = list(argv)
    self._process = subprocess.Popen(
        self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=env)
    self._read()

  def _read(self):
    line = self._process.stdout.readline()
    if not line:
      raise RuntimeError('A benchmark worker died; run it alone to see why: '
                         + ' '.join(self._argv))
    return json.loads(line)['result']

  def ask(self, command: str):
    """'command [argument]' -> the worker's answer; 'quit' -> its RSS."""
    self._process.stdin.write(command + '\n')
    self._process.stdin.flush()
    result = self._read()
    if command == 'quit':
      self._process.wait()
    return result
