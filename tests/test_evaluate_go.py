"""End-to-end test of experiments/evaluate_go.py on tiny files."""

import json
import math
import os
import subprocess
import sys

import pytest

from tests import test_go_benchmark
from tests import test_go_eval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*flags):
  return subprocess.run([sys.executable, '-m', 'experiments.evaluate_go',
                         *flags], cwd=ROOT, capture_output=True, text=True,
                        check=False)


def test_report_and_table(tmp_path):
  paths = test_go_benchmark.write_inputs(tmp_path)
  output = tmp_path / 'report.json'
  done = _run(f'--predictions={paths["predictions"]}',
              f'--truth={paths["truth"]}', f'--go_obo={paths["obo"]}',
              f'--train_annotations={paths["train"]}',
              f'--diamond={tmp_path / "no-diamond"}', f'--output={output}')
  assert done.returncode == 0, done.stderr
  with open(output) as f:
    report = json.load(f)
  mf = report['methods']['model']['namespaces']['molecular_function']
  assert mf['fmax'] == pytest.approx(20 / 27, rel=1e-12)
  assert mf['smin'] == pytest.approx(
      math.sqrt(2) * test_go_eval.IA[test_go_eval.B] / 3, rel=1e-12)
  assert report['methods']['naive']['namespaces']['biological_process']
  assert 'not installed' in report['methods']['homology']['skipped']
  lines = done.stdout.splitlines()
  assert lines[0].split()[:4] == ['method', 'namespace', 'proteins', 'Fmax']
  assert [line.split()[:2] for line in lines[1:]] == [
      ['model', 'molecular_function'], ['model', 'biological_process'],
      ['naive', 'molecular_function'], ['naive', 'biological_process'],
      ['homology', 'skipped:']]
  assert 'Homology baseline skipped' in done.stderr


def test_bad_predictions_fail_with_the_line(tmp_path):
  paths = test_go_benchmark.write_inputs(tmp_path)
  bad = tmp_path / 'bad.tsv'
  bad.write_text('protein\tgo_id\tscore\nQ0\tGO:0000001\t2\n')
  done = _run(f'--predictions={bad}', f'--truth={paths["truth"]}',
              f'--go_obo={paths["obo"]}')
  assert done.returncode != 0
  assert 'bad.tsv:2: score' in done.stderr
