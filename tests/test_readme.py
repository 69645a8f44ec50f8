"""README's Quick start and CI agree."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quick_start_commands():
  with open(os.path.join(ROOT, 'README.md')) as f:
    readme = f.read()
  section = readme.split('## Quick start', 1)[1].split('\n## ', 1)[0]
  block = re.search(r'```(?:bash|sh)?\n(.*?)```', section, re.S).group(1)
  return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands():
  assert len(_quick_start_commands()) == 2


def test_ci_runs_the_readme_test_command_verbatim():
  with open(os.path.join(ROOT, '.ci', 'run')) as f:
    ci_lines = [line.strip() for line in f]
  assert _quick_start_commands()[1].strip() in ci_lines
