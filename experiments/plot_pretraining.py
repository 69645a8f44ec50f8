r"""Plots a pretraining run's held-out metrics against samples seen.

  python -m experiments.plot_pretraining --workdir=/runs/swissprot_small \
      --output=experiments/results/swissprot_small/heldout_curves.png

Reads the run's `config.json` and `metrics.jsonl`. Samples seen are counted
from the training records: each covers the steps since the previous one, all
of the episode it names (`episode_seq_len`), whose batch size the config
gives (episodes switch at epoch boundaries, so a logging window lies in one
episode when `log_every_steps` divides the epochs of an episode). Also
writes the held-out records as CSV beside the plot.
"""

import csv
import json
import os

from absl import app
from absl import flags
from matplotlib import figure

_WORKDIR = flags.DEFINE_string('workdir', None, 'The run.', required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'PNG to write.', required=True)

# (panel title, metric, its frequency baseline or None).
PANELS = (
    ('denoising accuracy (best guess among tokens not shown)',
     'denoising_accuracy', 'frequency_baseline/denoising_accuracy'),
    ('loss of the true residue among tokens not shown (nats)',
     'denoising_loss', 'frequency_baseline/denoising_loss'),
    ('loss of the true residue at corrupted positions (nats)',
     'corrupted_token_loss', 'frequency_baseline/corrupted_token_loss'),
    ('token loss, all positions (nats)', 'token_loss',
     'frequency_baseline/token_loss'),
    ('GO annotation AUC from sequence alone (micro)', 'annotation_auc', None),
)


def heldout_curves(workdir: str) -> list[dict]:
  """Held-out records, each with 'samples_seen' added, in step order."""
  with open(os.path.join(workdir, 'config.json')) as f:
    config = json.load(f)
  batch_sizes = {int(seq_len): int(batch)
                 for seq_len, batch in config['data']['episodes']}
  samples, last_step, curves = 0, 0, []
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    for line in f:
      record = json.loads(line)
      if 'episode_seq_len' in record:
        samples += ((record['step'] - last_step)
                    * batch_sizes[int(record['episode_seq_len'])])
        last_step = record['step']
      elif 'heldout/token_loss' in record:
        curves.append(dict(record, samples_seen=samples))
  return curves


def plot(curves: list[dict], output: str) -> None:
  """Draws one panel per metric, with its baseline dashed."""
  fig = figure.Figure(figsize=(4.2 * len(PANELS), 3.6))
  samples = [r['samples_seen'] for r in curves]
  for i, (title, metric, baseline) in enumerate(PANELS):
    ax = fig.add_subplot(1, len(PANELS), i + 1)
    ax.plot(samples, [r[f'heldout/{metric}'] for r in curves], 'o-',
            label='model')
    if baseline:
      ax.plot(samples, [r[f'heldout/{baseline}'] for r in curves], '--',
              label='frequency baseline')
    ax.set_title(title, fontsize=8)
    ax.set_xlabel('samples seen')
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(output, dpi=110)


def write_csv(curves: list[dict], path: str) -> None:
  fields = ['step', 'samples_seen'] + sorted(
      {k for r in curves for k in r} - {'step', 'samples_seen'})
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fields)
    writer.writeheader()
    writer.writerows(curves)


def main(argv):
  del argv
  curves = heldout_curves(_WORKDIR.value)
  if not curves:
    raise app.UsageError(f'{_WORKDIR.value} has no held-out records yet.')
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  plot(curves, _OUTPUT.value)
  write_csv(curves, os.path.splitext(_OUTPUT.value)[0] + '.csv')


if __name__ == '__main__':
  app.run(main)
