r"""Converts a checkpoint or weights file to the official pickle or our .npz.

  python -m experiments.export --input=/tmp/proteinbert_demo/checkpoints/ckpt_0000000150.npz \
      --output=/tmp/model.pkl --format=keras
"""

from absl import app
from absl import flags

from proteinbert import inference

_INPUT = flags.DEFINE_string(
    'input', None, 'Official pickle, our .npz, or a training checkpoint.',
    required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'Destination file.',
                              required=True)
_FORMAT = flags.DEFINE_enum('format', 'keras', ['keras', 'npz'],
                            'keras: the official pickle; npz: ours.')


def main(argv):
  del argv
  inference.export(_INPUT.value, _OUTPUT.value, _FORMAT.value)


if __name__ == '__main__':
  app.run(main)
