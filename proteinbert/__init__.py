"""ProteinBERT (Brandes et al., Bioinformatics 2022) in JAX + Haiku.

Notebook entry point:

    import proteinbert
    model = proteinbert.load_pretrained(path)  # official pickle or our .npz
    tokens = proteinbert.tokenize(seqs, seq_len=512)
    out = model.predict(tokens, annotations)   # annotations None = all zeros
"""

from proteinbert.config import get_config
from proteinbert.config import get_model_config
from proteinbert.inference import load_pretrained
from proteinbert.inference import Prediction
from proteinbert.inference import PretrainedModel
from proteinbert.model import forward_fn
from proteinbert.model import ModelOutput
from proteinbert.model import ProteinBert
from proteinbert.tokenization import tokenize

__all__ = [
    'forward_fn',
    'get_config',
    'get_model_config',
    'load_pretrained',
    'ModelOutput',
    'Prediction',
    'PretrainedModel',
    'ProteinBert',
    'tokenize',
]
