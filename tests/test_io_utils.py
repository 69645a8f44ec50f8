"""Atomic writes and strict JSON."""

import json
import math

import numpy as np
import pytest

from proteinbert import io_utils


def test_json_dumps_writes_null_for_what_json_lacks():
  value = dict(auc=math.nan, history=[np.float32(0.5), (np.float64(-math.inf),
                                                      1)], name='x')
  text = io_utils.json_dumps(value, sort_keys=True)
  assert json.loads(text, parse_constant=pytest.fail) == dict(
      auc=None, history=[0.5, [None, 1]], name='x')


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
  path = tmp_path / 'out.txt'
  path.write_text('before')
  with pytest.raises(KeyboardInterrupt):
    with io_utils.atomic_path(str(path)) as tmp:
      with open(tmp, 'w') as f:
        f.write('partial')
      raise KeyboardInterrupt
  assert path.read_text() == 'before'
  assert sorted(p.name for p in tmp_path.iterdir()) == ['out.txt']
