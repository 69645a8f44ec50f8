r"""What a pretrained model knows, on a dataset's held-out proteins.

  python -m experiments.evaluate_pretraining --checkpoint=swissprot-small \
      --dataset=/data/swissprot_go_2014.h5 \
      --go_obo=../shared/swissprot_go_2014/go.obo \
      --annotations=../shared/swissprot_go_2014/train.annotations.tsv.gz \
      --output_dir=experiments/results/swissprot_small

Two reports, each beside a baseline that knows only frequencies:
* Denoising (`denoising.json`), at each `--noise_probs`: the test-set
  proteins (cropped to `--seq_len`) with residues replaced at random, the
  model's best guess among the tokens it is not shown, and the log-loss of the
  true residue, against the corpus' token frequencies (and the corruption
  rate).
* GO prediction from sequence alone (`go.json`): every input annotation
  hidden, the model's annotation probabilities written as predictions
  (`go_predictions.tsv`) and scored CAFA-style per namespace
  (`proteinbert.go_benchmark`: Fmax, Smin, AUPR) beside the naive baseline
  (each term scored by its training frequency), plus the micro ROC AUC over
  the model's vocabulary. Truth: `--annotations` (the corpus' table, cut to
  the dataset's test proteins), else the dataset's own propagated terms.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging
import numpy as np

from proteinbert import inference
from proteinbert import go_benchmark
from proteinbert import metrics
from proteinbert import tokenization
from proteinbert.data import annotation_table
from proteinbert.data import dataset as dataset_lib
from proteinbert.training import evaluation

_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', None, 'A shipped model name or a parameter file / '
    'checkpoint.', required=True)
_DATASET = flags.DEFINE_string(
    'dataset', None, 'The dataset the model was trained on; its test-set '
    'proteins are evaluated.', required=True)
_GO_OBO = flags.DEFINE_string('go_obo', None, 'The GO (OBO), for the GO '
                              'report; without it only denoising is run.')
_ANNOTATIONS = flags.DEFINE_string(
    'annotations', None, 'Annotation table (TSV or GAF) for the GO truth and '
    "training frequencies; default: the dataset's own terms.")
_NOISE_PROBS = flags.DEFINE_list('noise_probs', ['0.05', '0.15'],
                                 'Corruption rates to denoise at.')
_SEQ_LEN = flags.DEFINE_integer('seq_len', 512, 'Tokens per protein.')
_NUM_PROTEINS = flags.DEFINE_integer(
    'num_proteins', 0, 'Evaluate the first this many test proteins; 0: all.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the corruption.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where reports go.',
                                  required=True)

# Scores below this are not written: they cannot reach Fmax's thresholds
# (steps of 0.01) and would make the file hundreds of MB.
_MIN_SCORE = 0.005


def _write_json(path, value):
  with open(path, 'w') as f:
    json.dump(value, f, indent=1)
    f.write('\n')


def _write_truth(path, ids, annotations, proteins, vocabulary):
  """An annotation TSV of the evaluated proteins: their rows of
  `annotations`, else their (propagated) dataset terms."""
  if annotations:
    table = annotation_table.AnnotationTable(annotations)
    rows = [(i, table.take(i)) for i in ids]
  else:
    offsets = proteins.annotation_offsets
    rows = [(i, vocabulary.ids[proteins.annotation_indices[a:b]])
            for i, a, b in zip(ids, offsets[:-1], offsets[1:])]
  with open(path, 'w') as f:
    f.write(annotation_table.TSV_HEADER + '\n')
    f.writelines(f'{i}\t{",".join(go_ids)}\n' for i, go_ids in rows)


def main(argv):
  del argv
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  model = inference.load_pretrained(_CHECKPOINT.value)
  with dataset_lib.open_dataset(_DATASET.value) as dataset:
    frequencies = evaluation.corpus_frequencies(dataset)
    test = np.flatnonzero(dataset.is_test)
    if _NUM_PROTEINS.value:
      test = test[:_NUM_PROTEINS.value]
    proteins = dataset.read_indices(test)
    ids = dataset.entry_ids(0, dataset.num_proteins)
    vocabulary = dataset.vocabulary
    train = np.flatnonzero(~dataset.is_test)
    # The naive baseline of the vocabulary AUC: each term's share of the
    # training proteins.
    term_frequencies = np.bincount(
        dataset.read_indices(train).annotation_indices,
        minlength=len(vocabulary.ids)) / len(train)
  ids = [ids[i] for i in test]
  logging.info('%d held-out proteins.', len(ids))

  denoising = {
      'checkpoint': _CHECKPOINT.value, 'dataset': _DATASET.value,
      'proteins': len(ids), 'seq_len': _SEQ_LEN.value, 'seed': _SEED.value,
      'frequencies': frequencies.tolist(),
      'by_noise_prob': {
          p: evaluation.denoising_report(
              model, proteins.seqs, frequencies, float(p), _SEQ_LEN.value,
              seed=_SEED.value)
          for p in _NOISE_PROBS.value}}
  _write_json(os.path.join(_OUTPUT_DIR.value, 'denoising.json'), denoising)
  logging.info('Denoising: %s', json.dumps(denoising['by_noise_prob']))
  if not _GO_OBO.value:
    return

  probs = model.predict(tokenization.tokenize(proteins.seqs, _SEQ_LEN.value),
                        with_hidden=False).annotation_probs
  labels = proteins.dense_annotations(len(vocabulary.ids))
  predictions = os.path.join(_OUTPUT_DIR.value, 'go_predictions.tsv')
  with open(predictions, 'w') as f:
    f.write('protein\tgo_id\tscore\n')
    for protein, row in zip(ids, probs):
      for term in np.flatnonzero(row >= _MIN_SCORE):
        f.write(f'{protein}\t{vocabulary.ids[term]}\t{row[term]:.4f}\n')
  truth = _ANNOTATIONS.value or _DATASET.value
  if _NUM_PROTEINS.value:
    # The benchmark is the proteins evaluated, not every test protein.
    truth = os.path.join(_OUTPUT_DIR.value, 'go_truth.tsv')
    _write_truth(truth, ids, _ANNOTATIONS.value, proteins, vocabulary)
  report = go_benchmark.run(
      _GO_OBO.value, truth, predictions=predictions,
      train_annotations=_ANNOTATIONS.value or _DATASET.value,
      split=_DATASET.value, baselines=('naive',))
  report['vocabulary_micro_auc'] = {
      'model': metrics.roc_auc(labels, probs),
      'naive': metrics.roc_auc(labels, np.broadcast_to(term_frequencies,
                                                       labels.shape))}
  _write_json(os.path.join(_OUTPUT_DIR.value, 'go.json'), report)
  print(go_benchmark.table(report))
  print(f'micro ROC AUC over the {len(vocabulary.ids)}-term vocabulary: '
        + ', '.join(f'{k} {v:.4f}'
                    for k, v in report['vocabulary_micro_auc'].items()))


if __name__ == '__main__':
  app.run(main)
