"""Drawing global attention maps: heads x positions per block.

One heat map per block, a row per head, a column per token (<START>, the
residues, <END>); each row is that head's softmax over the positions. Used
by `experiments/plot_attention.py` and notebooks; maps stored by
`python -m experiments.embed --attention` plot the same way:
`plot(group['attention'][()], seq)`.
"""

import math

from matplotlib import figure
import numpy as np

from proteinbert import inference
from proteinbert import tokenization

# Beyond this many positions the axis labels every k-th one, with its index.
_MAX_LABELS = 120


def protein_attention(model: inference.PretrainedModel,
                      seq: str) -> np.ndarray:
  """One protein's global attention weights, float32 [num_blocks, H, n + 2].

  Args:
    model: the pretrained model.
    seq: the protein's n residues.
  """
  tokens = tokenization.tokenize([seq], len(seq) + (
      tokenization.ADDED_TOKENS_PER_SEQ), normalize_case=True)
  return model.global_attention(tokens)[0]


def position_labels(seq: str) -> list[str]:
  """The tokens' names along the axis: <START>, the residues, <END>."""
  return ['<START>', *seq.upper(), '<END>']


def plot(weights: np.ndarray, seq: str, title: str = '') -> figure.Figure:
  """Heat maps of heads x positions, one per block.

  Args:
    weights: [num_blocks, H, n + 2] attention weights over the tokens of
      `seq` (`protein_attention`, or an `embed --attention` dataset).
    seq: the protein's n residues.
    title: above the top panel.

  Returns:
    The figure (`.savefig(path)` writes it).
  """
  num_blocks, num_heads, length = weights.shape
  labels = position_labels(seq)
  if length != len(labels):
    raise ValueError(f'weights cover {length} positions; a protein of '
                     f'{len(seq)} residues has {len(labels)} tokens.')
  step = math.ceil(length / _MAX_LABELS)
  ticks = [*range(0, length - step, step), length - 1]
  fig = figure.Figure(figsize=(min(max(6.0, 2.0 + 0.12 * len(ticks)), 30.0),
                               1.0 + num_blocks * (0.8 + 0.25 * num_heads)))
  axes = fig.subplots(num_blocks, 1, sharex=True, squeeze=False)[:, 0]
  for block, ax in enumerate(axes):
    image = ax.imshow(weights[block], aspect='auto', interpolation='nearest',
                      cmap='viridis', vmin=0.0)
    ax.set_yticks(range(num_heads))
    ax.set_yticklabels([f'head {h + 1}' for h in range(num_heads)],
                       fontsize=7)
    ax.set_title(f'block {block + 1}', fontsize=8, loc='left')
    fig.colorbar(image, ax=ax, pad=0.01, fraction=0.03)
  axes[-1].set_xticks(ticks)
  axes[-1].set_xticklabels(
      [labels[t] if step == 1 or t in (0, length - 1) else f'{labels[t]}{t}'
       for t in ticks], rotation=90, fontsize=6)
  axes[-1].set_xlabel('position' if step == 1 else
                      f'position (labelled every {step}, with its index)')
  if title:
    axes[0].set_title(title, fontsize=9)
  fig.tight_layout()
  return fig
