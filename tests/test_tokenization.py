"""Tests for proteinbert.tokenization."""

import numpy as np
import pytest

from proteinbert import tokenization as tok


def test_vocabulary_is_the_originals():
  assert tok.VOCAB_SIZE == 26
  assert ''.join(tok.VOCAB[:22]) == 'ACDEFGHIKLMNPQRSTUVWXY'
  assert (tok.OTHER, tok.START, tok.END, tok.PAD) == (22, 23, 24, 25)


def test_adds_start_end_and_pads():
  tokens = tok.tokenize(['ACD', 'Y'], seq_len=6)
  np.testing.assert_array_equal(
      tokens, [[23, 0, 1, 2, 24, 25], [23, 21, 24, 25, 25, 25]])
  assert tokens.dtype == np.int32


def test_pads_to_longest_without_seq_len():
  assert tok.tokenize(['ACD', 'ACDEFG']).shape == (2, 8)


def test_crops_at_offsets():
  seq = 'ACDEFGHIKL'  # Tokenized: <START> A..L <END>, 12 tokens.
  np.testing.assert_array_equal(tok.tokenize([seq], 4), [[23, 0, 1, 2]])
  np.testing.assert_array_equal(
      tok.tokenize([seq], 4, crop_offsets=np.array([8])), [[7, 8, 9, 24]])
  np.testing.assert_array_equal(
      tok.tokenize([seq], 4, crop_offsets=np.array([10])), [[9, 24, 25, 25]])


def test_lowercase_and_unknown_letters_are_other_by_default():
  np.testing.assert_array_equal(
      tok.tokenize(['aB*'], 5), [[23, tok.OTHER, tok.OTHER, tok.OTHER, 24]])


def test_normalize_case_maps_lowercase_letters():
  np.testing.assert_array_equal(
      tok.tokenize(['acB'], 5, normalize_case=True),
      [[23, 0, 1, tok.OTHER, 24]])


def test_bytes_and_str_agree_including_non_ascii():
  seqs = ['MK\u00e9V', 'ACD']
  np.testing.assert_array_equal(
      tok.tokenize(seqs, 8), tok.tokenize([s.encode() for s in seqs], 8))
  # A non-ASCII character is one <OTHER>, as the original counts characters.
  np.testing.assert_array_equal(tok.tokenize(['K\u00e9'], 4),
                                [[23, 8, tok.OTHER, 24]])
  np.testing.assert_array_equal(tok.tokenized_lengths(seqs), [6, 5])


def test_single_sequence_is_a_batch_of_one():
  np.testing.assert_array_equal(tok.tokenize('ACD', 5), tok.tokenize(['ACD'], 5))


def test_matches_per_sequence_reference_on_random_batch():
  rng = np.random.default_rng(0)
  alphabet = np.array(list('ACDEFGHIKLMNPQRSTUVWXYBZxo'))
  seqs = [''.join(rng.choice(alphabet, rng.integers(0, 60))) for _ in range(50)]
  offsets = rng.integers(0, 20, len(seqs))
  tokens = tok.tokenize(seqs, 32, crop_offsets=offsets)
  index = {a: i for i, a in enumerate(tok.AMINO_ACIDS)}
  for row, seq, offset in zip(tokens, seqs, offsets):
    full = [tok.START] + [index.get(c, tok.OTHER) for c in seq] + [tok.END]
    window = full[offset:offset + 32]
    np.testing.assert_array_equal(row, window + [tok.PAD] * (32 - len(window)))


def test_detokenize():
  assert tok.detokenize(tok.tokenize(['ACDB', 'K'], 8)) == ['ACD?', 'K']


@pytest.mark.parametrize('bad', [[1, 2], ['ACD', None], [3.5]])
def test_non_strings_are_rejected_with_their_position(bad):
  with pytest.raises(TypeError, match='Sequence'):
    tok.tokenize(bad, 8)


def test_bad_arguments():
  with pytest.raises(TypeError):
    tok.tokenize(42, 8)
  with pytest.raises(ValueError, match='seq_len'):
    tok.tokenize(['A'], 0)
  with pytest.raises(ValueError, match='crop_offsets'):
    tok.tokenize(['A'], 4, crop_offsets=np.array([0, 1]))
  with pytest.raises(ValueError, match='non-negative'):
    tok.tokenize(['A'], 4, crop_offsets=np.array([-1]))
