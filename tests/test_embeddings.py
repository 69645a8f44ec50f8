"""Embeddings: file layout, resume, batch independence, bad inputs."""

import h5py
import jax
import numpy as np
import pytest

from proteinbert import embeddings
from proteinbert import inference
from proteinbert import model as model_lib
from proteinbert import params_io
from tests import helpers

CONFIG = helpers.tiny_model_config(num_blocks=1, mask_padding=True)
PARAMS = model_lib.init_params(CONFIG, jax.random.PRNGKey(0))
MODEL = inference.PretrainedModel(PARAMS, CONFIG)
# Concatenations of the 1-block tiny model (C 16, G 32, V 26, A 10).
GLOBAL_DIM = 3 * 32 + 10
LOCAL_DIM = 2 * 16 + 26


def _fasta(tmp_path, records, name='in.fasta'):
  path = tmp_path / name
  path.write_text(''.join(f'>{i} some description\n{s}\n'
                          for i, s in records))
  return str(path)


RECORDS = [('sp|P1/a', 'MKTAYIAKQR'), ('P2', 'acdefghiklmnpqrstvwy' * 4),
           ('P3', 'MKV')]


def test_file_layout(tmp_path):
  options = embeddings.EmbeddingOptions(per_residue=True, mean_pooled=True)
  output = str(tmp_path / 'out.h5')
  summary = embeddings.embed_fasta(
      _fasta(tmp_path, RECORDS + [('empty', '')]), MODEL, output, options)
  assert sorted(summary.written) == sorted(i for i, _ in RECORDS)
  assert summary.empty == ['empty']
  with h5py.File(output, 'r') as f:
    assert f.attrs['complete']
    assert sorted(f['proteins']) == ['P2', 'P3', 'sp|P1%2Fa']
    for protein_id, seq in RECORDS:
      group = f['proteins'][embeddings.dataset_key(protein_id)]
      assert group.attrs['id'] == protein_id
      assert group.attrs['length'] == len(seq)
      assert group['global'].shape == (GLOBAL_DIM,)
      assert group['local'].shape == (len(seq), LOCAL_DIM)
      np.testing.assert_allclose(group['local_mean'][()],
                                 group['local'][()].mean(0), rtol=1e-5,
                                 atol=1e-6)
  # The library function gives the same numbers in input order.
  direct = embeddings.embed_sequences(MODEL, [s for _, s in RECORDS], options)
  with h5py.File(output, 'r') as f:
    np.testing.assert_allclose(direct[1].global_,
                               f['proteins/P2/global'][()], rtol=1e-6)


def test_resume_skips_written_ids_and_redoes_unfinished_ones(tmp_path):
  output = str(tmp_path / 'out.h5')
  embeddings.embed_fasta(_fasta(tmp_path, RECORDS[:2]), MODEL, output)
  with h5py.File(output, 'a') as f:
    first = f['proteins/P2/global'][()]
    f['proteins/sp|P1%2Fa'].attrs['done'] = False  # As if killed mid-write.
  calls = []
  summary = embeddings.embed_fasta(
      _fasta(tmp_path, RECORDS), MODEL, output,
      progress=lambda done, total: calls.append((done, total)))
  assert summary.skipped_existing == ['P2']
  assert sorted(summary.written) == ['P3', 'sp|P1/a']
  assert calls[-1] == (2, 2)
  with h5py.File(output, 'r') as f:
    assert f.attrs['complete'] and len(f['proteins']) == 3
    np.testing.assert_array_equal(f['proteins/P2/global'][()], first)
  changed = [(i, s + 'A' if i == 'P3' else s) for i, s in RECORDS]
  with pytest.raises(ValueError, match="'P3' was embedded for a different"):
    embeddings.embed_fasta(_fasta(tmp_path, changed), MODEL, output)


def test_embedding_does_not_depend_on_batch_or_padding_when_masked():
  seq = 'MKTAYIAKQRQISFVKSHFSRQ'
  others = ['ACDEFGHIKLMNPQRSTVWY' * 5, 'MKV', 'W' * 40]
  results = {}
  for mask_padding in (True, False):
    config = helpers.tiny_model_config(num_blocks=1,
                                       mask_padding=mask_padding)
    model = inference.PretrainedModel(PARAMS, config)
    options = embeddings.EmbeddingOptions(mean_pooled=True)
    embedder = embeddings.Embedder(model, options)
    # Alone in a 32-token bucket, then batched with others in a 128 bucket.
    alone = dict(embedder([seq], max_tokens=32, start_seq_len=32))[0]
    batched = dict(embedder(others + [seq], max_tokens=1024,
                            start_seq_len=128))[3]
    results[mask_padding] = (alone, batched)
  for field in ('global_', 'local_mean'):
    alone, batched = (getattr(e, field) for e in results[True])
    np.testing.assert_allclose(alone, batched, rtol=1e-5, atol=1e-5)
    # Without the mask, the padding shifts the embedding (the original).
    alone, batched = (getattr(e, field) for e in results[False])
    assert not np.allclose(alone, batched, rtol=1e-5, atol=1e-5)


def test_layer_selection():
  options = embeddings.EmbeddingOptions(global_layers=(-1,),
                                        local_layers=(0, 1), mean_pooled=True)
  (embedding,) = embeddings.embed_sequences(MODEL, ['MKTAYIAK'], options)
  assert embedding.global_.shape == (32,)
  assert embedding.local_mean.shape == (32,)
  assert embedding.local is None
  # Lists (as from flags or a notebook) select as tuples do.
  (listed,) = embeddings.embed_sequences(MODEL, ['MKTAYIAK'], options._replace(
      global_layers=[-1], local_layers=[0, 1]))
  np.testing.assert_array_equal(listed.global_, embedding.global_)
  with pytest.raises(ValueError, match=r'global_layers \[3\]'):
    embeddings.Embedder(MODEL, embeddings.EmbeddingOptions(global_layers=(3,)))


def test_load_model_mask_padding_flag(tmp_path):
  path = str(tmp_path / 'model.npz')
  params_io.save_params(path, PARAMS, CONFIG)
  assert embeddings.load_model(path).config.mask_padding
  assert not embeddings.load_model(path, mask_padding=False).config.mask_padding


@pytest.mark.parametrize('text,message', [
    ('>P1\nMK-V\n', 'invalid character'),
    ('', 'no FASTA records'),
    ('>P1\nMKV\n>P1\nMKV\n', 'repeated IDs'),
])
def test_bad_fasta_writes_nothing(tmp_path, text, message):
  path = tmp_path / 'bad.fasta'
  path.write_text(text)
  output = tmp_path / 'out.h5'
  with pytest.raises(ValueError, match=message):
    embeddings.embed_fasta(str(path), MODEL, str(output))
  assert not output.exists()


def test_existing_output_with_other_settings_is_refused(tmp_path):
  output = tmp_path / 'out.h5'
  fasta_path = _fasta(tmp_path, RECORDS[2:])
  embeddings.embed_fasta(fasta_path, MODEL, str(output))
  before = output.read_bytes()
  with pytest.raises(ValueError, match='other settings'):
    embeddings.embed_fasta(fasta_path, MODEL, str(output),
                           embeddings.EmbeddingOptions(per_residue=True))
  assert output.read_bytes() == before
  other = tmp_path / 'other.h5'
  other.write_text('not hdf5')
  with pytest.raises(ValueError, match='not an HDF5 file'):
    embeddings.embed_fasta(fasta_path, MODEL, str(other))
