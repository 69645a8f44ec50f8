"""Models shipped with the package, loadable by name.

    model = proteinbert.load_pretrained('swissprot-small')

Each shipped model is a parameter file (params, model config and GO
vocabulary; `params_io`) in `proteinbert/weights/`, with a model card (JSON:
what it was trained on, the corpus' token frequencies, measured figures) and
a FASTA of held-out proteins to check it on. Everything that takes a
checkpoint path also takes one of these names.
"""

import json
import os
from typing import Any, NamedTuple

_WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), 'weights')


class ShippedModel(NamedTuple):
  """A model in `proteinbert/weights/`.

  Attributes:
    params: the parameter file's name.
    card: the model card's name (JSON).
    heldout_fasta: held-out proteins it never trained on.
  """
  params: str
  card: str
  heldout_fasta: str


MODELS = {
    'swissprot-small': ShippedModel(
        params='swissprot_small.npz', card='swissprot_small.json',
        heldout_fasta='swissprot_small.heldout.fasta'),
}


def _shipped(name: str) -> ShippedModel:
  if name not in MODELS:
    raise KeyError(f'No shipped model {name!r}; shipped: {sorted(MODELS)}.')
  return MODELS[name]


def resolve(name_or_path: str) -> str:
  """The parameter file of a shipped model's name, else the path unchanged.

  Raises:
    FileNotFoundError: neither a file nor a shipped model's name.
  """
  if name_or_path in MODELS:
    return os.path.join(_WEIGHTS_DIR, MODELS[name_or_path].params)
  if not os.path.exists(name_or_path):
    raise FileNotFoundError(f'{name_or_path!r} is neither a file nor a '
                            f'shipped model ({", ".join(sorted(MODELS))}).')
  return name_or_path


def model_card(name: str) -> dict[str, Any]:
  """A shipped model's card: training data, licence, token frequencies,
  measured figures."""
  with open(os.path.join(_WEIGHTS_DIR, _shipped(name).card)) as f:
    return json.load(f)


def heldout_fasta(name: str) -> str:
  """Path of a FASTA of held-out proteins the model never trained on."""
  return os.path.join(_WEIGHTS_DIR, _shipped(name).heldout_fasta)
