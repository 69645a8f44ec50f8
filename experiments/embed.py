r"""Embeds the proteins of a FASTA file (the counterpart of esm-extract).

  python -m experiments.embed --fasta=proteins.fasta.gz \
      --checkpoint=epoch_92400_sample_23500000.pkl --output=embeddings.h5 \
      --per_residue --mean_pooled --global_layers=-1 --local_layers=-1

Writes per-protein global embeddings (and, on request, per-residue ones,
their mean over residues and the global attention weights, `--attention`)
keyed by FASTA ID; the layout is in `proteinbert/embeddings.py`. The output
is written once every protein is done; `<output>.journal` beside it keeps the
proteins done so far, so a run stopped by any signal (SIGTERM and SIGINT
stop it cleanly; SIGKILL loses at most one protein) resumes when re-run, and
a re-run skips the IDs already written.
"""

from absl import app
from absl import flags
from absl import logging

from experiments import fasta_job
from proteinbert import embeddings

_FASTA = flags.DEFINE_string('fasta', None, 'Input FASTA (plain or gzip).',
                             required=True)
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', None, 'Official pickle, our .npz or a pretraining '
    'checkpoint.', required=True)
_OUTPUT = flags.DEFINE_string(
    'output', None, 'Output HDF5 file, written once complete; its journal '
    '<output>.journal lets an interrupted run resume.', required=True)
_GLOBAL_LAYERS = flags.DEFINE_list(
    'global_layers', [], 'Indices into the global hidden layers (0: the '
    'annotation input, then two per block; -1: the last); empty: the '
    'original\'s concatenation of all of them.')
_LOCAL_LAYERS = flags.DEFINE_list(
    'local_layers', [], 'Indices into the per-residue hidden layers (two per '
    'block); empty: the original\'s concatenation of all of them.')
_PER_RESIDUE = flags.DEFINE_bool('per_residue', False,
                                 'Also write per-residue embeddings.')
_MEAN_POOLED = flags.DEFINE_bool(
    'mean_pooled', False, 'Also write the per-residue embeddings\' mean over '
    'residues.')
_ATTENTION = flags.DEFINE_bool(
    'attention', False, 'Also write the global attention weights [num_blocks, '
    'H, n + 2] over each protein\'s tokens (<START>, residues, <END>); use '
    'with --mask_padding, or <PAD> takes a share that depends on the length '
    'bucket.')
_MASK_PADDING = flags.DEFINE_bool(
    'mask_padding', None, 'Mask <PAD> positions so embeddings do not depend on '
    'the padded length; unset keeps the checkpoint\'s setting (off for the '
    'official weights, as in the original).')


def _is_int(text: str) -> bool:
  try:
    int(text)
  except ValueError:
    return False
  return True


for _flag in (_GLOBAL_LAYERS, _LOCAL_LAYERS):
  flags.register_validator(
      _flag.name, lambda values: all(_is_int(v) for v in values),
      f'--{_flag.name}: expected integers separated by commas.')


def main(argv):
  del argv
  fasta_job.interrupt_on_sigterm()
  options = embeddings.EmbeddingOptions(
      global_layers=tuple(map(int, _GLOBAL_LAYERS.value)) or None,
      local_layers=tuple(map(int, _LOCAL_LAYERS.value)) or None,
      per_residue=_PER_RESIDUE.value, mean_pooled=_MEAN_POOLED.value,
      attention=_ATTENTION.value)
  model = embeddings.load_model(_CHECKPOINT.value, _MASK_PADDING.value)
  logging.info('Model: %s; options: %s', model.config, options)
  if options.attention and not model.config.mask_padding:
    logging.warning('--attention without --mask_padding: each protein\'s '
                    'weights leave a share to its bucket\'s <PAD> positions.')
  summary = embeddings.embed_fasta(_FASTA.value, model, _OUTPUT.value,
                                   options, fasta_job.MAX_TOKENS.value,
                                   fasta_job.progress_bar())
  logging.info('Wrote %d proteins, skipped %d already written and %d empty '
               'records.', len(summary.written),
               len(summary.skipped_existing), len(summary.empty))


if __name__ == '__main__':
  app.run(main)
