"""Shipped models: loading by name, the GO vocabulary, and what they learned."""

import jax
import numpy as np
import pytest

import proteinbert
from experiments.configs import finetune as finetune_configs
from proteinbert import embeddings
from proteinbert import inference
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import pretrained
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import fasta_reader
from proteinbert.finetuning import experiment
from proteinbert.training import evaluation
from tests import helpers


def _vocabulary(num_terms):
  return dataset_lib.Vocabulary(
      ids=np.array([f'GO:{i:07d}' for i in range(num_terms)]),
      names=np.array([f'term {i}' for i in range(num_terms)]),
      namespaces=np.array(['molecular_function'] * num_terms),
      counts=np.arange(num_terms, dtype=np.int64))


def test_the_go_vocabulary_travels_with_the_parameters(tmp_path):
  config = helpers.tiny_model_config()
  params = model_lib.init_params(config, jax.random.PRNGKey(0))
  vocabulary = _vocabulary(config.num_annotations)
  path = str(tmp_path / 'model.npz')
  params_io.save_params(path, params, config, vocabulary)
  model = proteinbert.load_pretrained(path)
  for got, want in zip(model.go_vocabulary, vocabulary):
    np.testing.assert_array_equal(got, want)
  # Export keeps it; a vocabulary of the wrong size is refused.
  inference.export(path, str(tmp_path / 'copy.npz'), 'npz')
  assert list(proteinbert.load_pretrained(
      str(tmp_path / 'copy.npz')).go_vocabulary.ids) == list(vocabulary.ids)
  with pytest.raises(ValueError, match='11 terms but the model 10'):
    inference.PretrainedModel(params, config, _vocabulary(11))


def test_unknown_names_say_what_is_shipped():
  with pytest.raises(FileNotFoundError, match='swissprot-small'):
    proteinbert.load_pretrained('swissprot-huge')


def test_swissprot_small_loads_by_name_with_real_go_terms():
  model = proteinbert.load_pretrained('swissprot-small')
  vocabulary = model.go_vocabulary
  assert len(vocabulary.ids) == model.config.num_annotations
  assert all(go_id.startswith('GO:') for go_id in vocabulary.ids)
  assert set(vocabulary.namespaces) == {
      'molecular_function', 'biological_process', 'cellular_component'}


def test_swissprot_small_knows_more_than_residue_frequencies():
  # On held-out proteins it never trained on, corrupted as in its
  # pretraining, its best guess among the residues it is not shown, and
  # its loss on the true residue, beat a model that knows only the corpus'
  # residue frequencies and the corruption rate. The corruption is seeded,
  # so the figures are fixed up to float32 round-off.
  card = pretrained.model_card('swissprot-small')
  seqs = [r.sequence for r in fasta_reader.FastaReader(
      pretrained.heldout_fasta('swissprot-small'))]
  assert len(seqs) >= 100
  report = evaluation.denoising_report(
      proteinbert.load_pretrained('swissprot-small'), seqs,
      np.asarray(card['token_frequencies']), card['noise_prob'], seed=0)
  assert report['corrupted_count'] > 5000
  for metric in ('denoising_accuracy',):
    assert report[metric] > report[f'frequency_baseline/{metric}'] + 0.01
  for metric in ('denoising_loss', 'corrupted_token_loss', 'token_loss'):
    assert report[metric] < report[f'frequency_baseline/{metric}'] - 0.02


def test_embed_and_finetune_take_the_name():
  model = embeddings.load_model('swissprot-small', mask_padding=True)
  assert model.config.mask_padding and model.config.num_blocks == 4
  config = finetune_configs.get_config('signalP_binary')
  config.init_checkpoint = 'swissprot-small'
  params, model_config = experiment.load_trunk(config)
  assert params is not None and model_config.local_dim == 128
