r"""Pretraining speed on an accelerator, in one command of a few minutes.

  python -m experiments.benchmark_accelerator --json=accelerator.json
  python -m experiments.benchmark_accelerator --episodes=512:64 \
      --precisions='params=float32,compute=bfloat16,output=float32'

For every episode (seq_len:batch_size; the paper's by default) and every
--precisions (float32 and bfloat16 compute by default) it compiles the
pretraining update step (`timing.JaxTrainer`: LAMB + plateau, the state
replicated and the batch split over all local devices as
`training.distributed` does in pretraining) and reports samples/s, tokens/s
(padding included), the whole-step compile time, XLA's memory per step and
model FLOP utilisation: XLA's FLOPs per step / step time / the device's
published dense peak for the compute dtype (`PEAK_FLOPS`), or the matmul
rate measured in that dtype where the device is not in the table. Beside
each row: the days the paper's ~670M samples would take, and the ratio to
the paper's ~280 samples/s (28 days on one Quadro RTX 5000).

Then, while --max_seconds allows:
- the data loader's batches/s per episode on one thread, as its prefetch
  thread runs it (synthetic UniRef-like proteins in a temporary HDF5 file,
  `benchmark_data_loader`), against the batches/s the fastest step consumes;
- with several devices, samples/s on 1, 2, 4, ... of them;
- the largest batch per episode that fits, under the last --precisions:
  doubling from the episode's batch until out of memory or --max_batch (off
  on CPU by default).
Peak device memory comes from `memory_stats()` (taken before the batch
search), or the process's peak RSS where the backend has none (CPU).
"""

import datetime
import sys
import time
from typing import Callable, NamedTuple, Optional

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections

from experiments import benchmark_data_loader
from experiments import timing
from proteinbert import config as config_lib
from proteinbert import precision as precision_lib
from proteinbert.training import distributed

_PRECISIONS = flags.DEFINE_multi_string(
    'precisions', ['params=float32,compute=float32,output=float32',
                  'params=float32,compute=bfloat16,output=float32'],
    'jmp policies to time (repeat the flag); the largest batch is searched '
    'under the last.')
_MAX_BATCH = flags.DEFINE_integer(
    'max_batch', None, 'Cap of the largest-batch search; 0 skips it. '
    'Default: 4096 on accelerators, 0 on CPU.')
_MAX_SECONDS = flags.DEFINE_float(
    'max_seconds', 420, 'Time budget: once spent, the remaining loader, '
    'scaling and batch-search measurements are skipped (and listed).')
_LOADER_PROTEINS = flags.DEFINE_integer(
    'loader_proteins', 20_000, 'Synthetic proteins the loader reads.')
_LOADER_BATCHES = flags.DEFINE_integer(
    'loader_batches', 50, 'Loader batches timed per episode; 0 skips it.')
_MATMUL_SIZE = flags.DEFINE_integer(
    'matmul_size', None, 'Side of the square matmul that measures the matmul '
    'rate. Default: 8192 on accelerators, 2048 on CPU.')

# The paper's pretraining: ~670M samples in 28 days on one Quadro RTX 5000
# (Brandes et al. 2022, Bioinformatics 38(8), section 2.2), i.e. ~280/s.
PAPER_SAMPLES = 670e6
PAPER_SAMPLES_PER_SECOND = 280.0

# Published dense (no 2:4 sparsity) peaks per device in FLOP/s, keyed by the
# `device_kind` JAX reports, by compute dtype. 'float32' is the rate XLA
# runs float32 matmuls at by default: TF32 tensor cores on Ampere and later
# GPUs, plain FP32 on older ones. A dtype a device has no units for is left
# out, and its MFU falls back to the measured matmul rate; so are devices
# not listed. The AWS A10G is not listed: NVIDIA publishes no datasheet for
# it, and third-party tables give either 70 or the A10's 125 BF16 TFLOP/s.
_H100_SXM = {'bfloat16': 989.4e12, 'float16': 989.4e12, 'float32': 494.7e12}
_A100 = {'bfloat16': 312e12, 'float16': 312e12, 'float32': 156e12}
_V100_SXM2 = {'float16': 125e12, 'float32': 15.7e12}
_V100_PCIE = {'float16': 112e12, 'float32': 14e12}
PEAK_FLOPS = {
    # NVIDIA H100 datasheet (nvidia.com/en-us/data-center/h100) and Hopper
    # whitepaper: SXM5 BF16/FP16 1,979 and TF32 989 TFLOP/s with sparsity.
    'NVIDIA H100 80GB HBM3': _H100_SXM,
    # Same datasheet, H100 PCIe: 1,513 and 756 with sparsity.
    'NVIDIA H100 PCIe': {'bfloat16': 756e12, 'float16': 756e12,
                         'float32': 378e12},
    # Same datasheet, H100 NVL: 1,671 and 835 with sparsity.
    'NVIDIA H100 NVL': {'bfloat16': 835e12, 'float16': 835e12,
                        'float32': 418e12},
    # NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200): the SXM's
    # compute is the H100 SXM's (BF16 1,979, TF32 989 with sparsity).
    'NVIDIA H200': _H100_SXM,
    # Same datasheet, H200 NVL: 1,671 and 835 with sparsity.
    'NVIDIA H200 NVL': {'bfloat16': 835e12, 'float16': 835e12,
                        'float32': 418e12},
    # NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100): BF16 312,
    # TF32 156 TFLOP/s dense, SXM4 and PCIe alike.
    'NVIDIA A100-SXM4-40GB': _A100,
    'NVIDIA A100-SXM4-80GB': _A100,
    'NVIDIA A100-PCIE-40GB': _A100,
    'NVIDIA A100 80GB PCIe': _A100,
    # NVIDIA L4 datasheet (nvidia.com/en-us/data-center/l4): BF16 242 and
    # TF32 120 TFLOP/s with sparsity.
    'NVIDIA L4': {'bfloat16': 121e12, 'float16': 121e12, 'float32': 60e12},
    # NVIDIA V100 datasheet (nvidia.com/en-us/data-center/v100): tensor
    # (FP16) 125 / 112 and FP32 15.7 / 14 TFLOP/s for SXM2 / PCIe; no
    # bfloat16 units.
    'Tesla V100-SXM2-16GB': _V100_SXM2,
    'Tesla V100-SXM2-32GB': _V100_SXM2,
    'Tesla V100-PCIE-16GB': _V100_PCIE,
    'Tesla V100-PCIE-32GB': _V100_PCIE,
    # NVIDIA Quadro RTX 5000 datasheet (2018), the paper's GPU: tensor
    # (FP16) 89.2 and FP32 11.2 TFLOP/s; no bfloat16 units.
    'Quadro RTX 5000': {'float16': 89.2e12, 'float32': 11.2e12},
    # Cloud TPU system architecture pages (cloud.google.com/tpu/docs/v4,
    # /v5e): 275 and 197 bf16 TFLOP/s per chip.
    'TPU v4': {'bfloat16': 275e12},
    'TPU v5 lite': {'bfloat16': 197e12},
}


def peak_flops(device_kind: str, dtype: str) -> Optional[float]:
  """The published dense peak of `device_kind` in `dtype`, or None.

  Args:
    device_kind: `jax.Device.device_kind`, matched whole, ignoring case and
      surrounding spaces.
    dtype: the compute dtype's name ('bfloat16', 'float16', 'float32').
  """
  by_kind = {kind.casefold(): peaks for kind, peaks in PEAK_FLOPS.items()}
  return by_kind.get(device_kind.strip().casefold(), {}).get(dtype)


def mfu(flops_per_step: float, step_seconds: float,
        peak_flops_per_second: float) -> float:
  """Model FLOP utilisation: FLOPs per step / step seconds / peak."""
  return flops_per_step / step_seconds / peak_flops_per_second


class BatchSearch(NamedTuple):
  """The largest batch that fitted, and why the doubling stopped.

  Attributes:
    largest: the largest batch that fitted.
    stopped_by: 'memory' (the next one did not fit), 'cap' (the next one
      passes the cap) or 'time' (the budget ran out first).
  """
  largest: int
  stopped_by: str


def largest_batch(fits: Callable[[int], bool], start: int, cap: int,
                  time_left: Callable[[], bool]) -> BatchSearch:
  """Doubles `start` (known to fit) while the next batch fits.

  Args:
    fits: batch size -> whether a training step at it runs.
    start: a batch size that fits.
    cap: no batch above it is tried.
    time_left: whether the budget allows another try.
  """
  batch = start
  while True:
    if 2 * batch > cap:
      return BatchSearch(batch, 'cap')
    if not time_left():
      return BatchSearch(batch, 'time')
    if not fits(2 * batch):
      return BatchSearch(batch, 'memory')
    batch *= 2


def _is_out_of_memory(error: Exception) -> bool:
  message = str(error)
  return 'RESOURCE_EXHAUSTED' in message or 'Out of memory' in message


def _compute_dtype(precision: str) -> str:
  return jnp.dtype(precision_lib.get_policy(precision).compute_dtype).name


def _device_peak_mib() -> tuple[float, str]:
  """Peak memory so far: the largest device's, or the process RSS on CPU."""
  stats = [d.memory_stats() for d in jax.local_devices()]
  if all(s and 'peak_bytes_in_use' in s for s in stats):
    return (max(s['peak_bytes_in_use'] for s in stats) / 2**20,
            'device memory_stats peak_bytes_in_use')
  return timing.peak_rss_mib(), 'process peak RSS (no device memory stats)'


class _Budget:
  """Wall seconds left of `max_seconds`, and what was skipped for them."""

  def __init__(self, max_seconds: float):
    self._deadline = time.monotonic() + max_seconds
    self.skipped = []

  def left(self) -> bool:
    return time.monotonic() < self._deadline

  def allows(self, what: str) -> bool:
    if self.left():
      return True
    self.skipped.append(what)
    return False


def _time_row(config, seq_len, batch_size, steps, rounds, rate, mesh=None):
  """(trainer, median seconds per step, per-round seconds)."""
  trainer = timing.JaxTrainer(config, seq_len, batch_size, mesh)
  trainer.warm_up(steps)
  seconds = [trainer.time_steps(steps) for _ in range(rounds)]
  return trainer, timing.median(seconds), seconds, rate.measure()


def _row(config, precision, seq_len, batch_size, steps, rounds, rate,
         device_kind) -> dict:
  """One table row: throughput, FLOPs, MFU, compile time and memory."""
  trainer, step, seconds, matmul_rate = _time_row(
      config, seq_len, batch_size, steps, rounds, rate)
  dtype = _compute_dtype(precision)
  peak = peak_flops(device_kind, dtype)
  samples_per_second = batch_size / step
  return dict(
      seq_len=seq_len, batch_size=batch_size, precision=precision,
      compute_dtype=dtype, devices=jax.device_count(),
      step_seconds=step, round_step_seconds=seconds,
      samples_per_second=samples_per_second,
      tokens_per_second=samples_per_second * seq_len,
      flops_per_step_per_device=trainer.flops,
      flops_per_sample=trainer.flops * jax.device_count() / batch_size,
      peak_flops_per_device=peak, matmul_flops_per_second=matmul_rate,
      mfu=mfu(trainer.flops, step, peak or matmul_rate),
      mfu_basis='published peak' if peak else 'measured matmul rate',
      mfu_of_matmul_rate=mfu(trainer.flops, step, matmul_rate),
      compile_seconds=trainer.compile_seconds,
      xla_mib_per_device=trainer.xla_bytes / 2**20,
      days_for_paper_samples=PAPER_SAMPLES / samples_per_second / 86400,
      times_paper=samples_per_second / PAPER_SAMPLES_PER_SECOND)


def _loader(dataset, episodes, rows, num_batches, budget) -> list[dict]:
  """Loader batches/s per episode against the fastest step's consumption."""
  results = []
  for seq_len, batch_size in episodes:
    if not budget.allows(f'loader {seq_len}x{batch_size}'):
      continue
    rate = benchmark_data_loader.loader_rate(
        benchmark_data_loader.episode_config(seq_len, batch_size), dataset,
        num_batches)
    consumed = max(1 / r['step_seconds'] for r in rows
                   if (r['seq_len'], r['batch_size']) == (seq_len,
                                                          batch_size))
    results.append(dict(
        seq_len=seq_len, batch_size=batch_size,
        loader_batches_per_second=rate.batches_per_second,
        step_batches_per_second=consumed,
        keeps_up=rate.batches_per_second >= consumed))
  return results


def device_counts(total: int) -> list[int]:
  """The smaller meshes the scaling rows use: 1, 2, 4, ... below `total`."""
  return [2**i for i in range(total.bit_length()) if 2**i < total]


def _scaling(config, episodes, steps, rounds, rate, budget) -> list[dict]:
  """Samples/s on 1, 2, 4, ... devices (fewer than all), per episode."""
  results = []
  for seq_len, batch_size in episodes:
    for count in device_counts(jax.local_device_count()):
      if batch_size % count or not budget.allows(
          f'scaling {seq_len}x{batch_size} on {count}'):
        continue
      mesh = distributed.make_mesh(jax.local_devices()[:count])
      _, step, _, _ = _time_row(config, seq_len, batch_size, steps, rounds,
                                rate, mesh)
      results.append(dict(seq_len=seq_len, batch_size=batch_size,
                          devices=count, samples_per_second=batch_size / step))
  return results


def _fits(config, seq_len: int) -> Callable[[int], bool]:
  """batch size -> whether one training step at it runs."""
  def fits(batch_size):
    try:
      timing.JaxTrainer(config, seq_len, batch_size).time_steps(1)
    except Exception as e:  # pylint: disable=broad-except
      if _is_out_of_memory(e):
        return False
      raise
    return True
  return fits


def run(config: ml_collections.ConfigDict, episodes: list[tuple[int, int]],
        precisions: list[str], steps: int, rounds: int, max_batch: int,
        max_seconds: float, loader_proteins: int, loader_batches: int,
        matmul_size: int) -> dict:
  """Every measurement of the module docstring, as a JSON-ready dict.

  Args:
    config: the full config (model, train, data) whose model is timed; its
      precision is replaced by each of `precisions`.
    episodes: (seq_len, batch_size) pairs; global batch sizes.
    precisions: jmp policy strings.
    steps: training steps per timing.
    rounds: timings per row (medians reported).
    max_batch: cap of the largest-batch search; 0 skips it.
    max_seconds: budget after which optional measurements are skipped.
    loader_proteins: synthetic proteins the loader reads.
    loader_batches: loader batches timed per episode; 0 skips the loader.
    matmul_size: side of the matmul that measures the matmul rate.
  """
  budget = _Budget(max_seconds)
  device_kind = jax.devices()[0].device_kind
  rates = {}
  rows = []
  for precision in precisions:
    dtype = _compute_dtype(precision)
    if dtype not in rates:
      rates[dtype] = timing.MatmulRate(jnp.dtype(dtype), matmul_size)
    for seq_len, batch_size in episodes:
      rows.append(_row(timing.with_precision(config, precision), precision,
                       seq_len, batch_size, steps, rounds, rates[dtype],
                       device_kind))
  peak_mib, peak_source = _device_peak_mib()
  result = dict(
      date=datetime.datetime.now().isoformat(timespec='seconds'),
      command=' '.join(sys.argv), device_kind=device_kind,
      backend=jax.default_backend(), device_count=jax.device_count(),
      paper_samples_per_second=PAPER_SAMPLES_PER_SECOND, steps=steps,
      rounds=rounds, rows=rows, peak_memory_mib=peak_mib,
      peak_memory_source=peak_source)

  if loader_batches:
    with benchmark_data_loader.synthetic_storage(
        loader_proteins, config.model.num_annotations, 'hdf5') as dataset:
      result['loader'] = _loader(dataset, episodes, rows, loader_batches,
                                 budget)
  search_config = timing.with_precision(config, precisions[-1])
  result['scaling'] = _scaling(search_config, episodes, steps, rounds,
                               rates[_compute_dtype(precisions[-1])], budget)
  result['largest_batch'] = []
  for seq_len, batch_size in episodes:
    if max_batch and budget.allows(f'largest batch {seq_len}'):
      search = largest_batch(_fits(search_config, seq_len), batch_size,
                             max_batch, budget.left)
      result['largest_batch'].append(dict(
          seq_len=seq_len, precision=precisions[-1], **search._asdict()))
  result['skipped_for_time'] = budget.skipped
  return result


def _label(row: dict) -> str:
  return f'{row["seq_len"]}x{row["batch_size"]}'


def format_table(result: dict) -> str:
  """The printed report of `run`'s result."""
  lines = [
      f'{result["date"]}  {result["command"]}',
      f'device: {result["device_kind"]} ({result["backend"]}) x '
      f'{result["device_count"]}; medians of {result["rounds"]} timings of '
      f'{result["steps"]} steps',
      f'reference: the paper, ~{result["paper_samples_per_second"]:.0f} '
      'samples/s (28 days for ~670M samples on one Quadro RTX 5000)', '',
      f'{"episode":>9} {"compute":>8} {"samples/s":>10} {"tokens/s":>10} '
      f'{"ms/step":>8} {"GFLOP/sample":>12} {"MFU":>6} {"of matmul":>9} '
      f'{"compile s":>9} {"XLA MiB":>8} {"days":>7} {"x paper":>8}']
  for row in result['rows']:
    basis = '' if row['mfu_basis'] == 'published peak' else '*'
    lines.append(
        f'{_label(row):>9} {row["compute_dtype"]:>8} '
        f'{row["samples_per_second"]:10.1f} {row["tokens_per_second"]:10.0f} '
        f'{row["step_seconds"] * 1e3:8.1f} '
        f'{row["flops_per_sample"] / 1e9:12.2f} {row["mfu"]:5.1%}{basis:1} '
        f'{row["mfu_of_matmul_rate"]:9.1%} {row["compile_seconds"]:9.1f} '
        f'{row["xla_mib_per_device"]:8.0f} '
        f'{row["days_for_paper_samples"]:7.2f} {row["times_paper"]:8.2f}')
  lines.append('MFU: FLOPs / time / the published dense peak per device (* '
               'where none is known: the measured matmul rate); days: for '
               'the paper\'s ~670M samples at that rate.')
  lines.append(f'peak memory: {result["peak_memory_mib"]:.0f} MiB '
               f'({result["peak_memory_source"]})')
  for loader in result.get('loader', []):
    lines.append(
        f'loader at {_label(loader)}: '
        f'{loader["loader_batches_per_second"]:.1f} batches/s on one thread, '
        f'the fastest step takes {loader["step_batches_per_second"]:.1f}: '
        + ('keeps up' if loader['keeps_up'] else 'DOES NOT keep up'))
  for scaling in result['scaling']:
    lines.append(f'{_label(scaling)} on {scaling["devices"]} device(s): '
                 f'{scaling["samples_per_second"]:.1f} samples/s')
  for search in result['largest_batch']:
    lines.append(f'largest batch at seq_len {search["seq_len"]} '
                 f'({search["precision"]}): {search["largest"]} (stopped by '
                 f'{search["stopped_by"]})')
  if result['skipped_for_time']:
    lines.append('skipped for time: ' + ', '.join(result['skipped_for_time']))
  return '\n'.join(lines)


def main(argv):
  del argv
  on_cpu = jax.default_backend() == 'cpu'
  max_batch = _MAX_BATCH.value
  if max_batch is None:
    max_batch = 0 if on_cpu else 4096
  result = run(config_lib.get_config(),
               timing.parse_episodes(timing.EPISODES.value),
               _PRECISIONS.value, timing.STEPS.value, timing.ROUNDS.value,
               max_batch, _MAX_SECONDS.value, _LOADER_PROTEINS.value,
               _LOADER_BATCHES.value,
               _MATMUL_SIZE.value or (2048 if on_cpu else 8192))
  print(format_table(result))
  if timing.JSON.value:
    timing.write_json(result, timing.JSON.value)


if __name__ == '__main__':
  app.run(main)
