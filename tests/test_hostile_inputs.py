"""Flags the binaries refuse before any work starts (issue 14)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *flags):
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=ROOT,
                        capture_output=True, text=True, check=False,
                        env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_embed_flags(tmp_path):
  fasta = tmp_path / 'in.fasta'
  fasta.write_text('>P1\nMKV\n')
  common = [f'--fasta={fasta}', '--checkpoint=swissprot-small',
            f'--output={tmp_path / "out.h5"}']
  for flag, message in (('--local_layers=-1,last', '--local_layers: expected '
                         'integers separated by commas'),
                        ('--max_tokens=-5', '-5 is not a positive integer')):
    done = _run('experiments.embed', *common, flag)
    assert done.returncode != 0 and message in done.stderr, done.stderr
  assert sorted(os.listdir(tmp_path)) == ['in.fasta']


def test_build_dataset_never_overwrites_an_input(tmp_path):
  fasta = tmp_path / 'in.fasta'
  fasta.write_text('>P1\nMKV\n')
  done = _run('experiments.build_dataset', f'--fasta={fasta}',
              f'--output={fasta}', '--overwrite')
  assert done.returncode != 0
  assert f'--output is the input --fasta ({fasta})' in done.stderr
  assert fasta.read_text() == '>P1\nMKV\n'
