"""experiments.benchmark_accelerator: its arithmetic, and a tiny run on CPU."""

import json
import math

from experiments import benchmark_accelerator
from experiments import timing
from proteinbert import config as config_lib
from tests import helpers

BFLOAT16 = 'params=float32,compute=bfloat16,output=float32'


def test_mfu_is_flops_over_time_over_peak():
  # 10 TFLOP per step in 0.05 s is 200 TFLOP/s: 20% of a 1 PFLOP/s peak.
  assert math.isclose(benchmark_accelerator.mfu(10e12, 0.05, 1e15), 0.2)


def test_peak_lookup_by_device_kind():
  peak = benchmark_accelerator.peak_flops
  assert peak('NVIDIA H200', 'bfloat16') == 989.4e12
  assert peak('NVIDIA H100 80GB HBM3', 'float32') == 494.7e12
  assert peak('nvidia a100-sxm4-80gb', 'bfloat16') == 312e12
  assert peak(' Quadro RTX 5000 ', 'float32') == 11.2e12
  # No bfloat16 units on the paper's GPU; unknown devices have no peak.
  assert peak('Quadro RTX 5000', 'bfloat16') is None
  assert peak('NVIDIA H200 PCIe-ish', 'bfloat16') is None
  assert peak('cpu', 'float32') is None
  for kind, peaks in benchmark_accelerator.PEAK_FLOPS.items():
    for dtype, value in peaks.items():
      assert peak(kind.upper(), dtype) == value


def test_scaling_device_counts():
  assert benchmark_accelerator.device_counts(1) == []
  assert benchmark_accelerator.device_counts(2) == [1]
  assert benchmark_accelerator.device_counts(6) == [1, 2, 4]
  assert benchmark_accelerator.device_counts(8) == [1, 2, 4]


def _search(fits, start, cap, tries=100):
  left = iter([True] * tries + [False])
  return benchmark_accelerator.largest_batch(fits, start, cap,
                                             lambda: next(left))


def test_largest_batch_doubles_until_memory_cap_or_time():
  tried = []

  def fits(batch):
    tried.append(batch)
    return batch <= 300

  assert _search(fits, 32, 4096) == (256, 'memory')
  assert tried == [64, 128, 256, 512]
  assert _search(lambda b: True, 32, 100) == (64, 'cap')
  assert _search(lambda b: True, 32, 64) == (64, 'cap')
  assert _search(lambda b: True, 32, 4096, tries=2) == (128, 'time')
  assert _search(lambda b: False, 32, 4096) == (32, 'memory')


def test_tiny_run_end_to_end(tmp_path):
  # One compiled step (the costly part on CPU: ~10 s); the search's cap
  # equals the episode's batch, so it runs without compiling another.
  config = config_lib.get_config()
  # Enough annotations for the synthetic proteins' Poisson(12) counts.
  config.model.update(helpers.tiny_model_config(
      num_blocks=1, num_annotations=64).to_dict())
  result = benchmark_accelerator.run(
      config, episodes=[(32, 4)], precisions=[BFLOAT16], steps=2, rounds=1,
      max_batch=4, max_seconds=600, loader_proteins=100, loader_batches=2,
      matmul_size=64)
  row, = result['rows']
  assert row['compute_dtype'] == 'bfloat16'
  assert row['mfu_basis'] == 'measured matmul rate'
  assert math.isclose(row['mfu'], row['flops_per_step_per_device']
                      / row['step_seconds'] / row['matmul_flops_per_second'])
  assert math.isclose(row['samples_per_second'], 4 / row['step_seconds'])
  assert math.isclose(row['tokens_per_second'], 32 * row['samples_per_second'])
  assert math.isclose(row['days_for_paper_samples'],
                      670e6 / row['samples_per_second'] / 86400)
  assert row['compile_seconds'] > 0 and row['xla_mib_per_device'] > 0
  loader, = result['loader']
  assert loader['step_batches_per_second'] == 1 / row['step_seconds']
  assert loader['keeps_up'] == (loader['loader_batches_per_second']
                                >= loader['step_batches_per_second'])
  assert result['largest_batch'] == [dict(seq_len=32, precision=BFLOAT16,
                                          largest=4, stopped_by='cap')]
  assert result['peak_memory_mib'] > 0 and result['scaling'] == []
  assert result['skipped_for_time'] == []

  table = benchmark_accelerator.format_table(result)
  assert '32x4' in table and 'bfloat16' in table and 'loader at 32x4' in table
  path = tmp_path / 'result.json'
  timing.write_json(result, str(path))
  assert json.loads(path.read_text()) == result
