"""ProteinBERT (Brandes et al., Bioinformatics 2022) in JAX + Haiku.

Notebook entry point:

    import proteinbert
    model = proteinbert.load_pretrained(path)  # official pickle or our .npz
    tokens = proteinbert.tokenize(seqs, seq_len=512)
    out = model.predict(tokens, annotations)   # annotations None = all zeros

The names below are imported on first use, so that code needing none of
them (the dataset builder: `proteinbert.data`) starts without importing JAX
(~0.8 s and ~100 MB of peak memory).
"""

import importlib
import importlib.util

# Exported name -> the module that defines it.
_EXPORTS = {
    'forward_fn': 'proteinbert.model',
    'get_config': 'proteinbert.config',
    'get_model_config': 'proteinbert.config',
    'load_pretrained': 'proteinbert.inference',
    'ModelOutput': 'proteinbert.model',
    'Prediction': 'proteinbert.inference',
    'PretrainedModel': 'proteinbert.inference',
    'ProteinBert': 'proteinbert.model',
    'tokenize': 'proteinbert.tokenization',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  """An exported name, or a submodule (`proteinbert.inference.export`)."""
  if name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
  elif importlib.util.find_spec(f'{__name__}.{name}') is not None:
    value = importlib.import_module(f'{__name__}.{name}')
  else:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  globals()[name] = value  # Later lookups skip this function.
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))
