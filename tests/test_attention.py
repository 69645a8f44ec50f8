"""Global attention maps: the weights, `embed --attention`, the plot."""

import os
import subprocess
import sys

import haiku as hk
import h5py
import jax
import numpy as np
import pytest

import proteinbert
from proteinbert import embeddings
from proteinbert import inference
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tokenization
from tests import helpers

CONFIG = helpers.tiny_model_config(mask_padding=True)  # 2 blocks, 2 heads.


def _perturbed(params, scale=0.5):
  """Fresh biases are 0, which makes block 1's query 0 and its weights
  uniform; noise on every parameter gives the weights some shape."""
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map(
      lambda p: p + scale * rng.standard_normal(p.shape).astype(np.float32),
      params)


PARAMS = _perturbed(model_lib.init_params(CONFIG, jax.random.PRNGKey(0)))
MODEL = inference.PretrainedModel(PARAMS, CONFIG)
SEQS = ['MKTAYIAKQRQISFVKSHFSRQ', 'ACDEFGHIKLMNPQRSTVWY', 'M', 'GGGSGGGS']
SEQ_LEN = 32


def _hand_computed(output, tokens):
  """Per block and head: softmax over unpadded positions of q . k / sqrt(K),
  q from the block's input global vector, k from its per-residue output."""
  blocks = []
  for i in range(1, CONFIG.num_blocks + 1):
    weights = PARAMS[f'protein_bert/block_{i}/global/global_attention']
    g = np.asarray(output.global_hidden[2 * i - 2], np.float64)  # [B, G]
    x = np.asarray(output.local_hidden[2 * i - 1], np.float64)  # [B, L, C]
    query = np.tanh(np.einsum('bg,hgk->bhk', g, weights['query_w']))
    keys = np.tanh(np.einsum('blc,hck->bhlk', x, weights['key_w']))
    logits = np.einsum('bhk,bhlk->bhl', query, keys) / np.sqrt(
        CONFIG.key_size)
    logits = np.where(tokens[:, None] != tokenization.PAD, logits, -np.inf)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    blocks.append(exp / exp.sum(-1, keepdims=True))
  return np.stack(blocks, axis=1)


def test_weights_sum_to_one_and_skip_padding():
  tokens = proteinbert.tokenize(SEQS, SEQ_LEN)
  weights = MODEL.global_attention(tokens, batch_size=3)
  assert weights.shape == (4, CONFIG.num_blocks, CONFIG.num_heads, SEQ_LEN)
  assert weights.dtype == np.float32
  padding = np.broadcast_to((tokens == tokenization.PAD)[:, None, None],
                            weights.shape)
  np.testing.assert_array_equal(weights[padding], 0.0)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  # Without the mask (the original), <PAD> positions are attended too.
  unmasked = inference.PretrainedModel(PARAMS, helpers.tiny_model_config(
      mask_padding=False)).global_attention(tokens, batch_size=3)
  assert (unmasked[padding] > 0).all()
  np.testing.assert_allclose(unmasked.sum(-1), 1.0, rtol=1e-5)


def test_weights_equal_a_hand_computation_from_the_parameters():
  tokens = proteinbert.tokenize(SEQS, SEQ_LEN)
  output = MODEL.forward(tokens)
  expected = _hand_computed(output, tokens)
  assert expected.max() > 2 / SEQ_LEN  # Not the uniform weights of a zero query.
  # Inputs and weights are float32; logits are at most sqrt(K) in size.
  np.testing.assert_allclose(MODEL.global_attention(tokens, batch_size=3),
                             expected, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(model_lib.stacked_attention(output), expected,
                             rtol=1e-4, atol=1e-6)


def test_a_model_without_global_attention_has_no_maps():
  config = helpers.tiny_model_config(global_attention=False)
  params = jax.eval_shape(lambda: model_lib.init_params(
      config, jax.random.PRNGKey(0)))
  tokens = proteinbert.tokenize(SEQS, SEQ_LEN)
  annotations = np.zeros((len(SEQS), config.num_annotations), np.float32)
  output = jax.eval_shape(
      lambda p: hk.transform(model_lib.forward_fn(config)).apply(
          p, None, tokens, annotations), params)
  assert output.global_attention == ()
  with pytest.raises(ValueError, match='no global attention'):
    model_lib.stacked_attention(output)
  with pytest.raises(ValueError, match='no global attention'):
    embeddings.check_options(embeddings.EmbeddingOptions(attention=True),
                             config)


def _run_embed(fasta_path, checkpoint, output):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  subprocess.run(
      [sys.executable, '-m', 'experiments.embed', f'--fasta={fasta_path}',
       f'--checkpoint={checkpoint}', f'--output={output}', '--attention',
       '--global_layers=-1'], cwd=root, check=True, capture_output=True,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_embed_attention_end_to_end(tmp_path):
  checkpoint = str(tmp_path / 'tiny.npz')
  params_io.save_params(checkpoint, PARAMS, CONFIG)
  # One 64-token bucket.
  records = [('P1', SEQS[0]), ('sp|P2/b', SEQS[1] * 3), ('P3', SEQS[2])]
  fasta_path = tmp_path / 'in.fasta'
  fasta_path.write_text(''.join(f'>{i}\n{s}\n' for i, s in records))
  output = str(tmp_path / 'out.h5')
  _run_embed(fasta_path, checkpoint, output)
  # At another padded length (80): with the mask, padding changes nothing.
  alone = MODEL.global_attention(
      proteinbert.tokenize([s for _, s in records], 80), batch_size=3)
  with h5py.File(output, 'r') as f:
    assert f.attrs['complete']
    for (protein_id, seq), expected in zip(records, alone):
      group = f['proteins'][embeddings.dataset_key(protein_id)]
      assert group['attention'].shape == (
          CONFIG.num_blocks, CONFIG.num_heads, len(seq) + 2)
      np.testing.assert_allclose(group['attention'][()],
                                 expected[..., :len(seq) + 2], rtol=1e-4,
                                 atol=1e-6)
  first = {i: _attention(output, embeddings.dataset_key(i)) for i, _ in records}
  os.remove(output)  # As if killed while writing the output,
  with open(output + '.journal', 'r+b') as f:  # and the last protein.
    f.truncate(len(f.read()) - 1)
  # Resuming with the binary's options redoes only the unfinished protein.
  summary = embeddings.embed_fasta(
      str(fasta_path), embeddings.load_model(checkpoint), output,
      embeddings.EmbeddingOptions(global_layers=(-1,), attention=True))
  assert len(summary.written) == 1 and len(summary.skipped_existing) == 2
  for protein_id, _ in records:
    np.testing.assert_allclose(
        _attention(output, embeddings.dataset_key(protein_id)),
        first[protein_id], rtol=1e-6, atol=1e-7)


def _attention(path, protein_id):
  with h5py.File(path, 'r') as f:
    return f['proteins'][protein_id]['attention'][()]


def test_plot_writes_a_png(tmp_path):
  pytest.importorskip('matplotlib')
  from experiments import attention_plots  # pylint: disable=g-import-not-at-top
  seq = SEQS[0]
  weights = attention_plots.protein_attention(MODEL, seq)
  assert weights.shape == (CONFIG.num_blocks, CONFIG.num_heads, len(seq) + 2)
  path = tmp_path / 'attention.png'
  attention_plots.plot(weights, seq, title='P1').savefig(path)
  assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  labels = attention_plots.position_labels(seq)
  assert labels[0] == '<START>' and labels[-1] == '<END>'
  with pytest.raises(ValueError, match='22 residues has 24 tokens'):
    attention_plots.plot(weights[..., :-1], seq)
