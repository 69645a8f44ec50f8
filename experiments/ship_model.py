r"""Writes a pretraining checkpoint into the package as a shipped model.

  python -m experiments.ship_model --name=swissprot-small \
      --checkpoint=/runs/swissprot_small/checkpoints/ckpt_0000005000.npz \
      --dataset=/data/swissprot_go_2014.h5 \
      --card=experiments/results/swissprot_small/card.json

Writes, under `proteinbert/weights/` (the names `proteinbert.pretrained.MODELS`
gives): the parameter file (params, model config and the dataset's GO
vocabulary; no optimizer state), a FASTA of `--num_heldout` of the dataset's
test-set proteins (which the model never trained on), and the model card: the
JSON of `--card` (what it was trained on, commands, figures) with the
corpus' token frequencies (`training.evaluation.corpus_frequencies`) and the
held-out FASTA's provenance added.
"""

import json
import os

from absl import app
from absl import flags
import numpy as np

from proteinbert import inference
from proteinbert import pretrained
from proteinbert.data import dataset as dataset_lib
from proteinbert.training import evaluation

_NAME = flags.DEFINE_enum('name', None, sorted(pretrained.MODELS),
                          'The shipped model to write.', required=True)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'The checkpoint.',
                                  required=True)
_DATASET = flags.DEFINE_string('dataset', None, 'The dataset it trained on.',
                               required=True)
_CARD = flags.DEFINE_string('card', None, 'JSON with the rest of the card.',
                            required=True)
_NUM_HELDOUT = flags.DEFINE_integer(
    'num_heldout', 200, 'Test-set proteins to ship (the first ones).')


def main(argv):
  del argv
  shipped = pretrained.MODELS[_NAME.value]
  weights_dir = os.path.dirname(pretrained.resolve(_NAME.value))
  os.makedirs(weights_dir, exist_ok=True)
  with dataset_lib.open_dataset(_DATASET.value) as dataset:
    vocabulary = dataset.vocabulary
    frequencies = evaluation.corpus_frequencies(dataset)
    heldout = np.flatnonzero(dataset.is_test)[:_NUM_HELDOUT.value]
    seqs = dataset.read_indices(heldout).seqs
    ids = dataset.entry_ids(0, dataset.num_proteins)
  inference.export(_CHECKPOINT.value, pretrained.resolve(_NAME.value), 'npz',
                   go_vocabulary=vocabulary)
  with open(os.path.join(weights_dir, shipped.heldout_fasta), 'w') as f:
    for i, seq in zip(heldout, seqs):
      f.write(f'>{ids[i]}\n{seq.decode("ascii")}\n')
  with open(_CARD.value) as f:
    card = json.load(f)
  card.update(
      token_frequencies=[float(x) for x in frequencies],
      heldout_fasta=f'the first {len(heldout)} test-set proteins of the '
      f'dataset ({os.path.basename(_DATASET.value)}); never trained on')
  with open(os.path.join(weights_dir, shipped.card), 'w') as f:
    json.dump(card, f, indent=1)
    f.write('\n')


if __name__ == '__main__':
  app.run(main)
