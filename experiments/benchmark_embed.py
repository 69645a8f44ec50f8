r"""Embedding real proteins: our `embed` against the original package's way.

  python -m experiments.benchmark_embed --json=embed.json
  python -m experiments.benchmark_embed --fasta=proteome.fasta.gz \
      --sample_size=5000 --their_seq_lens=512,fit

A seeded random sample of --fasta's proteins (lengths as they come) is
embedded, in alternating rounds (ours, theirs, ours, ...; after an untimed
pass of ours, which compiles its buckets, and a batch of theirs), by:
- ours: `embeddings.Embedder` with its defaults (the original's global
  concatenation; length buckets of 64, 128, ... tokens, about --max_tokens
  tokens per call, nothing cropped), on the weights as loaded
  (mask_padding off, as the official weights) and with --mask_padding on;
- theirs: the original package (protein-bert 1.0.1, run from its wheel by
  `original_wheel`) as its README drives it: `load_pretrained_model_from_dump`
  (what `load_pretrained_model` calls), `get_model_with_hidden_layers_as_
  outputs(generator.create_model(seq_len))`, `input_encoder.encode_X(seqs,
  seq_len)` and `model.predict(..., batch_size=32)`, at one seq_len per
  --their_seq_lens (an integer, or 'fit': the longest sampled protein with
  <START> and <END>, at most 1,024), proteins longer than seq_len - 2
  cropped to their start as users do. Its predict also returns the
  per-residue concatenation (as the README's model does), and runs on at most
  --their_proteins_per_call proteins at a time so that this output fits in
  memory. Each seq_len runs in its own worker process (`timing.Worker`),
  which reports its peak RSS.
Both sides use the same random weights at the published size, written in
the official pickle format (`keras_weights.save_keras_pickle`), so they do
the same arithmetic per position. Reported: proteins/s and residues/s
(residues embedded: after cropping, for theirs) as medians over rounds, the
ratios, and peak RSS per process.
"""

import datetime
import json
import os
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import ml_collections
import numpy as np

from experiments import fasta_job
from experiments import original_wheel
from experiments import timing
from proteinbert import config as config_lib
from proteinbert import embeddings
from proteinbert import fasta as fasta_lib
from proteinbert import keras_weights
from proteinbert import model as model_lib
from proteinbert import tokenization

_FASTA = flags.DEFINE_string(
    'fasta', '../shared/swissprot_go_2014/train.fasta.gz',
    'Proteins to sample from (FASTA, plain or gzip).')
_SAMPLE_SIZE = flags.DEFINE_integer('sample_size', 2000,
                                     'Proteins sampled (seeded).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the sample and weights.')
_THEIR_SEQ_LENS = flags.DEFINE_list(
    'their_seq_lens', ['512', 'fit'],
    'The original\'s seq_len per run: integers, or \'fit\' (the longest '
    'sampled protein plus <START> and <END>, at most 1,024).')
_THEIR_BATCH_SIZE = flags.DEFINE_integer(
    'their_batch_size', 32, 'batch_size of the original\'s model.predict '
    '(its README\'s).')
_THEIR_PROTEINS_PER_CALL = flags.DEFINE_integer(
    'their_proteins_per_call', 256,
    'Proteins per model.predict call of the original (its per-residue '
    'output is 6.4 MB per protein at seq_len 1,024).')
_SERVE_ORIGINAL = flags.DEFINE_string(
    'serve_original', '', 'Internal: serve the original\'s timings to the '
    'parent, with the settings in this JSON file.')

# The original's longest usable seq_len as users set it (1,022 residues).
_FIT_CAP = 1024


def sample_proteins(path: str, num: int, seed: int) -> list[str]:
  """`num` sequences of `path` drawn without replacement (all if fewer)."""
  seqs = [r.seq for r in fasta_lib.read_fasta(path) if r.seq]
  rng = np.random.default_rng(seed)
  return [seqs[i] for i in rng.permutation(len(seqs))[:num]]


def their_seq_len(spec: str, seqs: list[str]) -> int:
  """An integer seq_len, or 'fit': the longest protein's, at most 1,024."""
  if spec != 'fit':
    return int(spec)
  return int(min(tokenization.tokenized_lengths(seqs).max(), _FIT_CAP))


def embedded_residues(seqs: list[str], seq_len: int) -> int:
  """Residues embedded at `seq_len`, proteins cropped to seq_len - 2."""
  limit = seq_len - tokenization.ADDED_TOKENS_PER_SEQ
  return int(sum(min(len(s), limit) for s in seqs))


def _serve_original(settings_path: str) -> None:
  """Worker: the original's README path at one seq_len (`timing.serve`).

  'embed' answers the seconds to embed every protein of the sample.
  """
  os.environ.update(TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='2')
  with open(settings_path) as f:
    settings = json.load(f)
  seq_len, wheel = settings['seq_len'], settings['wheel']
  model_config = ml_collections.ConfigDict(settings['model_config'])
  generation = original_wheel.import_module(wheel, 'model_generation')
  architecture = original_wheel.import_module(
      wheel, 'conv_and_global_attention_model')
  generator, input_encoder = generation.load_pretrained_model_from_dump(
      settings['weights'], architecture.create_model, create_model_kwargs=dict(
          d_hidden_seq=model_config.local_dim,
          d_hidden_global=model_config.global_dim,
          n_blocks=model_config.num_blocks, n_heads=model_config.num_heads,
          d_key=model_config.key_size,
          conv_kernel_size=model_config.conv_kernel_size,
          wide_conv_dilation_rate=model_config.wide_conv_dilation))
  model = architecture.get_model_with_hidden_layers_as_outputs(
      generator.create_model(seq_len))
  limit = seq_len - tokenization.ADDED_TOKENS_PER_SEQ
  seqs = [s[:limit] for s in settings['seqs']]
  per_call = settings['proteins_per_call']

  def embed(chunk):
    start = time.perf_counter()
    for i in range(0, len(chunk), per_call):
      model.predict(input_encoder.encode_X(chunk[i:i + per_call], seq_len),
                    batch_size=settings['batch_size'], verbose=0)
    return time.perf_counter() - start

  embed(seqs[:settings['batch_size']])  # Warm-up: builds the tf.function.
  timing.serve({'embed': lambda _: embed(seqs)})


def _original_worker(directory: str, seqs: list[str], seq_len: int,
                     weights: str, model_config: ml_collections.ConfigDict,
                     batch_size: int, proteins_per_call: int,
                     wheel: str) -> timing.Worker:
  settings = os.path.join(directory, f'original_{seq_len}.json')
  with open(settings, 'w') as f:
    json.dump(dict(seq_len=seq_len, wheel=wheel, weights=weights, seqs=seqs,
                   model_config=model_config.to_dict(), batch_size=batch_size,
                   proteins_per_call=proteins_per_call), f)
  return timing.Worker([sys.executable, '-m', __spec__.name,
                        f'--serve_original={settings}'])


def _ours(weights: str, mask_padding: bool, seqs: list[str],
          max_tokens: int):
  """() -> seconds to embed `seqs` with `Embedder`'s defaults."""
  embedder = embeddings.Embedder(
      embeddings.load_model(weights, mask_padding=mask_padding))

  def embed():
    start = time.perf_counter()
    for _ in embedder(seqs, max_tokens):
      pass
    return time.perf_counter() - start

  return embed


def run(seqs: list[str], model_config: ml_collections.ConfigDict,
        their_seq_lens: list[int], rounds: int, max_tokens: int,
        their_batch_size: int, their_proteins_per_call: int, wheel: str,
        seed: int) -> dict:
  """Times every variant of the module docstring; a JSON-ready dict.

  Args:
    seqs: the proteins.
    model_config: the model (both sides get the same random weights).
    their_seq_lens: the original's seq_len per run; empty: ours only.
    rounds: timed rounds (medians reported).
    max_tokens: ours' tokens per call.
    their_batch_size: the original's predict batch size.
    their_proteins_per_call: proteins per predict call of the original.
    wheel: the original package's wheel.
    seed: seed of the weights.
  """
  with tempfile.TemporaryDirectory() as directory:
    weights = os.path.join(directory, 'weights.pkl')
    keras_weights.save_keras_pickle(
        weights, model_lib.init_params(model_config,
                                       jax.random.PRNGKey(seed)),
        model_config)
    measures = {
        'ours': _ours(weights, False, seqs, max_tokens),
        'ours, mask_padding': _ours(weights, True, seqs, max_tokens)}
    theirs = {f'original, seq_len {n}': n for n in their_seq_lens}
    workers = {name: _original_worker(directory, seqs, seq_len, weights,
                                      model_config, their_batch_size,
                                      their_proteins_per_call, wheel)
               for name, seq_len in theirs.items()}
    for name, worker in workers.items():
      measures[name] = lambda w=worker: w.ask('embed')
    for name in ('ours', 'ours, mask_padding'):  # Compiles every bucket.
      measures[name]()
    seconds = {name: [] for name in measures}
    for _ in range(rounds):
      for name, measure in measures.items():
        seconds[name].append(measure())
    rss = {name: worker.ask('quit') for name, worker in workers.items()}
  ours_rss = timing.peak_rss_mib()
  medians = {name: timing.median(times) for name, times in seconds.items()}
  variants = []
  for name, times in seconds.items():
    seq_len = theirs.get(name)
    residues = (embedded_residues(seqs, seq_len) if seq_len
                else sum(map(len, seqs)))
    variants.append(dict(
        name=name, seq_len=seq_len, round_seconds=times,
        proteins_per_second=len(seqs) / medians[name],
        residues_per_second=residues / medians[name],
        cropped=sum(len(s) > seq_len - tokenization.ADDED_TOKENS_PER_SEQ
                    for s in seqs) if seq_len else 0,
        peak_rss_mib=rss.get(name, ours_rss)))
  return dict(
      date=datetime.datetime.now().isoformat(timespec='seconds'),
      command=' '.join(sys.argv), num_proteins=len(seqs),
      residues=sum(map(len, seqs)), longest=max(map(len, seqs)),
      rounds=rounds, max_tokens=max_tokens, variants=variants,
      ratios={f'{ours} / {original}': medians[original] / medians[ours]
              for ours in ('ours', 'ours, mask_padding')
              for original in theirs})


def format_table(result: dict) -> str:
  """The printed report of `run`'s result."""
  lines = [
      f'{result["date"]}  {result["command"]}',
      f'{result["num_proteins"]} proteins, {result["residues"]:,} residues '
      f'(longest {result["longest"]:,}); medians of {result["rounds"]} '
      'alternating rounds', '',
      f'{"":28} {"proteins/s":>10} {"residues/s":>11} {"cropped":>8} '
      f'{"peak RSS MiB":>13}']
  for v in result['variants']:
    lines.append(f'{v["name"]:28} {v["proteins_per_second"]:10.2f} '
                 f'{v["residues_per_second"]:11.0f} {v["cropped"]:8d} '
                 f'{v["peak_rss_mib"]:13.0f}')
  lines += [f'{name}: {ratio:.2f}x proteins/s'
            for name, ratio in result['ratios'].items()]
  lines.append('peak RSS: the process; ours is one process for both of our '
               'rows, each original seq_len its own.')
  return '\n'.join(lines)


def main(argv):
  del argv
  if _SERVE_ORIGINAL.value:
    _serve_original(_SERVE_ORIGINAL.value)
    return
  seqs = sample_proteins(_FASTA.value, _SAMPLE_SIZE.value, _SEED.value)
  result = run(seqs, config_lib.get_model_config(),
               [their_seq_len(s, seqs) for s in _THEIR_SEQ_LENS.value],
               timing.ROUNDS.value, fasta_job.MAX_TOKENS.value,
               _THEIR_BATCH_SIZE.value, _THEIR_PROTEINS_PER_CALL.value,
               original_wheel.WHEEL.value, _SEED.value)
  print(format_table(result))
  if timing.JSON.value:
    timing.write_json(result, timing.JSON.value)


if __name__ == '__main__':
  app.run(main)
