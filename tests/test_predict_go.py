"""GO prediction: the true-path rule, selection, inputs, formats, resume, CLI.

The ontology is tests/test_go_benchmark.py's tiny GO (molecular function:
root <- a, b; c is_a a and b; d part_of a. Biological process: root <- x <-
y, and y part_of a across namespaces, which propagation ignores). The tiny
model's eight outputs are its terms but x, so y reaches the biological
process root through a term outside the vocabulary.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from proteinbert import fasta as fasta_lib
from proteinbert import go_benchmark
from proteinbert import go_eval
from proteinbert import go_prediction
from proteinbert import inference
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tokenization
from proteinbert.data import annotation_table
from proteinbert.data import ontology as ontology_lib
from tests import helpers
from tests import test_go_benchmark

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GO_IDS = ['GO:0003674', 'GO:0000001', 'GO:0000002', 'GO:0000003',
          'GO:0000004', 'GO:0008150', 'GO:0000011', 'GO:0005575']
ROOT, A, B, C, D, BP_ROOT, Y, CC_ROOT = range(len(GO_IDS))
CONFIG = helpers.tiny_model_config(num_blocks=1, mask_padding=True,
                                   num_annotations=len(GO_IDS))
PARAMS = model_lib.init_params(CONFIG, jax.random.PRNGKey(0))
RECORDS = [('sp|P1|ONE_HUMAN', 'MKTAYIAKQRQISFVKSHFSRQ'),
           ('P2', 'ACDEFGHIKLMN'), ('P3', 'mkvlaagiwy')]


@pytest.fixture(scope='module')
def obo(tmp_path_factory):
  path = tmp_path_factory.mktemp('go') / 'go.obo'
  path.write_text(test_go_benchmark.OBO)
  return str(path)


@pytest.fixture(scope='module')
def ontology(obo):
  return ontology_lib.Ontology.from_obo(obo)


@pytest.fixture(scope='module')
def predictor(ontology):
  vocabulary = go_prediction.vocabulary_from_ids(GO_IDS, ontology)
  return go_prediction.GoPredictor(
      inference.PretrainedModel(PARAMS, CONFIG, vocabulary), ontology)


def _fasta(tmp_path, records=RECORDS, name='in.fasta'):
  path = tmp_path / name
  path.write_text(''.join(f'>{i} a protein\n{s}\n' for i, s in records))
  return str(path)


def _read_tsv(path):
  """{protein: {go_id: score}} and the header of a TSV output."""
  with open(path) as f:
    header, *lines = f.read().splitlines()
  scores = {}
  for line in lines:
    protein, go_id, score, _, _ = line.split('\t')
    scores.setdefault(protein, {})[go_id] = float(score)
  return header, scores


def test_true_path_takes_the_best_descendant(ontology):
  true_path = go_prediction.TruePath(GO_IDS, ontology)
  raw = np.array([[.1, .2, .3, .25, .6, .05, .8, .4]], np.float32)
  # a takes d's score over part_of; b and a do not pass down; the
  # biological process root takes y's through x; a ignores y's part_of
  # across namespaces.
  np.testing.assert_array_equal(
      true_path(raw), np.array([[.6, .6, .3, .25, .6, .8, .8, .4]],
                               np.float32))
  assert true_path.unresolved == []
  assert true_path.num_ancestors.tolist() == [1, 2, 2, 4, 3, 1, 2, 1]


def test_true_path_leaves_unknown_terms_alone(ontology):
  # GO:0000098 is obsolete; GO:0000091 is a's alternative ID.
  true_path = go_prediction.TruePath(
      ['GO:0003674', 'GO:0000098', 'GO:0000091'], ontology)
  assert true_path.unresolved == ['GO:0000098']
  np.testing.assert_array_equal(
      true_path(np.array([.1, .9, .5], np.float32)),
      np.array([.5, .9, .5], np.float32))
  with pytest.raises(ValueError, match='are one term of the ontology'):
    go_prediction.TruePath(['GO:0000001', 'GO:0000091'], ontology)


def test_threshold_and_top_k_keep_ancestors_first(predictor):
  scores = np.array([.6, .6, .3, .25, .6, .8, .8, .4], np.float32)
  assert predictor.selected(scores, .3).tolist() == [
      BP_ROOT, Y, ROOT, A, D, CC_ROOT, B]
  assert predictor.selected(scores, .5, top_k=4).tolist() == [
      BP_ROOT, Y, ROOT, A]
  assert predictor.selected(scores, .9).tolist() == []


def test_predictions_are_consistent_and_read_back(tmp_path, obo, ontology,
                                                  predictor):
  output = str(tmp_path / 'out.tsv')
  summary = go_prediction.predict_fasta(
      _fasta(tmp_path), predictor, output,
      go_prediction.OutputOptions(threshold=0))
  assert summary.written == [i for i, _ in RECORDS]
  header, scores = _read_tsv(output)
  assert header.split('\t') == list(go_prediction.TSV_COLUMNS)
  assert list(scores) == [i for i, _ in RECORDS]  # FASTA order.
  with open(output) as f:
    lines = f.read().splitlines()
  # A line's namespace is its term's.
  first = lines[1].split('\t')
  assert first[3] == predictor.vocabulary.namespaces[GO_IDS.index(first[1])]
  graph = go_eval.GoGraph(ontology)
  index = {protein: i for i, protein in enumerate(scores)}
  predictions, counts = go_benchmark.read_predictions(output, ontology, index)
  assert counts['format'] == 'tsv'
  assert counts['pairs'] == len(RECORDS) * len(GO_IDS)
  # Written scores are already closed under CAFA's propagation.
  for namespace in ('molecular_function', 'biological_process'):
    propagated, terms = go_eval.score_matrix(
        graph, namespace, np.arange(len(RECORDS)), predictions)
    for row, term in enumerate(terms):
      go_id = ontology.terms[term].id
      if go_id in GO_IDS:
        written = [scores[p][go_id] for p in scores]
        np.testing.assert_allclose(propagated[row], written, atol=1e-6)


def test_known_terms_are_model_inputs(tmp_path, ontology, predictor):
  table = tmp_path / 'known.tsv'
  # P1 by its accession: c (closed under is_a: c, a, b, root); P9 is absent.
  table.write_text('accession\tgo_ids\nP1\tGO:0000003\nP9\tGO:0000002\n')
  fasta = _fasta(tmp_path)
  known = go_prediction.known_terms(
      str(table), fasta_lib.read_fasta(fasta), ontology,
      predictor.true_path.positions)
  assert [k.tolist() for k in known] == [[ROOT, A, B, C], [], []]
  with_known = str(tmp_path / 'with.tsv')
  go_prediction.predict_fasta(fasta, predictor, with_known,
                              go_prediction.OutputOptions(threshold=0),
                              annotations=str(table))
  _, scores = _read_tsv(with_known)
  tokens = tokenization.tokenize([s.upper() for _, s in RECORDS], 64)
  annotations = np.zeros((len(RECORDS), len(GO_IDS)), np.float32)
  annotations[0, [ROOT, A, B, C]] = 1
  expected = predictor.true_path(predictor.model.predict(
      tokens, annotations, with_hidden=False).annotation_probs)
  for row, (protein, _) in enumerate(RECORDS):
    np.testing.assert_allclose([scores[protein][g] for g in GO_IDS],
                               expected[row], atol=1e-4)
  without = str(tmp_path / 'without.tsv')
  go_prediction.predict_fasta(fasta, predictor, without,
                              go_prediction.OutputOptions(threshold=0))
  _, plain = _read_tsv(without)
  assert plain['P2'] == scores['P2']
  assert plain['sp|P1|ONE_HUMAN'] != scores['sp|P1|ONE_HUMAN']


def test_vocabulary_file(tmp_path, ontology):
  path = tmp_path / 'vocabulary.txt'
  path.write_text('\n'.join(GO_IDS) + '\n\n')
  assert go_prediction.read_vocabulary_file(str(path), 8) == GO_IDS
  vocabulary = go_prediction.vocabulary_from_ids(
      ['GO:0000091', 'GO:0008150', 'GO:0000098'], ontology)
  assert vocabulary.namespaces.tolist() == [
      'molecular_function', 'biological_process', '']
  with pytest.raises(ValueError, match=r'vocabulary.txt: 8 GO IDs, but the '
                     r'model has 9 annotation outputs'):
    go_prediction.read_vocabulary_file(str(path), 9)
  path.write_text('GO:0000001\nGO:0000002 x\n')
  with pytest.raises(ValueError, match=r"vocabulary.txt:2: expected one GO "
                     r"ID .* found 'GO:0000002 x'"):
    go_prediction.read_vocabulary_file(str(path), 2)
  path.write_text('GO:0000001\nGO:0000002\nGO:0000001\n')
  with pytest.raises(ValueError, match=r'vocabulary.txt:3: GO:0000001 is '
                     r'repeated \(first at line 1\)'):
    go_prediction.read_vocabulary_file(str(path), 3)
  with pytest.raises(ValueError, match='--go_vocabulary'):
    go_prediction.GoPredictor(inference.PretrainedModel(PARAMS, CONFIG),
                              ontology)


def test_cafa_format(tmp_path, ontology, predictor):
  output = str(tmp_path / 'team_1.txt')
  go_prediction.predict_fasta(
      _fasta(tmp_path), predictor, output, go_prediction.OutputOptions(
          threshold=0, format='cafa', author='team', model=2))
  with open(output) as f:
    lines = f.read().splitlines()
  assert lines[:3] == ['AUTHOR\tteam', 'MODEL\t2',
                       'KEYWORDS\tmachine learning.']
  assert lines[-1] == 'END'
  for line in lines[3:-1]:
    protein, go_id, score = line.split('\t')
    assert protein in dict(RECORDS) and go_id in GO_IDS
    assert len(score) == 4 and 0 < float(score) <= 1
  index = {protein: i for i, (protein, _) in enumerate(RECORDS)}
  _, counts = go_benchmark.read_predictions(output, ontology, index)
  assert counts['format'] == 'cafa' and counts['pairs'] == len(lines) - 4


def test_resume_skips_written_proteins(tmp_path, predictor):
  output = str(tmp_path / 'out.tsv')
  journal = output + '.journal'
  go_prediction.predict_fasta(_fasta(tmp_path, RECORDS[:2]), predictor,
                              output)
  _, first = _read_tsv(output)
  with open(journal, 'ab') as f:  # As if killed while writing P3.
    f.write(b'100\tP3\t' + b'0' * 40 + b'\nP3\tGO:0003674\t0.5')
  calls = []
  summary = go_prediction.predict_fasta(
      _fasta(tmp_path), predictor, output,
      progress=lambda done, total: calls.append((done, total)))
  assert summary.skipped_existing == [i for i, _ in RECORDS[:2]]
  assert summary.written == ['P3'] and calls == [(1, 1)]
  _, second = _read_tsv(output)
  assert list(second) == [i for i, _ in RECORDS]
  assert {p: second[p] for p in first} == first
  with open(journal) as f:
    assert 'P3\tGO:0003674\t0.5P3' not in f.read()
  summary = go_prediction.predict_fasta(_fasta(tmp_path), predictor, output)
  assert summary.written == [] and len(summary.skipped_existing) == 3
  assert _read_tsv(output)[1] == second
  changed = [(i, s + 'A' if i == 'P2' else s) for i, s in RECORDS]
  with pytest.raises(ValueError, match=r"\['P2'\] were done for other "
                     'inputs'):
    go_prediction.predict_fasta(_fasta(tmp_path, changed), predictor, output)
  with pytest.raises(ValueError, match='other settings'):
    go_prediction.predict_fasta(_fasta(tmp_path), predictor, output,
                                go_prediction.OutputOptions(top_k=2))
  os.remove(journal)
  with pytest.raises(ValueError, match='exists without its journal'):
    go_prediction.predict_fasta(_fasta(tmp_path), predictor, output)


def test_bad_inputs_write_nothing(tmp_path, predictor):
  output = tmp_path / 'out.tsv'
  bad_fasta = tmp_path / 'bad.fasta'
  bad_fasta.write_text('>P1\nMKV\n>P2\nMK-V\n')
  with pytest.raises(ValueError, match=r"bad.fasta:4: invalid character '-'"):
    go_prediction.predict_fasta(str(bad_fasta), predictor, str(output))
  table = tmp_path / 'known.tsv'
  table.write_text('accession\tgo_ids\nP1\tGO:0000003,ATP\n')
  with pytest.raises(annotation_table.AnnotationTableError,
                     match=r"known.tsv:2: column 2 .* holds b?'ATP'"):
    go_prediction.predict_fasta(_fasta(tmp_path), predictor, str(output),
                                annotations=str(table))
  with pytest.raises(ValueError, match='threshold 2'):
    go_prediction.predict_fasta(_fasta(tmp_path), predictor, str(output),
                                go_prediction.OutputOptions(threshold=2))
  assert sorted(os.listdir(tmp_path)) == ['bad.fasta', 'in.fasta',
                                          'known.tsv']


def _run(module, *flags):
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=ROOT_DIR,
                        capture_output=True, text=True, check=False)


def test_cli_end_to_end(tmp_path, obo):
  # A checkpoint without GO IDs (as the official pickle), and a file of them.
  checkpoint = str(tmp_path / 'tiny.npz')
  params_io.save_params(checkpoint, PARAMS, CONFIG)
  vocabulary = tmp_path / 'vocabulary.txt'
  vocabulary.write_text('\n'.join(GO_IDS) + '\n')
  output = str(tmp_path / 'predictions.tsv')
  flags = [f'--fasta={_fasta(tmp_path)}', f'--checkpoint={checkpoint}',
           f'--go_obo={obo}', f'--output={output}', '--threshold=0',
           '--top_k=3']
  done = _run('experiments.predict_go', *flags)
  assert done.returncode != 0 and '--go_vocabulary' in done.stderr
  done = _run('experiments.predict_go', *flags,
              f'--go_vocabulary={vocabulary}')
  assert done.returncode == 0, done.stderr
  assert '3/3 proteins' in done.stderr
  _, scores = _read_tsv(output)
  assert [len(terms) for terms in scores.values()] == [3, 3, 3]
  truth = tmp_path / 'truth.tsv'
  truth.write_text('accession\tgo_ids\nP2\tGO:0000003\nP3\tGO:0000011\n')
  report = str(tmp_path / 'report.json')
  done = _run('experiments.evaluate_go', f'--predictions={output}',
              f'--truth={truth}', f'--go_obo={obo}', f'--output={report}')
  assert done.returncode == 0, done.stderr
  with open(report) as f:
    model = json.load(f)['methods']['model']
  assert model['input']['format'] == 'tsv'
  assert model['input']['pairs'] == 9 and model['input']['other_proteins'] == 3
  assert set(model['namespaces']) == {'molecular_function',
                                      'biological_process'}
