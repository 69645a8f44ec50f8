"""Embeddings: file layout, resume, kills, batch independence, bad inputs."""

import os
import re
import signal
import subprocess
import sys
import time

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


def _read_output(path):
  """{group name: (attrs, {dataset: array})} and the root attrs."""
  with h5py.File(path, 'r') as f:
    return dict(f.attrs), {
        key: (dict(group.attrs), {name: group[name][()] for name in group})
        for key, group in f['proteins'].items()}


def _assert_same_output(path, expected_path):
  (root, proteins), (expected_root, expected) = (
      _read_output(path), _read_output(expected_path))
  assert root == expected_root and proteins.keys() == expected.keys()
  for key, (attrs, arrays) in proteins.items():
    expected_attrs, expected_arrays = expected[key]
    assert attrs == expected_attrs and arrays.keys() == expected_arrays.keys()
    for name, value in arrays.items():
      # Other batch companions in the resumed run: round-off at most.
      np.testing.assert_allclose(value, expected_arrays[name], rtol=1e-6,
                                 atol=1e-7)


def test_resume_skips_written_ids_and_redoes_unfinished_ones(tmp_path):
  clean = str(tmp_path / 'clean.h5')
  embeddings.embed_fasta(_fasta(tmp_path, RECORDS), MODEL, clean)
  output = str(tmp_path / 'out.h5')
  embeddings.embed_fasta(_fasta(tmp_path, RECORDS[:2]), MODEL, output)
  with open(output + '.journal', 'ab') as f:  # As if killed writing P3.
    f.write(b'4000\tP3\t' + b'0' * 40 + b'\nPK\x03')
  calls = []
  summary = embeddings.embed_fasta(
      _fasta(tmp_path, RECORDS), MODEL, output,
      progress=lambda done, total: calls.append((done, total)))
  assert summary.skipped_existing == [i for i, _ in RECORDS[:2]]
  assert summary.written == ['P3'] and calls == [(1, 1)]
  _assert_same_output(output, clean)
  summary = embeddings.embed_fasta(_fasta(tmp_path, RECORDS), MODEL, output)
  assert summary.written == [] and len(summary.skipped_existing) == 3
  changed = [(i, s + 'A' if i == 'P3' else s) for i, s in RECORDS]
  with pytest.raises(ValueError, match=r"\['P3'\] were done for other "
                     'inputs'):
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
  with pytest.raises(ValueError, match='exists without its journal'):
    embeddings.embed_fasta(fasta_path, MODEL, str(other))
  assert other.read_text() == 'not hdf5'


def test_id_dot_is_a_group_of_its_own(tmp_path):
  """h5py reads the name '.' as the group itself."""
  output = str(tmp_path / 'out.h5')
  embeddings.embed_fasta(_fasta(tmp_path, [('.', 'MKV'), ('%2E', 'MKT')]),
                         MODEL, output)
  with h5py.File(output, 'r') as f:
    assert sorted(f['proteins']) == ['%252E', '%2E']
    assert f['proteins/%2E'].attrs['id'] == '.'


def test_max_tokens_must_be_positive(tmp_path):
  with pytest.raises(ValueError, match='max_tokens must be positive, got -5'):
    embeddings.embed_sequences(MODEL, ['MKV'], max_tokens=-5)


def _start_embed(fasta_path, checkpoint, output, log):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(log, 'w') as stderr:
    return subprocess.Popen(
        [sys.executable, '-m', 'experiments.embed', f'--fasta={fasta_path}',
         f'--checkpoint={checkpoint}', f'--output={output}', '--per_residue',
         '--mean_pooled', '--max_tokens=64'], cwd=root, stderr=stderr,
        stdout=subprocess.DEVNULL, env=dict(os.environ, JAX_PLATFORMS='cpu'))


def _done_before_kill(process, log, output, num_proteins, done_at_least):
  """Signals `process` once `done_at_least` proteins are in the journal (all
  runs together, read from its progress bar); returns that number."""
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline:
    assert process.poll() is None, 'finished before the kill point'
    progress = re.findall(r'(\d+)/(\d+) proteins', open(log).read())
    done = (num_proteins - int(progress[-1][1]) + int(progress[-1][0])
            if progress else None)
    if (done or 0) >= done_at_least and os.path.exists(output + '.journal'):
      return done
    time.sleep(0.005)
  raise AssertionError('no progress')


def test_embed_survives_kills_at_any_point(tmp_path):
  """kill -9 after 0, some and most proteins, and a SIGTERM: the re-run
  finishes with a clean run's output.

  Twelve proteins in each of three length buckets, one per model call; every
  kill point but the first two is where a bucket is done, so the next
  bucket's compilation leaves time to act before the run could finish.
  """
  rng = np.random.default_rng(0)
  letters = list('ACDEFGHIKLMNPQRSTVWY')
  records = [(f'P{i}', ''.join(rng.choice(letters, n))) for i, n in
             enumerate(np.concatenate([rng.integers(a, b, 12) for a, b in (
                 (5, 60), (70, 120), (130, 250))]))]
  fasta_path = _fasta(tmp_path, records)
  checkpoint = str(tmp_path / 'tiny.npz')
  params_io.save_params(checkpoint, PARAMS, CONFIG)
  clean = str(tmp_path / 'clean.h5')
  embeddings.embed_fasta(
      fasta_path, embeddings.load_model(checkpoint), clean,
      embeddings.EmbeddingOptions(per_residue=True, mean_pooled=True),
      max_tokens=64)
  output, log = str(tmp_path / 'out.h5'), str(tmp_path / 'log.txt')
  done_before = 0
  for sig, at_least in ((signal.SIGKILL, 0), (signal.SIGKILL, 3),
                        (signal.SIGTERM, 12), (signal.SIGKILL, 24)):
    process = _start_embed(fasta_path, checkpoint, output, log)
    done = _done_before_kill(process, log, output, len(records), at_least)
    assert done is None or done >= done_before
    process.send_signal(sig)
    assert process.wait(timeout=120) != 0
    if sig == signal.SIGTERM:  # Unwound as Ctrl-C would.
      assert 'KeyboardInterrupt' in open(log).read()
    assert not os.path.exists(output)
    done_before = done or 0
  assert done_before < len(records)
  process = _start_embed(fasta_path, checkpoint, output, log)
  assert process.wait(timeout=300) == 0, open(log).read()
  _assert_same_output(output, clean)
  assert sorted(os.listdir(tmp_path)) == [
      'clean.h5', 'clean.h5.journal', 'in.fasta', 'log.txt', 'out.h5',
      'out.h5.journal', 'tiny.npz']
