r"""Zero-shot variant-effect scores (the counterpart of fair-esm's predict.py).

  python -m experiments.score_variants --checkpoint=swissprot-small \
      --fasta=wildtypes.fasta --mutations=muts.csv --output=scores.csv \
      --strategies=wt-marginals,masked-marginals,pseudo-ppl

`--mutations` is a CSV with a `mutation` column (A23V, A23V:G45L; 1-based)
and a `protein_id` column naming FASTA records, or a `seq` column of whole
mutant sequences scored against `--wildtype` (or the FASTA's only record).
The output keeps the input's columns and adds protein_id, mutation and one
score per strategy (`proteinbert/variants.py`).
"""

from absl import app
from absl import flags
from absl import logging

from proteinbert import inference
from proteinbert import variants

_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', None, 'A shipped model\'s name, official pickle or our '
    '.npz.', required=True)
_FASTA = flags.DEFINE_string('fasta', None, 'Wild-type sequences.',
                             required=True)
_MUTATIONS = flags.DEFINE_string(
    'mutations', None, 'CSV of mutations (protein_id, mutation) or of mutant '
    'sequences (seq).', required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'Output CSV (written '
                              'atomically).', required=True)
_WILDTYPE = flags.DEFINE_string(
    'wildtype', None, 'FASTA ID of the wild type of every row, for a CSV '
    'without protein_id (default: the FASTA\'s only record).')
_STRATEGIES = flags.DEFINE_list(
    'strategies', ['wt-marginals', 'masked-marginals'],
    f'Some of {", ".join(variants.STRATEGIES)} (pseudo-ppl runs L copies of '
    'each distinct sequence).')
_MAX_TOKENS = flags.DEFINE_integer('max_tokens', 16384,
                                   'Tokens per model call (memory).')


def main(argv):
  del argv
  model = inference.load_pretrained(_CHECKPOINT.value)
  logging.info('Model: %s', model.config)
  rows = variants.score_file(model, _MUTATIONS.value, _FASTA.value,
                             _OUTPUT.value, _STRATEGIES.value,
                             _WILDTYPE.value, _MAX_TOKENS.value)
  logging.info('Wrote %d scored variants to %s.', len(rows), _OUTPUT.value)


if __name__ == '__main__':
  app.run(main)
