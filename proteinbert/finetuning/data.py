"""Labelled sequence CSVs and their train / valid / test splits.

A task NAME in a directory is any of `NAME.train.csv`, `NAME.valid.csv`,
`NAME.test.csv` (the layout of the ProteinBERT benchmarks), each with a `seq`
and a `label` column (other columns are ignored, order is free). Sequences
follow `proteinbert.residues` (upper-cased; anything but letters and a final
'*' is an error naming the line).
"""

import csv
import glob
import os
import re
from typing import NamedTuple, Optional

import numpy as np

from proteinbert import residues

SPLITS = ('train', 'valid', 'test')


class LabelledData(NamedTuple):
  """Sequences and their label texts.

  Attributes:
    seqs: [N] amino-acid sequences (upper case, `residues.normalize`).
    labels: [N] label texts (parsed by `tasks.parse_labels`).
    source: the file they came from, for messages.
    lines: [N] the line of the file each record ends on (its only line
      unless a quoted field spans lines), for messages; a subset keeps its
      records' lines.
  """
  seqs: list
  labels: list
  source: str
  lines: list

  def subset(self, indices) -> 'LabelledData':
    return LabelledData(*([field[i] for i in indices]
                          for field in (self.seqs, self.labels)),
                        self.source, [self.lines[i] for i in indices])


class Splits(NamedTuple):
  """The data of one task.

  Attributes:
    train: what training learns from.
    valid: early stopping and learning-rate reduction watch this.
    test: held-out data, if the directory has it.
    notes: how the splits were formed (e.g. 'valid carved from train').
  """
  train: LabelledData
  valid: LabelledData
  test: Optional[LabelledData]
  notes: str


def read_csv(path: str) -> LabelledData:
  """Reads a `seq,label` CSV, checking every record.

  Raises:
    ValueError: unreadable file, no `seq` or `label` column or a repeated
      column name, no records, a record with more fields than the header or
      without a label, an empty sequence or one that breaks
      `residues.normalize`'s rule (file, line and character named).
  """
  try:
    # utf-8-sig: spreadsheets start their CSVs with a byte order mark.
    with open(path, newline='', encoding='utf-8-sig') as f:
      reader = csv.DictReader(f)
      columns = reader.fieldnames or []
      missing = [c for c in ('seq', 'label') if c not in columns]
      if missing:
        raise ValueError(f'{path}: no {missing} column(s); found {columns}. '
                         'Expected a header with `seq` and `label`.')
      repeated = sorted({c for c in columns if columns.count(c) > 1})
      if repeated:
        raise ValueError(f'{path}:{reader.line_num}: column(s) {repeated} '
                         'appear more than once in the header.')
      rows = []
      for row in reader:
        if None in row:  # DictReader's key for fields beyond the header's.
          raise ValueError(f'{path}:{reader.line_num}: '
                           f'{len(columns) + len(row[None])} fields, but the '
                           f'header has {len(columns)}.')
        rows.append((row['seq'], row['label'], reader.line_num))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f'{path}: cannot read as CSV: {e}') from e
  if not rows:
    raise ValueError(f'{path}: no records.')
  seqs = []
  for seq, label, line in rows:
    seqs.append(residues.check(seq or '', f'{path}:{line}'))
    if not seqs[-1]:
      raise ValueError(f'{path}:{line}: empty sequence.')
    if label is None:
      raise ValueError(f'{path}:{line}: no label.')
  _, labels, lines = zip(*rows)
  return LabelledData(seqs, list(labels), path, list(lines))


def split_path(directory: str, name: str, split: str) -> str:
  return os.path.join(directory, f'{name}.{split}.csv')


def list_tasks(directory: str) -> list[str]:
  """Names of the tasks with at least one split file in `directory`."""
  pattern = re.compile(r'(.+)\.(' + '|'.join(SPLITS) + r')\.csv$')
  names = set()
  for path in glob.glob(os.path.join(directory, '*.csv')):
    match = pattern.match(os.path.basename(path))
    if match:
      names.add(match.group(1))
  return sorted(names)


def carve(data: LabelledData, fraction: float,
          seed: int) -> tuple[LabelledData, LabelledData]:
  """Randomly splits off `fraction` of the records (at least one each side).

  Both parts keep their records' lines in the file, so messages about them
  name the user's file and line.
  """
  num = len(data.seqs)
  if num < 2:
    raise ValueError(f'{data.source}: {num} record(s) cannot be split into '
                     'train and valid.')
  order = np.random.default_rng(seed).permutation(num)
  num_valid = min(max(int(round(fraction * num)), 1), num - 1)
  return (data.subset(np.sort(order[num_valid:])),
          data.subset(np.sort(order[:num_valid])))


def load_splits(directory: str, name: str, valid_fraction: float = 0.1,
                seed: int = 0) -> Splits:
  """The task's splits; a missing valid split is carved from train.

  Without a train split, the valid split is the training pool and a
  validation part is carved from it (scores are then not comparable to
  those of models trained on a train split); the notes say so.

  Args:
    directory: where the CSVs are.
    name: the task's file prefix.
    valid_fraction: share of the pool carved off as valid, when carving.
    seed: seeds the carving.

  Returns:
    The Splits.

  Raises:
    ValueError: neither a train nor a valid split, or a bad CSV.
  """
  found = {split: read_csv(split_path(directory, name, split))
           for split in SPLITS
           if os.path.exists(split_path(directory, name, split))}
  test = found.get('test')
  if 'train' in found and 'valid' in found:
    return Splits(found['train'], found['valid'], test, '')
  pool = found.get('train') or found.get('valid')
  if pool is None:
    raise ValueError(f'No {name}.train.csv or {name}.valid.csv in '
                     f'{directory}.')
  train, valid = carve(pool, valid_fraction, seed)
  split = 'train' if 'train' in found else 'valid'
  notes = (f'valid carved from {name}.{split}.csv '
           f'({len(valid.seqs)} of {len(pool.seqs)} records)')
  if split == 'valid':
    notes += '; no train split: trained on the rest of the valid split'
  return Splits(train, valid, test, notes)
