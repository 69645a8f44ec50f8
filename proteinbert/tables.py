"""Result tables as markdown (to read) and CSV (to load), written atomically."""

import csv
import math
from typing import Optional, Sequence

from proteinbert import io_utils


def _columns(rows: Sequence[dict]) -> list:
  """Keys in first-seen order over all rows."""
  return list(dict.fromkeys(key for row in rows for key in row))


def _cell(value) -> str:
  if isinstance(value, float):
    return 'nan' if math.isnan(value) else f'{value:.4f}'
  return '' if value is None else str(value)


def markdown(rows: Sequence[dict], columns: Optional[Sequence[str]] = None
             ) -> str:
  """A markdown table of `rows` (missing cells empty, floats to 4 places)."""
  columns = list(columns or _columns(rows))
  lines = ['| ' + ' | '.join(columns) + ' |',
           '|' + '---|' * len(columns)]
  lines += ['| ' + ' | '.join(_cell(row.get(c)) for c in columns) + ' |'
            for row in rows]
  return '\n'.join(lines) + '\n'


def matrix_markdown(matrix, labels: Sequence[str]) -> str:
  """A confusion matrix as markdown: rows true, columns predicted."""
  rows = [dict({'true \\ predicted': label},
               **{str(c): int(v) for c, v in zip(labels, line)})
          for label, line in zip(labels, matrix)]
  return markdown(rows)


def write_csv(path: str, rows: Sequence[dict],
              columns: Optional[Sequence[str]] = None) -> None:
  """Writes `rows` as CSV (keys outside `columns` left out) atomically."""
  columns = list(columns or _columns(rows))
  with io_utils.atomic_path(path) as tmp, open(tmp, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def write_text(path: str, text: str) -> None:
  """Writes `text` (a markdown table, JSON, ...) to `path` atomically."""
  with io_utils.atomic_path(path) as tmp, open(tmp, 'w') as f:
    f.write(text)
