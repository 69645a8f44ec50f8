"""Zero-shot variant scoring: parsing, bad inputs, strategies by hand, CLI."""

import csv
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from proteinbert import inference
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tokenization
from proteinbert import variants
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = helpers.tiny_model_config(num_blocks=1, mask_padding=True)
PARAMS = model_lib.init_params(CONFIG, jax.random.PRNGKey(0))
MODEL = inference.PretrainedModel(PARAMS, CONFIG)
WILDTYPES = {'P1': 'MKTAYIAKQR', 'P2': 'ACDEFGHIKLMNPQRSTVWY'}
# Round-off of float32 probabilities, predicted at other padded lengths.
ATOL = 1e-4
# Small batches compile and run fastest on the tiny model.
MAX_TOKENS = 256


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def _fasta(tmp_path, wildtypes=WILDTYPES):
  return _write(tmp_path, 'wt.fasta', ''.join(
      f'>{i} description\n{s.lower() if i == "P2" else s}\n'
      for i, s in wildtypes.items()))


def _csv(tmp_path, header, rows, name='in.csv'):
  return _write(tmp_path, name, '\n'.join([header, *rows]) + '\n')


def test_parse_mutation_sorts_and_prints():
  parsed = variants.parse_mutation('K8A:M1C', WILDTYPES['P1'], 'here')
  assert parsed == (variants.Substitution('M', 1, 'C'),
                    variants.Substitution('K', 8, 'A'))
  assert variants.Variant('P1', parsed).mutation == 'M1C:K8A'


def test_substitutions_between():
  assert variants.substitutions_between('MKTAY', 'MRTAW', 'here') == (
      variants.Substitution('K', 2, 'R'), variants.Substitution('Y', 5, 'W'))
  assert variants.substitutions_between('MKTAY', 'MKTAY', 'here') == ()


@pytest.mark.parametrize('mutation, message', [
    ('M1', 'not a substitution'),
    ('m1a', 'not a substitution'),
    ('M1B', 'not a substitution'),
    ('M1A;K2A', 'not a substitution'),
    ('M0A', r'position 0 is outside the wild type \(1..10\)'),
    ('R11A', r'position 11 is outside the wild type \(1..10\)'),
    ('A1V', 'the wild type has M at 1, not A'),
    ('M1A:M1C', r'changes position\(s\) \[1\] more than once'),
])
def test_bad_mutations_name_file_line_and_expectation(tmp_path, mutation,
                                                      message):
  path = _csv(tmp_path, 'protein_id,mutation',
              ['P1,K2A', f'P1,{mutation}'])
  with pytest.raises(ValueError, match=f'in.csv:3 \\(P1\\): .*{message}'):
    variants.read_variants(path, _fasta(tmp_path))


def test_unknown_protein_id(tmp_path):
  path = _csv(tmp_path, 'protein_id,mutation', ['P3,M1A'])
  with pytest.raises(ValueError, match=r"in.csv:2: protein_id 'P3' is not in "
                     r".*wt.fasta \(IDs: \['P1', 'P2'\]\)"):
    variants.read_variants(path, _fasta(tmp_path))


def test_sequences_of_another_length_name_the_row(tmp_path):
  path = _csv(tmp_path, 'seq,label', ['MKTAYIAKQA,1', 'MKTAYIAKQ,2'])
  fasta = _fasta(tmp_path)
  with pytest.raises(ValueError, match=r'in.csv:3 \(P1\): the sequence has 9 '
                     'residues, the wild type 10'):
    variants.read_variants(path, fasta, 'P1')
  with pytest.raises(ValueError, match='no protein_id column.*has 2 records'):
    variants.read_variants(path, fasta)
  with pytest.raises(ValueError, match="no record 'P9'"):
    variants.read_variants(path, fasta, 'P9')


@pytest.mark.parametrize('header', ['protein_id,label', 'seq,mutation'])
def test_needs_one_of_mutation_and_seq(tmp_path, header):
  path = _csv(tmp_path, header, ['P1,M1A'])
  with pytest.raises(ValueError, match='exactly one of them'):
    variants.read_variants(path, _fasta(tmp_path))


def test_sequences_against_the_only_record(tmp_path):
  fasta = _fasta(tmp_path, {'P2': WILDTYPES['P2']})
  path = _csv(tmp_path, 'seq,label', [f'{WILDTYPES["P2"]},0',
                                      'ACDEFGHIKLMNPQRSTVWA,1'])
  rows, found, wildtypes = variants.read_variants(path, fasta)
  assert [r['label'] for r in rows] == ['0', '1']
  assert [v.mutation for v in found] == ['', 'Y20A']
  assert wildtypes == {'P2': WILDTYPES['P2']}


def _one_call_probs(tokens):
  return MODEL.predict(tokens, with_hidden=False).token_probs


def _variant(protein_id, mutation):
  return variants.Variant(protein_id, variants.parse_mutation(
      mutation, WILDTYPES[protein_id], 'test'))


def _tokens(seq):
  return tokenization.tokenize([seq])


def test_wt_marginals_by_hand():
  found = [_variant('P1', m) for m in ('K2A', 'M1C:Q9W')]
  scores = variants.score(MODEL, found, WILDTYPES, 'wt-marginals',
                           MAX_TOKENS)
  log_p = np.log(_one_call_probs(_tokens(WILDTYPES['P1']))[0])
  index = tokenization.VOCAB.index
  expected = [log_p[2, index('A')] - log_p[2, index('K')],
              log_p[1, index('C')] - log_p[1, index('M')]
              + log_p[9, index('W')] - log_p[9, index('Q')]]
  np.testing.assert_allclose(scores, expected, atol=ATOL)


def _corrupted_probs(seq):
  """[n, V]: row i from the copy with residue i shown as <OTHER>."""
  tokens = np.repeat(_tokens(seq), len(seq), axis=0)
  positions = np.arange(len(seq)) + 1
  tokens[np.arange(len(seq)), positions] = tokenization.OTHER
  return _one_call_probs(tokens)[np.arange(len(seq)), positions]


def test_masked_marginals_by_hand():
  found = [_variant('P2', m) for m in ('A1V:Y20L', 'K9R')]
  scores = variants.score(MODEL, found, WILDTYPES, 'masked-marginals',
                           MAX_TOKENS)
  p = _corrupted_probs(WILDTYPES['P2'])
  index = tokenization.VOCAB.index
  # The renormalisation over tokens other than <OTHER> cancels in a ratio.
  expected = [np.log(p[0, index('V')] / p[0, index('A')])
              + np.log(p[19, index('L')] / p[19, index('Y')]),
              np.log(p[8, index('R')] / p[8, index('K')])]
  np.testing.assert_allclose(scores, expected, atol=ATOL)


def _pseudo_log_likelihood(seq):
  p = _corrupted_probs(seq)
  own = p[np.arange(len(seq)), _tokens(seq)[0, 1:-1]]
  return np.sum(np.log(own / (1.0 - p[:, tokenization.OTHER])))


def test_pseudo_ppl_by_hand():
  found = [variants.Variant('P1', ()), _variant('P1', 'T3W:R10G')]
  scores = variants.score(MODEL, found, WILDTYPES, 'pseudo-ppl',
                           MAX_TOKENS)
  expected = (_pseudo_log_likelihood('MKWAYIAKQG')
              - _pseudo_log_likelihood(WILDTYPES['P1']))
  np.testing.assert_allclose(scores, [0.0, expected], atol=ATOL)


def _run_cli(*flags):
  return subprocess.run(
      [sys.executable, '-m', 'experiments.score_variants', *flags], cwd=ROOT,
      capture_output=True, text=True, check=False)


def test_cli_end_to_end_and_nothing_written_on_error(tmp_path):
  checkpoint = str(tmp_path / 'tiny.npz')
  params_io.save_params(checkpoint, PARAMS, CONFIG)
  fasta = _fasta(tmp_path)
  mutations = _csv(tmp_path, 'protein_id,mutation,label',
                   ['P1,K2A,0.5', 'P2,Y20L:A1V,-1'])
  output = tmp_path / 'scores.csv'
  strategies = 'wt-marginals,masked-marginals,pseudo-ppl'
  done = _run_cli(f'--checkpoint={checkpoint}', f'--fasta={fasta}',
                  f'--mutations={mutations}', f'--output={output}',
                  f'--strategies={strategies}', f'--max_tokens={MAX_TOKENS}')
  assert done.returncode == 0, done.stderr
  with open(output, newline='') as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ['protein_id', 'mutation', 'label',
                           *strategies.split(',')]
  assert [r['mutation'] for r in rows] == ['K2A', 'A1V:Y20L']
  _, found, wildtypes = variants.read_variants(mutations, fasta)
  for strategy in strategies.split(','):
    np.testing.assert_allclose(
        [float(r[strategy]) for r in rows],
        variants.score(MODEL, found, wildtypes, strategy, MAX_TOKENS),
        atol=ATOL)

  bad = _csv(tmp_path, 'protein_id,mutation', ['P1,K2A', 'P1,Q2A'],
             name='bad.csv')
  failed = _run_cli(f'--checkpoint={checkpoint}', f'--fasta={fasta}',
                    f'--mutations={bad}', f'--output={tmp_path / "new.csv"}')
  assert failed.returncode != 0
  assert 'bad.csv:3 (P1): ' in failed.stderr
  assert not (tmp_path / 'new.csv').exists()
  assert sorted(os.listdir(tmp_path)) == sorted(
      ['bad.csv', 'in.csv', 'scores.csv', 'tiny.npz', 'wt.fasta'])
