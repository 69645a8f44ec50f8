r"""Plots where a protein's global attention looks: heads x positions per block.

  python -m experiments.plot_attention --checkpoint=swissprot-small \
      --fasta=proteinbert/weights/swissprot_small.heldout.fasta --id=Q8DI76 \
      --output=attention.png

The protein is tokenized at its own length, so no <PAD> takes any weight.
The drawing is `experiments.attention_plots`.
"""

from typing import Optional

from absl import app
from absl import flags

from experiments import attention_plots
from proteinbert import fasta
from proteinbert import inference

_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'swissprot-small', 'A shipped model\'s name, an official '
    'pickle or our .npz.')
_FASTA = flags.DEFINE_string('fasta', None, 'FASTA holding the protein.',
                             required=True)
_ID = flags.DEFINE_string('id', None, 'The protein\'s FASTA ID; unset: the '
                          'first record.')
_OUTPUT = flags.DEFINE_string('output', None, 'PNG to write.', required=True)


def find_record(fasta_path: str, protein_id: Optional[str]
                ) -> fasta.FastaRecord:
  """The record with `protein_id`, or the file's first when None."""
  records = fasta.read_fasta(fasta_path)
  if protein_id is None:
    return records[0]
  for record in records:
    if record.id == protein_id:
      return record
  raise ValueError(f'{fasta_path} has no record {protein_id!r}.')


def main(argv):
  del argv
  record = find_record(_FASTA.value, _ID.value)
  model = inference.load_pretrained(_CHECKPOINT.value)
  weights = attention_plots.protein_attention(model, record.seq)
  attention_plots.plot(weights, record.seq, title=record.id).savefig(
      _OUTPUT.value, dpi=110)


if __name__ == '__main__':
  app.run(main)
