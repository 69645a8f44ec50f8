r"""Forward time and memory per protein against length, for ablation variants.

ProteinBERT reads the sequence with convolutions and one global attention
query per head, so its cost grows linearly with length L; the
`self_attention` variant (every residue attends to every residue) grows as
L^2. For each variant and length this compiles the forward pass for one
protein, reads XLA's FLOP count and the memory it allocates beyond
parameters and inputs (temporaries plus outputs), and times the compiled
call (median of --repeats, after one warm-up call):

  python -m experiments.benchmark_length_scaling \
      --output_dir=experiments/results/length_scaling

writes length_scaling.{md,csv,png}. A call whose memory exceeds
--max_run_gib is compiled and counted but not run.
"""

import os
import time

from absl import app
from absl import flags
from absl import logging
import jax
from matplotlib import figure
import numpy as np

from proteinbert import model as model_lib
from proteinbert import tables
from proteinbert import tokenization

_CONFIG_DIR = os.path.join(os.path.dirname(__file__), 'configs', 'ablations')

_VARIANTS = flags.DEFINE_list(
    'variants', ['baseline', 'self_attention'], 'Ablation variants to measure.')
_PRESET = flags.DEFINE_string(
    'preset', 'paper', 'Preset the variants start from: paper (published '
    'sizes) or demo.')
_LENGTHS = flags.DEFINE_list(
    'lengths', [str(2**i) for i in range(7, 15)],
    'Sequence lengths L (tokens, <START> and <END> included).')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed calls per measurement.')
_MAX_RUN_GIB = flags.DEFINE_float(
    'max_run_gib', 6.0, 'Do not run calls that need more memory than this '
    '(GiB); their FLOPs and memory are still reported.')
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', None, 'Where the table and plot go.', required=True)

_COLUMNS = ('variant', 'length', 'gflops', 'memory_mib', 'seconds')


def measure(name: str, model_config, lengths, repeats: int,
            max_run_bytes: float) -> list[dict]:
  """Rows of `_COLUMNS` for one variant at every length."""
  rng = np.random.default_rng(0)
  # Random weights of the right shapes; drawn on the host because compiling
  # the model's initialiser takes longer than a measurement.
  params = jax.tree_util.tree_map(
      lambda x: rng.normal(0, 0.05, x.shape).astype(x.dtype),
      jax.eval_shape(lambda: model_lib.init_params(model_config,
                                                   jax.random.PRNGKey(0))))
  annotations = np.zeros((1, model_config.num_annotations), np.float32)
  rows = []
  for length in lengths:
    lowered = model_lib.lower_forward(model_config, 1, length)
    flops = lowered.cost_analysis()['flops']
    compiled = lowered.compile()
    memory = compiled.memory_analysis()
    extra_bytes = memory.temp_size_in_bytes + memory.output_size_in_bytes
    seconds = float('nan')
    if extra_bytes <= max_run_bytes:
      residues = ''.join(rng.choice(list(tokenization.AMINO_ACIDS),
                                    length - 2))
      tokens = tokenization.tokenize([residues], length)
      jax.block_until_ready(compiled(params, None, tokens, annotations))
      times = []
      for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(compiled(params, None, tokens, annotations))
        times.append(time.perf_counter() - started)
      seconds = float(np.median(times))
    rows.append({'variant': name, 'length': length, 'gflops': flops / 1e9,
                 'memory_mib': extra_bytes / 2**20, 'seconds': seconds})
    logging.info('%s', rows[-1])
  return rows


def write_table(rows, output_dir: str) -> None:
  """length_scaling.csv and .md: one row per variant and length."""
  tables.write_csv(os.path.join(output_dir, 'length_scaling.csv'), rows,
                   _COLUMNS)
  tables.write_text(os.path.join(output_dir, 'length_scaling.md'),
                    tables.markdown([{
                        'variant': r['variant'], 'L': r['length'],
                        'GFLOPs': f'{r["gflops"]:.2f}',
                        'memory (MiB)': f'{r["memory_mib"]:.1f}',
                        'time (ms)': ('not run' if np.isnan(r['seconds'])
                                      else f'{1e3 * r["seconds"]:.1f}'),
                    } for r in rows]))


def plot(rows, output_dir: str, preset: str) -> None:
  """Time, memory and FLOPs against length on log-log axes."""
  panels = (('seconds', 'forward time per protein (s)'),
            ('memory_mib', 'memory beyond params and inputs (MiB)'),
            ('gflops', 'forward GFLOPs per protein'))
  fig = figure.Figure(figsize=(15, 4.8), layout='constrained')
  for ax, (key, label) in zip(fig.subplots(1, len(panels)), panels):
    for name in dict.fromkeys(r['variant'] for r in rows):
      points = [(r['length'], r[key]) for r in rows
                if r['variant'] == name and not np.isnan(r[key])]
      ax.plot(*zip(*points), marker='o', label=name)
    ax.set_xscale('log', base=2)
    ax.set_yscale('log')
    ax.set_xlabel('sequence length L (tokens, log scale)')
    ax.set_ylabel(f'{label}, log scale')
    ax.grid(alpha=0.3, which='both')
    ax.legend()
  fig.suptitle(f'Cost of one forward pass against length ({preset} sizes, '
               f'batch 1, float32, {jax.devices()[0].platform.upper()}); '
               'slope 1 is linear, slope 2 quadratic')
  fig.savefig(os.path.join(output_dir, 'length_scaling.png'), dpi=130)


def main(argv):
  del argv
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  lengths = [int(x) for x in _LENGTHS.value]
  rows = []
  for name in _VARIANTS.value:
    config = ablation.load_variant(name, _CONFIG_DIR, _PRESET.value)
    rows += measure(name, config.model, lengths, _REPEATS.value,
                    _MAX_RUN_GIB.value * 2**30)
  write_table(rows, _OUTPUT_DIR.value)
  plot(rows, _OUTPUT_DIR.value, _PRESET.value)


if __name__ == '__main__':
  app.run(main)
