"""The notebook entry point: load a model and predict.

    import proteinbert
    model = proteinbert.load_pretrained(path)   # official pickle or our .npz
    tokens = proteinbert.tokenize(seqs, seq_len=512)
    out = model.predict(tokens, annotations)    # annotations None = all zeros
    out.token_probs, out.annotation_probs, out.local_hidden, out.global_hidden
"""

import functools
from typing import NamedTuple, Optional

import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from proteinbert import keras_weights
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tokenization

_ZIP_MAGIC = b'PK\x03\x04'


class Prediction(NamedTuple):
  """Model outputs as float32 numpy arrays.

  Attributes:
    token_probs: [B, L, V] softmax over tokens at every position.
    annotation_probs: [B, A] sigmoid of every annotation.
    local_hidden: [B, L, 2 * num_blocks * C + V] the original's concatenation
      of per-residue layers (1,562 channels at the published size), or None
      when not requested.
    global_hidden: [B, (2 * num_blocks + 1) * G + A] the original's
      concatenation of per-protein layers (15,599 at the published size), or
      None when not requested.
  """
  token_probs: np.ndarray
  annotation_probs: np.ndarray
  local_hidden: Optional[np.ndarray]
  global_hidden: Optional[np.ndarray]


class PretrainedModel:
  """A ProteinBERT model with loaded parameters, ready to predict."""

  def __init__(self, params: hk.Params, config: ml_collections.ConfigDict):
    """Wraps params; raises ValueError if they do not fit the config.

    Args:
      params: Haiku params.
      config: the model config they belong to.
    """
    self.config = config
    self._transformed = hk.without_apply_rng(
        hk.transform(model_lib.forward_fn(config)))
    expected = jax.eval_shape(
        lambda: model_lib.init_params(config, jax.random.PRNGKey(0)))
    params_io.check_structure(params, expected)
    self.params = jax.tree_util.tree_map(jnp.asarray, params)

  @functools.partial(jax.jit, static_argnums=(0, 4))
  def _predict_batch(self, params, tokens, annotations, with_hidden):
    output = self._transformed.apply(params, tokens, annotations)
    token_probs = jax.nn.softmax(
        output.token_logits.astype(jnp.float32), axis=-1)
    annotation_probs = jax.nn.sigmoid(
        output.annotation_logits.astype(jnp.float32))
    hidden = (model_lib.concatenated_hidden(output) if with_hidden
              else (None, None))
    return Prediction(token_probs, annotation_probs, *hidden)

  @functools.partial(jax.jit, static_argnums=0)
  def _forward(self, params, tokens, annotations):
    return self._transformed.apply(params, tokens, annotations)

  def _checked_inputs(self, tokens, annotations):
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.dtype.kind not in 'iu':
      raise ValueError(
          f'tokens must be an int array [B, L] (proteinbert.tokenize), got '
          f'{tokens.dtype} {tokens.shape}.')
    if tokens.size and (tokens.min() < 0
                        or tokens.max() >= self.config.vocab_size):
      raise ValueError(
          f'token indices must lie in [0, {self.config.vocab_size}).')
    expected = (tokens.shape[0], self.config.num_annotations)
    if annotations is None:
      annotations = np.zeros(expected, np.float32)
    annotations = np.asarray(annotations, np.float32)
    if annotations.shape != expected:
      raise ValueError(f'annotations must have shape {expected} '
                       f'[B, num_annotations], got {annotations.shape}.')
    return tokens.astype(np.int32), annotations

  def predict(self, tokens, annotations=None, batch_size: int = 32,
              with_hidden: bool = True) -> Prediction:
    """Runs the model on any number of sequences of any (common) length.

    Args:
      tokens: int [B, L] from `proteinbert.tokenize`.
      annotations: [B, A] 0/1 input annotations; None means none known.
      batch_size: sequences per device call. The last batch is padded up to
        it, so each length compiles once.
      with_hidden: also return the concatenated hidden layers (large:
        1,562 floats per residue at the published size).

    Returns:
      A Prediction of float32 numpy arrays.
    """
    tokens, annotations = self._checked_inputs(tokens, annotations)
    num = tokens.shape[0]
    parts = []
    for start in range(0, num, batch_size):
      chunk = slice(start, min(start + batch_size, num))
      pad = batch_size - (chunk.stop - chunk.start)
      batch_tokens = np.pad(tokens[chunk], ((0, pad), (0, 0)),
                            constant_values=tokenization.PAD)
      batch_annotations = np.pad(annotations[chunk], ((0, pad), (0, 0)))
      out = self._predict_batch(self.params, batch_tokens, batch_annotations,
                                with_hidden)
      parts.append(jax.tree_util.tree_map(
          lambda x, n=batch_size - pad: np.asarray(x[:n]), out))
    if not parts:
      raise ValueError('predict needs at least one sequence.')
    return Prediction(*[
        None if field[0] is None else np.concatenate(field)
        for field in zip(*parts)])

  def forward(self, tokens, annotations=None) -> model_lib.ModelOutput:
    """One call of the model, with per-layer representations (ModelOutput)."""
    tokens, annotations = self._checked_inputs(tokens, annotations)
    return jax.device_get(self._forward(self.params, tokens, annotations))


def load_params_any(
    path: str,
    config: Optional[ml_collections.ConfigDict] = None,
) -> tuple[hk.Params, ml_collections.ConfigDict]:
  """Reads params from an official pickle or from one of our .npz files.

  Args:
    path: the file.
    config: model config for what the file cannot tell (for the official
      format: dilation, activation, precision, padding mask); for .npz files
      it replaces the stored config when given.

  Returns:
    (params, model config).

  Raises:
    ValueError: the file is damaged, holds an impossible config or
      impossible (NaN, infinite, non-float) params, or does not match the
      model; the message names the file and what is wrong.
  """
  with open(path, 'rb') as f:
    magic = f.read(len(_ZIP_MAGIC))
  if magic == _ZIP_MAGIC:
    params, config = params_io.load_params(path, config)
    if config is None:
      raise ValueError(f'{path} carries no model config; pass config=.')
    return params, config
  return keras_weights.load_keras_pickle(path, base=config)


def load_pretrained(
    path: str,
    config: Optional[ml_collections.ConfigDict] = None,
) -> PretrainedModel:
  """Loads a model from the official pickle or one of our parameter files."""
  return PretrainedModel(*load_params_any(path, config))


def export(path: str, output: str, output_format: str,
           config: Optional[ml_collections.ConfigDict] = None) -> None:
  """Converts between parameter formats.

  Args:
    path: an official pickle, one of our .npz files or a training checkpoint.
    output: destination, written atomically.
    output_format: 'keras' (the official pickle, loadable by the original
      package) or 'npz' (our flat parameter file).
    config: see `load_params_any`.
  """
  params, config = load_params_any(path, config)
  if output_format == 'keras':
    keras_weights.save_keras_pickle(output, params, config)
  elif output_format == 'npz':
    params_io.save_params(output, params, config)
  else:
    raise ValueError(f"Unknown format {output_format!r}; expected 'keras' or "
                     "'npz'.")
