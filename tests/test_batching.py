"""Length buckets and the batched runs: coverage, padding cut, shapes."""

import numpy as np

from proteinbert import batching
from proteinbert import tokenization


def _random_seqs(rng, lengths):
  return [''.join(rng.choice(list('ACDEFGHIKLMNPQRSTVWY'), n)) for n in lengths]


def test_length_buckets_cover_every_sequence_exactly_once():
  rng = np.random.default_rng(0)
  lengths = np.concatenate([rng.integers(1, 600, 50), [510, 511, 1022, 5000]])
  seqs = _random_seqs(rng, lengths)
  buckets = batching.length_buckets(seqs, 512, 32)
  indices = np.concatenate([b.indices for b in buckets])
  assert sorted(indices) == list(range(len(seqs)))
  # 510 residues + <START> + <END> fit 512; 511 do not.
  assert [(b.seq_len, b.batch_size) for b in buckets] == [
      (512, 32), (1024, 16), (8192, 2)]
  for bucket in buckets:
    tokenized = lengths[bucket.indices] + 2
    assert np.all(tokenized <= bucket.seq_len)
    assert np.all(tokenized > bucket.seq_len // 2) or bucket.seq_len == 512
  assert batching.length_buckets([], 512, 32) == []


def test_batch_size_never_below_one():
  seqs = ['A' * 3000]
  assert batching.length_buckets(seqs, 64, 2)[0][:2] == (4096, 1)


def test_run_batches_pads_the_last_batch_and_cuts_the_padding():
  shapes = []

  def fn(tokens, annotations):
    shapes.append((tokens.shape, annotations.shape))
    return dict(tokens=tokens, annotations=annotations, nothing=None)

  tokens = np.arange(7 * 3, dtype=np.int32).reshape(7, 3)
  annotations = np.ones((7, 2), np.float32)
  parts = list(batching.run_batches(fn, [tokens, annotations], 3,
                                    [-1, 0.0]))
  assert shapes == [((3, 3), (3, 2))] * 3
  assert [len(p['tokens']) for p in parts] == [3, 3, 1]
  np.testing.assert_array_equal(
      np.concatenate([p['tokens'] for p in parts]), tokens)
  np.testing.assert_array_equal(
      np.concatenate([p['annotations'] for p in parts]), annotations)
  assert all(p['nothing'] is None for p in parts)


def test_run_bucketed_yields_each_sequence_once_at_its_bucket_length():
  rng = np.random.default_rng(1)
  seqs = _random_seqs(rng, [3, 40, 5, 100, 7, 1]) + ['acd']
  shapes = []

  def fn(tokens):
    shapes.append(tokens.shape)
    return tokens, (tokens != tokenization.PAD).sum(-1)

  seen = {}
  for index, (tokens, count) in batching.run_bucketed(
      fn, seqs, start_seq_len=16, start_batch_size=4):
    assert index not in seen
    seen[index] = tokens
    assert count == len(seqs[index]) + tokenization.ADDED_TOKENS_PER_SEQ
  assert sorted(seen) == list(range(len(seqs)))
  # Five sequences fit 16 tokens (batches of 4, the second padded), one 64
  # and one 128 (batch sizes 1).
  assert shapes == [(4, 16), (4, 16), (1, 64), (1, 128)]
  np.testing.assert_array_equal(
      seen[6], tokenization.tokenize(['acd'], 16)[0])
  assert list(batching.run_bucketed(fn, [], 16, 4)) == []
