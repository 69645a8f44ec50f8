"""Plots of an ablation (`experiments/ablation.py`): loss curves and
held-out metrics against model size."""

from typing import Mapping, Sequence

from matplotlib import figure
import numpy as np


def _style(i: int) -> dict:
  """Colour, dashes and marker of the i-th variant, distinct up to 40."""
  group = i // 10 % 4
  return {'color': f'C{i % 10}', 'linestyle': ('-', '--', '-.', ':')[group],
          'marker': 'os^D'[group]}


def plot_loss_curves(curves: Mapping[str, Sequence[Sequence[Mapping]]],
                     path: str) -> str:
  """Training and held-out token loss against step, one line per run.

  Args:
    curves: variant -> one `metrics.jsonl` record list per seed, in legend
      order; a variant's seeds share its colour and style.
    path: the PNG to write.

  Returns:
    `path`.
  """
  fig = figure.Figure(figsize=(13, 5.5), layout='constrained')
  train_ax, heldout_ax = fig.subplots(1, 2)
  for i, (name, runs) in enumerate(curves.items()):
    style = _style(i)
    for seed_index, records in enumerate(runs):
      train = [(r['step'], r['token_loss']) for r in records
               if 'token_loss' in r]
      heldout = [(r['step'], r['heldout/token_loss']) for r in records
                 if 'heldout/token_loss' in r]
      train_ax.plot(*zip(*train), color=style['color'],
                    linestyle=style['linestyle'], linewidth=1)
      heldout_ax.plot(*zip(*heldout), markersize=3,
                      label=name if seed_index == 0 else None, **style)
  train_ax.set_title('Training token loss (mean over each logging interval)')
  heldout_ax.set_title('Held-out token loss (test-set proteins)')
  for ax in (train_ax, heldout_ax):
    # Log scale: the first steps fall by nats, the differences at the end are
    # hundredths.
    ax.set_yscale('log')
    ax.set_xlabel('training step')
    ax.set_ylabel('token cross-entropy (nats per token, log scale)')
    ax.grid(alpha=0.3, which='both')
  heldout_ax.legend(loc='center left', bbox_to_anchor=(1.02, 0.5),
                    fontsize=8)
  fig.savefig(path, dpi=130)
  return path


def plot_metrics_vs_params(rows: Sequence[Mapping],
                           metrics: Sequence[tuple[str, str]],
                           path: str) -> str:
  """Held-out metrics against parameter count, one marker per variant.

  Args:
    rows: `ablation.aggregate` rows (each metric a list over seeds).
    metrics: (key, title) of the metrics to show, one panel each.
    path: the PNG to write.

  Returns:
    `path`. Markers sit at the mean over seeds; bars span the seeds.
  """
  fig = figure.Figure(figsize=(5.5 * len(metrics), 5.5), layout='constrained')
  axes = fig.subplots(1, len(metrics), squeeze=False)[0]
  for ax, (key, title) in zip(axes, metrics):
    for i, row in enumerate(rows):
      style = _style(i)
      values = np.asarray(row[key], float)
      mean = values.mean()
      ax.errorbar(row['parameters'], mean,
                  yerr=[[mean - values.min()], [values.max() - mean]],
                  color=style['color'], marker=style['marker'], markersize=5,
                  capsize=3, label=row['variant'])
    ax.set_xscale('log')
    ax.set_xlabel('parameters (count, log scale)')
    ax.set_ylabel(f'held-out {title}')
    ax.grid(alpha=0.3, which='both')
  axes[-1].legend(loc='center left', bbox_to_anchor=(1.02, 0.5), fontsize=8)
  fig.suptitle('Held-out metrics at the final step against model size '
               '(bars: range over seeds)')
  fig.savefig(path, dpi=130)
  return path
