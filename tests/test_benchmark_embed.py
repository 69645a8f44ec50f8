"""experiments.benchmark_embed: sampling, seq_len arithmetic, a tiny run."""

import gzip
import os

import pytest

from experiments import benchmark_embed
from experiments import original_wheel
from tests import helpers
from tests import original_package

SEQS = ['MKTAYIAKQR', 'M' * 2000, 'ACDEFGHIKLMNPQRSTVWY' * 3, 'MKV']


def test_sample_is_seeded_and_without_replacement(tmp_path):
  path = tmp_path / 'proteins.fasta.gz'
  with gzip.open(path, 'wt') as f:
    f.writelines(f'>sp|P{i}|\nMK{"A" * i}\n' for i in range(20))
  sample = benchmark_embed.sample_proteins(str(path), 8, seed=3)
  assert sample == benchmark_embed.sample_proteins(str(path), 8, seed=3)
  assert len(set(sample)) == 8
  assert sample != benchmark_embed.sample_proteins(str(path), 8, seed=4)
  assert len(benchmark_embed.sample_proteins(str(path), 100, seed=3)) == 20


def test_their_seq_len_and_cropped_residues():
  assert benchmark_embed.their_seq_len('512', SEQS) == 512
  # The longest protein (2,000 residues) does not fit: capped at 1,024.
  assert benchmark_embed.their_seq_len('fit', SEQS) == 1024
  assert benchmark_embed.their_seq_len('fit', SEQS[2:]) == 62
  assert benchmark_embed.embedded_residues(SEQS, 1024) == 10 + 1022 + 60 + 3
  assert benchmark_embed.embedded_residues(SEQS, 12) == 10 + 10 + 10 + 3


def test_tiny_run_ours_against_the_original():
  pytest.importorskip('tensorflow', reason='needs the [parity] extra')
  wheel = os.path.join(original_package.REPO_ROOT,
                       original_wheel.DEFAULT_WHEEL)
  if not os.path.exists(wheel):
    pytest.skip(f'needs the original wheel at {wheel}')
  result = benchmark_embed.run(
      [SEQS[0], SEQS[2], SEQS[3]], helpers.tiny_model_config(num_blocks=1),
      their_seq_lens=[16], rounds=1, max_tokens=256, their_batch_size=2,
      their_proteins_per_call=2, wheel=wheel, seed=0)
  names = [v['name'] for v in result['variants']]
  assert names == ['ours', 'ours, mask_padding', 'original, seq_len 16']
  ours, _, theirs = result['variants']
  assert (ours['cropped'], theirs['cropped']) == (0, 1)
  assert ours['residues_per_second'] == pytest.approx(
      73 * ours['proteins_per_second'] / 3)
  assert theirs['residues_per_second'] == pytest.approx(
      27 * theirs['proteins_per_second'] / 3)
  assert result['ratios']['ours / original, seq_len 16'] == pytest.approx(
      ours['proteins_per_second'] / theirs['proteins_per_second'])
  assert all(v['peak_rss_mib'] > 0 for v in result['variants'])
  assert 'original, seq_len 16' in benchmark_embed.format_table(result)
