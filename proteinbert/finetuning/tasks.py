"""Fine-tuning tasks: what a head predicts, and labels as the arrays it learns.

Task kinds (the original's `OutputType`, plus global multi-label):

  kind                 label text (a CSV `label` cell)       parsed label
  global_binary        '0' or '1'                            float32 scalar
  global_categorical   a class name ('c', '51')              int32 class index
  global_numeric       a number                              float32 scalar
  global_multilabel    class names joined by ';' ('' = none) float32 [K] 0/1
  residue_binary       one 0/1 per residue                   float32 [n]
  residue_categorical  one class name per residue            int32 [n]
  residue_numeric      one number per residue                float32 [n]

Per-residue label text is either one character per residue ('0012', as the
benchmarks write it) or labels separated by commas or whitespace
('0.5,1.25,...'; needed for numbers and multi-character class names).

Per-residue labels align with residues, not tokens: residue i sits at token
position i + 1, after <START>. `targets` places them there and gives weight
zero to <START>, <END>, <PAD> and residues cropped off the end, so neither
padding nor overflow reaches the loss or the metrics.
"""

import re
from typing import Iterable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from proteinbert import tokenization

KINDS = ('global_binary', 'global_categorical', 'global_numeric',
         'global_multilabel', 'residue_binary', 'residue_categorical',
         'residue_numeric')
MULTILABEL_SEPARATOR = ';'
_RESIDUE_SEPARATORS = re.compile(r'[\s,]+')


class TaskSpec(NamedTuple):
  """What a fine-tuned head predicts.

  Attributes:
    kind: one of KINDS.
    classes: class names, in output order, for categorical and multi-label
      tasks; ('0', '1') for binary; () for numeric.
    target_mean: numeric tasks learn (label - target_mean) / target_std, so
      a freshly initialised head starts at the right scale; predictions are
      mapped back. 0 and 1 for other kinds.
    target_std: see target_mean.
  """
  kind: str
  classes: tuple = ()
  target_mean: float = 0.0
  target_std: float = 1.0

  @property
  def per_residue(self) -> bool:
    return self.kind.startswith('residue_')

  @property
  def output_type(self) -> str:
    """'binary', 'categorical', 'numeric' or 'multilabel'."""
    return output_type(self.kind)

  @property
  def num_outputs(self) -> int:
    """Units of the head's dense layer."""
    if self.output_type in ('categorical', 'multilabel'):
      return len(self.classes)
    return 1


def output_type(kind: str) -> str:
  """'binary', 'categorical', 'numeric' or 'multilabel' of a task kind."""
  if kind not in KINDS:
    raise ValueError(f'Unknown task kind {kind!r}; expected one of {KINDS}.')
  return kind.split('_', 1)[1]


def make_spec(kind: str, classes: Sequence[str] = (),
              target_mean: float = 0.0, target_std: float = 1.0) -> TaskSpec:
  """A checked TaskSpec.

  Args:
    kind: one of KINDS.
    classes: class names (categorical, multi-label); binary tasks always get
      ('0', '1') and numeric ones ().
    target_mean: numeric tasks only; see TaskSpec.
    target_std: numeric tasks only; positive.

  Raises:
    ValueError: unknown kind, too few or repeated classes, bad scale.
  """
  kind_type = output_type(kind)
  classes = tuple(str(c) for c in classes)
  if kind_type == 'binary':
    classes = ('0', '1')
  elif kind_type == 'numeric':
    classes = ()
  elif len(set(classes)) != len(classes):
    raise ValueError(f'{kind}: repeated class names in {classes}.')
  elif len(classes) < (2 if kind_type == 'categorical' else 1):
    raise ValueError(f'{kind} needs at least '
                     f'{2 if kind_type == "categorical" else 1} classes, got '
                     f'{list(classes)}.')
  if kind_type != 'numeric' and (target_mean, target_std) != (0.0, 1.0):
    raise ValueError(f'{kind}: target_mean/target_std are for numeric tasks.')
  if not target_std > 0:
    raise ValueError(f'target_std must be positive, got {target_std}.')
  return TaskSpec(kind, classes, float(target_mean), float(target_std))


def _residue_tokens(text: str) -> list[str]:
  text = text.strip()
  if _RESIDUE_SEPARATORS.search(text):
    return [t for t in _RESIDUE_SEPARATORS.split(text) if t]
  return list(text)


def _label_tokens(kind: str, text: str) -> list[str]:
  """The class names (or numbers) written in one label cell."""
  if kind.startswith('residue_'):
    return _residue_tokens(text)
  if kind == 'global_multilabel':
    return [t.strip() for t in text.split(MULTILABEL_SEPARATOR) if t.strip()]
  return [text.strip()] if text.strip() else []


def infer_classes(kind: str, raw_labels: Iterable[str]) -> tuple:
  """The class vocabulary of categorical or multi-label label texts.

  Integer class names sort numerically ('2' before '10'), others as strings.

  Args:
    kind: a categorical or multi-label kind.
    raw_labels: label texts (all splits, so no class is unknown later).

  Returns:
    The sorted class names.
  """
  names = set()
  for text in raw_labels:
    names.update(_label_tokens(kind, str(text)))
  if names and all(re.fullmatch(r'-?\d+', n) for n in names):
    return tuple(sorted(names, key=int))
  return tuple(sorted(names))


def _parse_number(token: str, where: str) -> float:
  try:
    value = float(token)
  except ValueError:
    raise ValueError(f'{where}: {token!r} is not a number.') from None
  if not np.isfinite(value):
    raise ValueError(f'{where}: {token!r} is not a finite number.')
  return value


def _parse_tokens(spec: TaskSpec, tokens: list[str], where: str,
                  index: dict) -> np.ndarray:
  if spec.output_type == 'numeric':
    return np.array([_parse_number(t, where) for t in tokens], np.float32)
  unknown = sorted(set(tokens) - index.keys())
  if unknown:
    raise ValueError(f'{where}: {unknown[:5]} not among the task classes '
                     f'{list(spec.classes)[:10]}'
                     f'{"..." if len(spec.classes) > 10 else ""}.')
  classes = np.array([index[t] for t in tokens], np.int32)
  return classes.astype(np.float32) if spec.output_type == 'binary' else classes


def parse_labels(spec: TaskSpec, seqs: Sequence[str],
                 raw_labels: Sequence[str], source: str = 'labels',
                 lines: Optional[Sequence[int]] = None) -> list:
  """Checks and parses label texts.

  Args:
    spec: the task.
    seqs: [N] amino-acid sequences the labels belong to.
    raw_labels: [N] label texts (see the module docstring).
    source: how to name the data in errors (e.g. the CSV path).
    lines: [N] each record's line in `source`, for errors; None names
      records by their position instead.

  Returns:
    N parsed labels (see the module docstring), as numpy values.

  Raises:
    ValueError: naming the record and the problem: an empty label (but for
      multi-label tasks, where it means no class), not 0/1, not a number, an
      unknown class, or per-residue labels whose count differs from the
      sequence length.
  """
  if len(seqs) != len(raw_labels):
    raise ValueError(f'{source}: {len(seqs)} sequences but {len(raw_labels)} '
                     'labels.')
  index = {name: i for i, name in enumerate(spec.classes)}
  parsed = []
  for i, (seq, text) in enumerate(zip(seqs, raw_labels)):
    where = (f'{source}:{lines[i]}' if lines is not None
             else f'{source}, record {i + 1}') + f' ({spec.kind})'
    tokens = _label_tokens(spec.kind, str(text))
    if not tokens and spec.kind != 'global_multilabel':
      raise ValueError(f'{where}: empty label.')
    if spec.output_type == 'binary':
      # '1.0' and ' 1' are 1; anything else that is not 0 or 1 is an error.
      tokens = [{'0': '0', '1': '1', '0.0': '0', '1.0': '1'}.get(t, t)
                for t in tokens]
    values = _parse_tokens(spec, tokens, where, index)
    if spec.per_residue:
      if len(values) != len(seq):
        raise ValueError(f'{where}: {len(values)} per-residue labels for a '
                         f'sequence of {len(seq)} residues.')
      parsed.append(values)
    elif spec.output_type == 'multilabel':
      multi_hot = np.zeros(len(spec.classes), np.float32)
      multi_hot[values] = 1.0
      parsed.append(multi_hot)
    else:
      parsed.append(values[0])
  return parsed


def standardized(spec: TaskSpec, parsed: Sequence) -> TaskSpec:
  """A numeric spec scaled to the mean and standard deviation of `parsed`."""
  if spec.output_type != 'numeric':
    return spec
  values = np.concatenate([np.ravel(v) for v in parsed]).astype(np.float64)
  std = float(values.std())
  return spec._replace(target_mean=float(values.mean()),
                       target_std=std if std > 0 else 1.0)


class Targets(NamedTuple):
  """Labels as the loss reads them.

  Attributes:
    values: global [N] (float32; int32 categorical) or [N, K] float32
      (multi-label); per-residue [N, L] aligned with the tokens.
    weights: float32 [N] or [N, L]: 1 where a label counts, else 0.
  """
  values: np.ndarray
  weights: np.ndarray


def targets(spec: TaskSpec, parsed: Sequence, seq_len: int) -> Targets:
  """Stacks parsed labels; numeric ones standardised with the spec's scale.

  Args:
    spec: the task.
    parsed: N labels from `parse_labels`.
    seq_len: L, the tokenized length, <START> and <END> included (only used
      by per-residue tasks).

  Returns:
    The Targets.
  """
  dtype = np.int32 if spec.output_type == 'categorical' else np.float32
  scale = lambda v: (v - spec.target_mean) / spec.target_std
  if not spec.per_residue:
    values = np.asarray(parsed, dtype=dtype)
    if spec.output_type == 'numeric':
      values = scale(values).astype(np.float32)
    return Targets(values, np.ones(len(parsed), np.float32))
  values = np.zeros((len(parsed), seq_len), dtype)
  weights = np.zeros((len(parsed), seq_len), np.float32)
  for row, labels in enumerate(parsed):
    # Residue i is token i + 1 (after <START>); the last token position that
    # can hold a residue is seq_len - 1 (the <END> of a fitting sequence or
    # the last residue of a cropped one).
    count = min(len(labels), seq_len - 1)
    values[row, 1:count + 1] = labels[:count]
    weights[row, 1:count + 1] = 1.0
  if spec.output_type == 'numeric':
    values = np.where(weights > 0, scale(values), 0.0).astype(np.float32)
  return Targets(values, weights)


def predictions(spec: TaskSpec, logits: jax.Array) -> jax.Array:
  """The head's logits as predictions (jax; works under jit).

  Args:
    spec: the task.
    logits: [..., K] head outputs (K = spec.num_outputs).

  Returns:
    binary: [...] probability of 1; categorical: [..., K] class
    probabilities; numeric: [...] values in label units; multi-label:
    [..., K] probability of each class.
  """
  logits = logits.astype(jnp.float32)
  if spec.output_type == 'binary':
    return jax.nn.sigmoid(logits[..., 0])
  if spec.output_type == 'categorical':
    return jax.nn.softmax(logits, axis=-1)
  if spec.output_type == 'numeric':
    return logits[..., 0] * spec.target_std + spec.target_mean
  return jax.nn.sigmoid(logits)


def residue_slice(length: int) -> slice:
  """Token positions of a sequence's residues (the <START> offset)."""
  return slice(1, length + 1)


def fits(seqs: Sequence[str], seq_len: int) -> np.ndarray:
  """bool [N]: whether each sequence, <START> and <END> included, fits."""
  return tokenization.tokenized_lengths(seqs) <= seq_len
