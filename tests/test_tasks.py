"""Task specs, label parsing and validation, per-residue alignment."""

import numpy as np
import pytest

from proteinbert import tokenization
from proteinbert.finetuning import tasks


def test_make_spec_fixes_binary_and_numeric_classes():
  assert tasks.make_spec('global_binary').classes == ('0', '1')
  assert tasks.make_spec('residue_numeric', ('a',)).classes == ()
  assert tasks.make_spec('global_categorical', 'abc').num_outputs == 3
  assert tasks.make_spec('residue_binary').per_residue
  assert tasks.make_spec('global_multilabel', ('x',)).output_type == (
      'multilabel')


@pytest.mark.parametrize('kind,classes,message', [
    ('residue_multilabel', (), 'Unknown task kind'),
    ('global_categorical', ('a',), 'at least 2'),
    ('global_categorical', ('a', 'a'), 'repeated'),
    ('global_multilabel', (), 'at least 1'),
])
def test_make_spec_errors(kind, classes, message):
  with pytest.raises(ValueError, match=message):
    tasks.make_spec(kind, classes)


def test_infer_classes_sorts_integers_numerically():
  assert tasks.infer_classes('global_categorical', ['10', '2', '1']) == (
      '1', '2', '10')
  assert tasks.infer_classes('global_multilabel', ['b;a', '', 'c']) == (
      'a', 'b', 'c')
  assert tasks.infer_classes('residue_categorical', ['HEC', 'C,H']) == (
      'C', 'E', 'H')


def test_parse_global_labels():
  seqs = ['AAA', 'CC']
  assert tasks.parse_labels(tasks.make_spec('global_binary'), seqs,
                            ['1', '0.0']) == [1.0, 0.0]
  assert tasks.parse_labels(tasks.make_spec('global_categorical', 'abc'),
                            seqs, ['c', 'a']) == [2, 0]
  assert tasks.parse_labels(tasks.make_spec('global_numeric'), seqs,
                            ['-1.5', '2e1']) == [-1.5, 20.0]
  multi = tasks.parse_labels(tasks.make_spec('global_multilabel', 'xyz'),
                             seqs, ['z;x', ''])
  np.testing.assert_array_equal(multi, [[1, 0, 1], [0, 0, 0]])


def test_parse_residue_labels_characters_or_separated():
  spec = tasks.make_spec('residue_numeric')
  parsed = tasks.parse_labels(spec, ['ACD'], ['0.5, 1 -2'])
  np.testing.assert_allclose(parsed[0], [0.5, 1.0, -2.0])
  spec = tasks.make_spec('residue_categorical', '012')
  np.testing.assert_array_equal(
      tasks.parse_labels(spec, ['ACDE'], ['2010'])[0], [2, 0, 1, 0])


@pytest.mark.parametrize('kind,classes,label,message', [
    ('global_binary', (), '2', 'not among'),
    ('global_binary', (), 'yes', 'not among'),
    ('global_numeric', (), 'high', 'not a number'),
    ('global_numeric', (), 'nan', 'not a finite'),
    ('global_categorical', 'ab', 'c', 'not among'),
    ('residue_binary', (), '0101', '4 per-residue labels for a sequence of 3'),
    ('residue_numeric', (), '1,2', '2 per-residue labels'),
    ('residue_categorical', '012', '013', 'not among'),
])
def test_bad_labels_name_the_record(kind, classes, label, message):
  spec = tasks.make_spec(kind, classes)
  with pytest.raises(ValueError, match=message) as error:
    tasks.parse_labels(spec, ['AC', 'ACD'], ['0' * 2 if spec.per_residue
                                             else classes[:1] or '0', label],
                       source='x.csv')
  assert 'x.csv, record 2' in str(error.value)


def test_residue_targets_align_after_start_and_mask_padding_and_overflow():
  spec = tasks.make_spec('residue_categorical', '012')
  seqs = ['ACDE', 'ACDEFGHIKL']
  parsed = tasks.parse_labels(spec, seqs, ['1212', '2101210121'])
  seq_len = 8
  tokens = tokenization.tokenize(seqs, seq_len)
  values, weights = tasks.targets(spec, parsed, seq_len)
  assert values.shape == weights.shape == (2, seq_len)
  # Sequence 0: <START> A C D E <END> <PAD> <PAD>; labels sit on residues.
  assert tokens[0, 0] == tokenization.START
  np.testing.assert_array_equal(weights[0], [0, 1, 1, 1, 1, 0, 0, 0])
  np.testing.assert_array_equal(values[0, 1:5], [1, 2, 1, 2])
  np.testing.assert_array_equal(
      tokens[0, 1:5], tokenization.tokenize(['ACDE'])[0, 1:5])
  # Sequence 1 overflows: the 7 residues that fit carry labels, nothing else.
  np.testing.assert_array_equal(weights[1], [0, 1, 1, 1, 1, 1, 1, 1])
  np.testing.assert_array_equal(values[1, 1:], [2, 1, 0, 1, 2, 1, 0])


def test_numeric_targets_are_standardised_and_predictions_mapped_back():
  spec = tasks.make_spec('global_numeric')
  parsed = tasks.parse_labels(spec, ['A'] * 3, ['1', '2', '3'])
  spec = tasks.standardized(spec, parsed)
  assert spec.target_mean == pytest.approx(2.0)
  values, weights = tasks.targets(spec, parsed, 16)
  np.testing.assert_allclose(values, np.array([-1, 0, 1]) / spec.target_std,
                             rtol=1e-6)
  np.testing.assert_array_equal(weights, 1.0)
  logits = values[:, None]
  np.testing.assert_allclose(tasks.predictions(spec, logits), [1, 2, 3],
                             rtol=1e-6)


def test_predictions_shapes():
  logits = np.zeros((2, 5, 3), np.float32)
  assert tasks.predictions(tasks.make_spec('residue_binary'),
                           logits[..., :1]).shape == (2, 5)
  probs = tasks.predictions(tasks.make_spec('residue_categorical', 'abc'),
                            logits)
  np.testing.assert_allclose(probs, 1 / 3, rtol=1e-6)
  assert tasks.predictions(tasks.make_spec('global_multilabel', 'abc'),
                           logits[:, 0]).shape == (2, 3)
