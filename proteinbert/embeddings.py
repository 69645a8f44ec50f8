"""Protein embeddings from a pretrained model, for notebooks and for files.

Axis letters: B batch, L length, n residues, D embedding channels.

What is embedded (`EmbeddingOptions`):
  global      per protein: the original's concatenation of every global
              layer (`model.concatenated_hidden`: 15,599 channels at the
              published size), or the chosen entries of
              `ModelOutput.global_hidden` concatenated.
  local       per residue (optional): the original's concatenation of the
              per-residue layers (1,562 channels), or the chosen entries of
              `ModelOutput.local_hidden`; rows are residues only (<START>,
              <END> and padding dropped).
  local_mean  the mean of `local` over the residues (optional).
  attention   the global attention weights of every block and head over the
              protein's tokens (optional; `model.stacked_attention`).

Proteins run in length buckets (64, 128, 256, ... tokens, the batch size
keeping about `max_tokens` tokens per call), so short proteins are not padded
to the longest and no protein is cropped. A protein's bucket depends on its
own length only, so its embedding never depends on the proteins it is batched
with; with `model.mask_padding=True` it does not depend on the bucket length
either. The published weights were trained with mask_padding=False (the
original's behaviour, and the default for them), under which the padding
length shifts embeddings slightly (as in the original when seq_len changes).

File layout of `embed_fasta` (HDF5, written whole once every record is in;
`<output>.journal` beside it holds the work in progress):
  /                        attrs: settings (JSON: options, model config,
                           parameter fingerprint), complete (True)
  /proteins/<key>          one group per FASTA record; <key> is the ID with
                           '%' and '/' percent-escaped, and '.' as '%2E'
                           (`dataset_key`); attrs: id, length, sha1 (of the
                           sequence), done (True; files of earlier versions,
                           written in place, could hold unfinished groups)
  /proteins/<key>/global      float32 [D_global]
  /proteins/<key>/local       float32 [n, D_local]   (per_residue)
  /proteins/<key>/local_mean  float32 [D_local]      (mean_pooled)
  /proteins/<key>/attention   float32 [num_blocks, H, n + 2]   (attention)
                           over the tokens <START>, the n residues, <END>;
                           each head's weights sum to 1 with mask_padding;
                           without it (the published weights) the bucket's
                           <PAD> positions took the rest.
"""

import functools
import hashlib
import io
import json
import os
from typing import Callable, Iterator, NamedTuple, Optional, Sequence

import h5py
import jax.numpy as jnp
import ml_collections
import numpy as np

from proteinbert import batching
from proteinbert import compiled
from proteinbert import fasta as fasta_lib
from proteinbert import inference
from proteinbert import io_utils
from proteinbert import journal as journal_lib
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import residues
from proteinbert import tokenization

_FORMAT = 'proteinbert-embeddings-1'
# The datasets of a protein's group, in `ProteinEmbedding`'s order.
_FIELDS = ('global', 'local', 'local_mean', 'attention')


class EmbeddingOptions(NamedTuple):
  """What to embed.

  Attributes:
    global_layers: indices into `ModelOutput.global_hidden` (0 is the
      annotation input layer, then two per block; negative counts from the
      end), or None for the original's full concatenation.
    local_layers: indices into `ModelOutput.local_hidden` (two per block), or
      None for the original's full concatenation.
    per_residue: also return per-residue embeddings.
    mean_pooled: also return the per-residue embeddings' mean over residues.
    attention: also return the global attention weights.
  """
  global_layers: Optional[tuple] = None
  local_layers: Optional[tuple] = None
  per_residue: bool = False
  mean_pooled: bool = False
  attention: bool = False


class ProteinEmbedding(NamedTuple):
  """One protein's embeddings (float32 numpy; None when not requested).

  Attributes:
    global_: [D_global].
    local: [n, D_local], one row per residue.
    local_mean: [D_local].
    attention: [num_blocks, H, n + 2] global attention weights over
      <START>, the residues and <END>.
  """
  global_: np.ndarray
  local: Optional[np.ndarray]
  local_mean: Optional[np.ndarray]
  attention: Optional[np.ndarray] = None


def check_options(options: EmbeddingOptions,
                  config: ml_collections.ConfigDict) -> None:
  """Raises ValueError for layers or attention the model does not have."""
  if options.attention and not config.global_attention:
    raise ValueError('attention: the model has no global attention.')
  num_blocks = config.num_blocks
  for what, chosen, count in (('global', options.global_layers,
                               2 * num_blocks + 1),
                              ('local', options.local_layers, 2 * num_blocks)):
    if chosen is not None and (not chosen or any(
        not -count <= i < count for i in chosen)):
      raise ValueError(f'{what}_layers {list(chosen)}: need indices in '
                       f'[{-count}, {count}) ({count} {what} layers).')


def representations(output: model_lib.ModelOutput,
                    options: EmbeddingOptions
                    ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(global [B, D_global], local [B, L, D_local]) float32, as chosen."""
  if options.global_layers is None or options.local_layers is None:
    full_local, full_global = model_lib.concatenated_hidden(output)
  join = lambda xs: jnp.concatenate([x.astype(jnp.float32) for x in xs], -1)
  global_ = (full_global if options.global_layers is None else join(
      [output.global_hidden[i] for i in options.global_layers]))
  local = (full_local if options.local_layers is None else join(
      [output.local_hidden[i] for i in options.local_layers]))
  return global_, local


def embedding_fn(config: ml_collections.ConfigDict, options: EmbeddingOptions
                 ) -> Callable[[jnp.ndarray], tuple]:
  """The untransformed model with no input annotations, as embeddings.

  Args:
    config: the model config.
    options: what to embed.

  Returns:
    embed(tokens int [B, L], whole proteins with <START> and <END>) ->
    (global [B, D_global], local [B, L, D_local] or None, local_mean
    [B, D_local] or None, attention [B, num_blocks, H, L] or None), float32.
  """
  forward = model_lib.forward_fn(config)

  def embed(tokens):
    annotations = jnp.zeros((tokens.shape[0], config.num_annotations),
                            jnp.float32)
    output = forward(tokens, annotations)
    global_, local = representations(output, options)
    # Residue i is token i + 1: <START>, <END> and <PAD> are left out.
    lengths = jnp.sum(tokens != tokenization.PAD, axis=-1) - (
        tokenization.ADDED_TOKENS_PER_SEQ)
    positions = jnp.arange(tokens.shape[1])
    residues = ((positions[None] >= 1)
                & (positions[None] <= lengths[:, None])).astype(jnp.float32)
    local_mean = (jnp.einsum('bld,bl->bd', local, residues)
                  / jnp.maximum(residues.sum(-1, keepdims=True), 1.0))
    # Per-residue rows are large (1,562 floats each at the published size):
    # they leave the device only when asked for.
    return (global_, local if options.per_residue else None,
            local_mean if options.mean_pooled else None,
            model_lib.stacked_attention(output) if options.attention
            else None)

  return embed


class Embedder:
  """Embeds sequences with one model and one set of options."""

  def __init__(self, model: inference.PretrainedModel,
               options: EmbeddingOptions = EmbeddingOptions()):
    check_options(options, model.config)
    self.model = model
    # Tuples: the options key the compiled model (`compiled.build`).
    self.options = options._replace(**{
        field: tuple(chosen) for field, chosen in (
            ('global_layers', options.global_layers),
            ('local_layers', options.local_layers)) if chosen is not None})

  def __call__(self, seqs: Sequence[str], max_tokens: int = 16384,
               start_seq_len: int = 64
               ) -> Iterator[tuple[int, ProteinEmbedding]]:
    """Embeds every sequence, yielding (index into seqs, embedding).

    Args:
      seqs: [N] amino-acid sequences (non-empty), read by the rule of
        `proteinbert.residues` (lower case as upper case, a final '*'
        dropped).
      max_tokens: about how many tokens go into one call (batch size times
        bucket length, at least one protein per call).
      start_seq_len: length of the shortest bucket.

    Yields:
      (index, ProteinEmbedding), grouped by length bucket.

    Raises:
      ValueError: a sequence breaks the rule, or is empty.
    """
    seqs = residues.check_all(seqs)
    empty = [i for i, s in enumerate(seqs) if not s]
    if empty:
      raise ValueError(f'Sequences {empty[:10]} are empty.')
    embed = compiled.build(embedding_fn, self.model.config,
                           self.options).apply
    lengths = tokenization.tokenized_lengths(seqs) - (
        tokenization.ADDED_TOKENS_PER_SEQ)
    for i, (global_, local, local_mean, attention) in batching.run_bucketed(
        functools.partial(embed, self.model.params, None), seqs,
        start_seq_len,
        batching.batch_size_for_tokens(max_tokens, start_seq_len)):
      yield i, ProteinEmbedding(
          global_, None if local is None else local[1:lengths[i] + 1],
          local_mean, None if attention is None else attention[
              ..., :lengths[i] + tokenization.ADDED_TOKENS_PER_SEQ])


def embed_sequences(model: inference.PretrainedModel, seqs: Sequence[str],
                    options: EmbeddingOptions = EmbeddingOptions(),
                    max_tokens: int = 16384) -> list[ProteinEmbedding]:
  """Embeddings of `seqs`, in their order (the notebook entry point)."""
  result = [None] * len(seqs)
  for index, embedding in Embedder(model, options)(seqs, max_tokens):
    result[index] = embedding
  return result


def load_model(checkpoint: str, mask_padding: Optional[bool] = None
               ) -> inference.PretrainedModel:
  """The pretrained model in `checkpoint` (official pickle or our .npz).

  Args:
    checkpoint: the file.
    mask_padding: None keeps the file's setting (False for the official
      pickle, the original's behaviour); True makes embeddings independent
      of the padded length.
  """
  params, config = inference.load_params_any(checkpoint)
  if mask_padding is not None:
    config.mask_padding = mask_padding
  return inference.PretrainedModel(params, config)


def dataset_key(protein_id: str) -> str:
  """The HDF5 group name of a FASTA ID.

  '/' is HDF5's path separator and the name '.' the group itself, so they
  are percent-escaped (and '%', so the escape is unambiguous).
  """
  if protein_id == '.':
    return '%2E'
  return protein_id.replace('%', '%25').replace('/', '%2F')


def _settings(model: inference.PretrainedModel,
              options: EmbeddingOptions) -> str:
  return io_utils.json_dumps(dict(format=_FORMAT, options=options._asdict(),
                         model_config=json.loads(model.config.to_json()),
                         params=params_io.fingerprint(model.params)),
                    sort_keys=True)


def _sha1(seq: str) -> str:
  return hashlib.sha1(seq.encode()).hexdigest()


def _entry(embedding: ProteinEmbedding) -> bytes:
  """A protein's journal entry: its arrays as an uncompressed .npz."""
  buffer = io.BytesIO()
  np.savez(buffer, **{name: value for name, value in zip(_FIELDS, embedding)
                      if value is not None})
  return buffer.getvalue()


def _write_output(journal: journal_lib.Journal, path: str,
                  records: Sequence[fasta_lib.FastaRecord],
                  settings: str) -> None:
  """Writes the records' embeddings from the journal as the HDF5 output
  (module doc), atomically."""
  with io_utils.atomic_path(path) as tmp, h5py.File(tmp, 'w') as out:
    out.attrs['settings'] = settings
    out.attrs['complete'] = True
    proteins = out.create_group('proteins')
    for record in records:
      group = proteins.create_group(dataset_key(record.id))
      group.attrs.update(dict(id=record.id, length=len(record.seq),
                              sha1=_sha1(record.seq), done=True))
      with np.load(io.BytesIO(journal.read(record.id)),
                   allow_pickle=False) as arrays:
        for name in arrays.files:
          group.create_dataset(name, data=arrays[name])


def embed_fasta(fasta_path: str, model: inference.PretrainedModel,
                output_path: str,
                options: EmbeddingOptions = EmbeddingOptions(),
                max_tokens: int = 16384,
                progress: Optional[Callable[[int, int], None]] = None
                ) -> fasta_lib.JobSummary:
  """Embeds every record of a FASTA file into an HDF5 file (see above).

  Each protein's embeddings go to the journal `<output_path>.journal` as
  they are computed (`proteinbert.journal`: fsynced one protein at a time,
  so a run killed at any point loses at most the protein it was writing);
  the output is written from the journal, atomically, once every record is
  in, so it is never partial. Re-running resumes an interrupted run and
  skips the IDs already done; the journal stays beside the output (about its
  size), so a re-run with records added to the FASTA embeds only those.
  Delete both to start over. The FASTA file is read and checked, and the
  settings compared with an existing journal's, before anything is written.

  Args:
    fasta_path: input FASTA (plain or gzip).
    model: the pretrained model.
    output_path: the HDF5 file to write; its journal goes beside it.
    options: what to embed.
    max_tokens: tokens per model call (see `Embedder`).
    progress: called with (proteins done, proteins to do) after each one.

  Returns:
    What was done (`fasta.JobSummary`).

  Raises:
    ValueError: a bad FASTA (no records, invalid characters, repeated IDs),
      an output without its journal, or a journal written with other
      settings or sequences.
  """
  records, empty, odd = fasta_lib.read_keyed(fasta_path)
  embedder = Embedder(model, options)
  settings = _settings(model, options)
  journal = journal_lib.open_job(
      output_path, settings, 'model, parameters or options',
      {r.id: _sha1(r.seq) for r in records})
  skipped = [r.id for r in records if r.id in journal]
  pending = [r for r in records if r.id not in journal]
  for done, (index, embedding) in enumerate(
      embedder([r.seq for r in pending], max_tokens), start=1):
    record = pending[index]
    journal.append(record.id, _sha1(record.seq), _entry(embedding))
    if progress is not None:
      progress(done, len(pending))
  if pending or not os.path.exists(output_path):
    _write_output(journal, output_path, records, settings)
  return fasta_lib.JobSummary([r.id for r in pending], skipped, empty, odd)
