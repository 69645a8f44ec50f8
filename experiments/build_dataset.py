r"""Builds a pretraining dataset from a UniRef XML release, or from a FASTA.

  python -m experiments.build_dataset --uniref_xml=uniref90.xml.gz \
      --go_obo=go-basic.obo --output=uniref90.h5 --test_fraction=0.001

  python -m experiments.build_dataset --fasta=uniprot_sprot.fasta.gz \
      --annotations=goa_uniprot.gaf.gz --go_obo=go-basic.obo \
      --output=sprot.h5 --test_fraction=0.001

  python -m experiments.build_dataset --fasta=repertoire.fasta \
      --output=repertoire.h5     # Sequence-only: no GO terms.

--annotations is a TSV (header 'accession<TAB>go_ids', GO IDs
comma-separated) or a GAF 2.x file; it joins on the FASTA IDs (the
accession of UniProt 'sp|...|' and 'tr|...|' headers, else the first word).
--compat=original reproduces protein-bert 1.0.1's pipeline (no propagation,
its vocabulary and ID handling, its order); --format=original writes its
dense layout. See proteinbert/data/build.py and sources.py.
"""

import json
import os

from absl import app
from absl import flags

from proteinbert.data import build
from proteinbert.data import dataset
from proteinbert.data import sources

_UNIREF_XML = flags.DEFINE_string(
    'uniref_xml', None, 'UniRef XML release, gzip or plain '
    '(uniref90.xml.gz); or give --fasta without it.')
_GO_OBO = flags.DEFINE_string(
    'go_obo', None, 'GO in OBO format (go-basic.obo, or CAFA go.txt); needed '
    'with --uniref_xml or --annotations.')
_OUTPUT = flags.DEFINE_string('output', None, 'Dataset file to write.',
                              required=True)
_FASTA = flags.DEFINE_string(
    'fasta', None, 'With --uniref_xml: optional uniref90.fasta[.gz], same '
    'release: sequences for entries whose XML has none (with '
    '--compat=original: every sequence). Without: the proteins (any FASTA, '
    'gzip or plain).')
_ANNOTATIONS = flags.DEFINE_string(
    'annotations', None, 'With --fasta: GO annotations, a TSV (accession<TAB>'
    'GO:...,GO:...) or GAF 2.x file, gzip or plain; without it the dataset '
    'is sequence-only.')
_MIN_ANNOTATION_COUNT = flags.DEFINE_integer(
    'min_annotation_count', 100, 'Keep GO terms carried by at least this many '
    'proteins (100 gave the paper 8,943 terms, without propagation).')
_PROPAGATE = flags.DEFINE_bool(
    'propagate', None, 'Annotate proteins with the is_a ancestors of their '
    'terms; default on, off with --compat=original.')
_TEST_IDS = flags.DEFINE_string(
    'test_ids', None, 'File of test-set protein IDs, one per line: UniRef '
    'cluster IDs, accessions or representative IDs.')
_TEST_FRACTION = flags.DEFINE_float(
    'test_fraction', 0.0, 'Also put each protein in the test set with this '
    'probability.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the order and the test set.')
_COMPAT = flags.DEFINE_enum(
    'compat', None, ['original'], 'Reproduce the original pipeline.')
_FORMAT = flags.DEFINE_enum(
    'format', 'sparse', list(dataset.LAYOUTS),
    "Output layout: ours ('sparse') or the original's dense one.")
_COMPRESSION = flags.DEFINE_enum(
    'compression', 'gzip', ['gzip', 'none'], 'Compression of the output.')
_NUM_WORKERS = flags.DEFINE_integer(
    'num_workers', None, 'Worker processes (XML parsing, shuffling); 0 does '
    'everything in the main process; default: one per idle CPU.')
_BUCKET_SIZE = flags.DEFINE_integer(
    'bucket_size', build.DEFAULT_BUCKET_SIZE,
    'Proteins sorted in memory at once (bounds memory, ~0.7 KB each).')
_SCRATCH_DIR = flags.DEFINE_string(
    'scratch_dir', None, "Scratch space (about twice the output's size); "
    "default: the output's directory.")
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace --output.')
_SUMMARY_JSON = flags.DEFINE_string(
    'summary_json', None, "Also write the build's summary here as JSON, "
    'timed up to the finished output (the copy in its metadata is timed '
    'before the metadata is written).')


@flags.multi_flags_validator(
    ['uniref_xml', 'fasta', 'annotations', 'go_obo', 'compat'],
    message='Choose one input route.')
def _one_route(values):
  try:
    sources.choose(values['uniref_xml'], values['fasta'],
                   values['annotations'], values['go_obo'], values['compat'])
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  return True


_INPUTS = ('uniref_xml', 'fasta', 'annotations', 'go_obo', 'test_ids')


@flags.multi_flags_validator(('output',) + _INPUTS)
def _output_is_no_input(values):
  """--overwrite must never replace an input."""
  for name in _INPUTS:
    if values[name] and os.path.exists(values[name]) and os.path.exists(
        values['output']) and os.path.samefile(values[name], values['output']):
      raise flags.ValidationError(f'--output is the input --{name} '
                                  f'({values[name]}); choose another file.')
  return True


@flags.multi_flags_validator(
    ['output', 'overwrite', 'scratch_dir', 'format', 'seed', 'bucket_size',
     'num_workers', 'min_annotation_count'])
def _settings(values):
  """The library's checks, before any input is read."""
  if values['output'] is None:
    return True  # --output is required; absl says so.
  try:
    build.check_settings(
        values['output'], values['overwrite'], values['scratch_dir'],
        values['format'], values['seed'], values['bucket_size'],
        values['num_workers'], values['min_annotation_count'])
  except (ValueError, FileExistsError) as e:
    raise flags.ValidationError(str(e)) from None
  return True


def main(argv):
  del argv
  summary = build.build_dataset(
      _UNIREF_XML.value, _GO_OBO.value, _OUTPUT.value, fasta=_FASTA.value,
      annotations=_ANNOTATIONS.value,
      min_annotation_count=_MIN_ANNOTATION_COUNT.value,
      propagate=_PROPAGATE.value, test_ids=_TEST_IDS.value,
      test_fraction=_TEST_FRACTION.value, seed=_SEED.value,
      compat=_COMPAT.value, layout=_FORMAT.value,
      compression=None if _COMPRESSION.value == 'none' else 'gzip',
      num_workers=_NUM_WORKERS.value, bucket_size=_BUCKET_SIZE.value,
      scratch_dir=_SCRATCH_DIR.value, overwrite=_OVERWRITE.value)
  if _SUMMARY_JSON.value:
    with open(_SUMMARY_JSON.value, 'w') as f:
      json.dump(summary.as_dict(), f, indent=1)


if __name__ == '__main__':
  app.run(main)
