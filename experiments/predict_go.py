r"""Predicts GO terms for the proteins of a FASTA file.

  python -m experiments.predict_go --fasta=proteins.fasta \
      --checkpoint=swissprot-small --go_obo=go.obo --output=predictions.tsv

  python -m experiments.predict_go --fasta=targets.fasta \
      --checkpoint=epoch_92400_sample_23500000.pkl \
      --go_vocabulary=go_ids.txt --go_obo=go.obo --format=cafa \
      --top_k=1500 --output=team_1_9606.txt

Writes each protein's GO terms with scores consistent with the true-path
rule (a term scores at least as high as its descendants), as a TSV
(protein, go_id, score, namespace, name) or a CAFA submission; the formats,
the options and how an interrupted run resumes are in
`proteinbert/go_prediction.py`. Re-running skips the proteins already
written. experiments/evaluate_go.py scores the output.
"""

from absl import app
from absl import flags
from absl import logging

from experiments import fasta_job
from proteinbert import go_prediction
from proteinbert import inference
from proteinbert.data import ontology as ontology_lib

_DEFAULTS = go_prediction.OutputOptions()

_FASTA = flags.DEFINE_string('fasta', None, 'Input FASTA (plain or gzip).',
                             required=True)
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', None, 'A shipped model\'s name (swissprot-small), our .npz, '
    'a pretraining checkpoint or the official pickle.', required=True)
_OUTPUT = flags.DEFINE_string(
    'output', None, 'Predictions file, written once complete; its journal '
    '<output>.journal lets an interrupted run resume.', required=True)
_GO_OBO = flags.DEFINE_string(
    'go_obo', None, 'The GO (OBO), ideally the release the model was trained '
    'on. Required: checkpoints carry their terms\' IDs, names and namespaces '
    'but not the relations the true-path step needs.', required=True)
_GO_VOCABULARY = flags.DEFINE_string(
    'go_vocabulary', None, 'A file of the head\'s GO IDs, one per line in '
    'output order, for checkpoints without them (the official pickle); names '
    'and namespaces then come from --go_obo.')
_ANNOTATIONS = flags.DEFINE_string(
    'annotations', None, 'Known GO terms of some proteins, as model input: a '
    'TSV (accession<TAB>go_ids) or GAF table; unset: none known (prediction '
    'from sequence alone).')
_THRESHOLD = flags.DEFINE_float('threshold', _DEFAULTS.threshold,
                                'Write terms scoring at least this.')
_TOP_K = flags.DEFINE_integer(
    'top_k', _DEFAULTS.top_k, 'Write at most this many terms per protein, '
    'highest first; 0: no limit.')
_FORMAT = flags.DEFINE_enum('format', _DEFAULTS.format,
                            go_prediction.FORMATS, 'Output format.')
_CAFA_AUTHOR = flags.DEFINE_string('cafa_author', _DEFAULTS.author,
                                   'CAFA format: the AUTHOR line.')
_CAFA_MODEL = flags.DEFINE_integer('cafa_model', _DEFAULTS.model,
                                   'CAFA format: the MODEL number (1-3).')
_CAFA_KEYWORDS = flags.DEFINE_string('cafa_keywords', _DEFAULTS.keywords,
                                     'CAFA format: the KEYWORDS line.')


def main(argv):
  del argv
  fasta_job.interrupt_on_sigterm()
  model = inference.load_pretrained(_CHECKPOINT.value)
  ontology = ontology_lib.Ontology.from_obo(_GO_OBO.value)
  if _GO_VOCABULARY.value:
    vocabulary = go_prediction.vocabulary_from_ids(
        go_prediction.read_vocabulary_file(_GO_VOCABULARY.value,
                                           model.config.num_annotations),
        ontology)
    model = inference.PretrainedModel(model.params, model.config, vocabulary)
  options = go_prediction.OutputOptions(
      _THRESHOLD.value, _TOP_K.value, _FORMAT.value, _CAFA_AUTHOR.value,
      _CAFA_MODEL.value, _CAFA_KEYWORDS.value)
  logging.info('Model: %s; options: %s', model.config, options)
  summary = go_prediction.predict_fasta(
      _FASTA.value, go_prediction.GoPredictor(model, ontology),
      _OUTPUT.value, options, _ANNOTATIONS.value, fasta_job.MAX_TOKENS.value,
      fasta_job.progress_bar())
  logging.info('Predicted %d proteins, skipped %d already written and %d '
               'empty records; wrote %s.', len(summary.written),
               len(summary.skipped_existing), len(summary.empty),
               _OUTPUT.value)


if __name__ == '__main__':
  app.run(main)
