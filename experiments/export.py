r"""Converts a checkpoint or weights file to the official pickle or our .npz.

  python -m experiments.export --input=/tmp/proteinbert_demo/checkpoints/ckpt_0000000150.npz \
      --output=/tmp/model.pkl --format=keras

`--go_vocabulary=DATASET.h5` gives an .npz the GO vocabulary of the dataset
the model was trained on, for inputs that do not carry one (the official
pickle, checkpoints written before checkpoints carried it).
"""

from absl import app
from absl import flags

from proteinbert import inference
from proteinbert.data import dataset

_INPUT = flags.DEFINE_string(
    'input', None, 'Official pickle, our .npz, or a training checkpoint.',
    required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'Destination file.',
                              required=True)
_FORMAT = flags.DEFINE_enum('format', 'keras', ['keras', 'npz'],
                            'keras: the official pickle; npz: ours.')
_GO_VOCABULARY = flags.DEFINE_string(
    'go_vocabulary', None, 'A dataset (.h5) whose GO vocabulary the model '
    "was trained on; replaces the input's (npz output only).")


def main(argv):
  del argv
  vocabulary = None
  if _GO_VOCABULARY.value:
    with dataset.open_dataset(_GO_VOCABULARY.value) as data:
      vocabulary = data.vocabulary
  inference.export(_INPUT.value, _OUTPUT.value, _FORMAT.value,
                   go_vocabulary=vocabulary)


if __name__ == '__main__':
  app.run(main)
