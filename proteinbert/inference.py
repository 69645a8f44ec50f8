"""The notebook entry point: load a model and predict.

    import proteinbert
    model = proteinbert.load_pretrained(path)   # official pickle or our .npz
    tokens = proteinbert.tokenize(seqs, seq_len=512)
    out = model.predict(tokens, annotations)    # annotations None = all zeros
    out.token_probs, out.annotation_probs, out.local_hidden, out.global_hidden
    attention = model.global_attention(tokens)  # [B, blocks, heads, L]
"""

import functools
from typing import Callable, NamedTuple, Optional

import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from proteinbert import batching
from proteinbert import compiled
from proteinbert import io_utils
from proteinbert import keras_weights
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import pretrained
from proteinbert import tokenization
from proteinbert.data import dataset as dataset_lib

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


def prediction_fn(config: ml_collections.ConfigDict, with_hidden: bool
                  ) -> Callable[[jnp.ndarray, jnp.ndarray], Prediction]:
  """The untransformed model with its outputs as a Prediction.

  Args:
    config: the model config.
    with_hidden: also compute the concatenated hidden layers.

  Returns:
    predict(tokens int [B, L], annotations [B, A]) -> Prediction (jax
    arrays; the hidden fields None without with_hidden).
  """
  forward = model_lib.forward_fn(config)

  def predict(tokens, annotations):
    output = forward(tokens, annotations)
    token_probs = jax.nn.softmax(
        output.token_logits.astype(jnp.float32), axis=-1)
    annotation_probs = jax.nn.sigmoid(
        output.annotation_logits.astype(jnp.float32))
    hidden = (model_lib.concatenated_hidden(output) if with_hidden
              else (None, None))
    return Prediction(token_probs, annotation_probs, *hidden)

  return predict


def attention_fn(config: ml_collections.ConfigDict
                 ) -> Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]:
  """The untransformed model with its global attention weights as output.

  Args:
    config: the model config.

  Returns:
    attend(tokens int [B, L], annotations [B, A]) -> float32 [B, num_blocks,
    H, L] (`model.stacked_attention`).
  """
  forward = model_lib.forward_fn(config)
  return lambda tokens, annotations: model_lib.stacked_attention(
      forward(tokens, annotations))


class PretrainedModel:
  """A ProteinBERT model with loaded parameters, ready to predict."""

  def __init__(self, params: hk.Params, config: ml_collections.ConfigDict,
               go_vocabulary: Optional[dataset_lib.Vocabulary] = None):
    """Wraps params; raises ValueError if they do not fit the config.

    Args:
      params: Haiku params.
      config: the model config they belong to.
      go_vocabulary: the GO terms of the annotation outputs (IDs, names,
        namespaces), when known; `annotation_probs[:, a]` is term a.
    """
    if go_vocabulary is not None and len(go_vocabulary.ids) != (
        config.num_annotations):
      raise ValueError(f'The GO vocabulary has {len(go_vocabulary.ids)} '
                       f'terms but the model {config.num_annotations} '
                       'annotation outputs.')
    self.config = config
    self.go_vocabulary = go_vocabulary
    expected = jax.eval_shape(
        lambda: model_lib.init_params(config, jax.random.PRNGKey(0)))
    params_io.check_structure(params, expected)
    self.params = jax.tree_util.tree_map(jnp.asarray, params)

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
    predict = compiled.build(prediction_fn, self.config, with_hidden).apply
    parts = list(batching.run_batches(
        functools.partial(predict, self.params, None), [tokens, annotations],
        batch_size, [tokenization.PAD, 0.0]))
    if not parts:
      raise ValueError('predict needs at least one sequence.')
    return Prediction(*[
        None if field[0] is None else np.concatenate(field)
        for field in zip(*parts)])

  def global_attention(self, tokens, annotations=None,
                       batch_size: int = 32) -> np.ndarray:
    """Where each block's global attention heads look in each protein.

    Args:
      tokens: int [B, L] from `proteinbert.tokenize`.
      annotations: [B, A] 0/1 input annotations; None means none known.
      batch_size: sequences per device call (as in `predict`).

    Returns:
      float32 [B, num_blocks, H, L]: per block and head, the softmax over
      positions of the query (from the block's input global vector) against
      the keys (from the residues); 0 at <PAD> with `mask_padding`
      (`model.stacked_attention`).
    """
    tokens, annotations = self._checked_inputs(tokens, annotations)
    attend = compiled.build(attention_fn, self.config).apply
    return np.concatenate(list(batching.run_batches(
        functools.partial(attend, self.params, None), [tokens, annotations],
        batch_size, [tokenization.PAD, 0.0])))

  def forward(self, tokens, annotations=None) -> model_lib.ModelOutput:
    """One call of the model, with per-layer representations (ModelOutput)."""
    tokens, annotations = self._checked_inputs(tokens, annotations)
    forward = compiled.build(model_lib.forward_fn, self.config).apply
    return jax.device_get(forward(self.params, None, tokens, annotations))


def load_params_any(
    path: str,
    config: Optional[ml_collections.ConfigDict] = None,
) -> tuple[hk.Params, ml_collections.ConfigDict]:
  """Reads params from an official pickle or from one of our .npz files.

  Args:
    path: the file, or a shipped model's name (`proteinbert.pretrained`).
    config: model config for what the file cannot tell (for the official
      format: dilation, activation, precision, padding mask); for .npz files
      it replaces the stored config when given.

  Returns:
    (params, model config).

  Raises:
    ValueError: the file is damaged, holds an impossible config or
      impossible (NaN, infinite, non-float) params, or does not match the
      model; the message names the file and what is wrong.
    FileNotFoundError: neither a file nor a shipped model's name.
  """
  path = pretrained.resolve(path)
  if io_utils.starts_with(path, _ZIP_MAGIC):
    params, config = params_io.load_params(path, config)
    if config is None:
      raise ValueError(f'{path} carries no model config; pass config=.')
    return params, config
  return keras_weights.load_keras_pickle(path, base=config)


def load_pretrained(
    path: str,
    config: Optional[ml_collections.ConfigDict] = None,
) -> PretrainedModel:
  """Loads a model by shipped name, or from the official pickle or one of our
  parameter files (`proteinbert.pretrained.MODELS` lists the names).

  Our files carry the GO vocabulary of their annotation outputs when the
  training data had one (`PretrainedModel.go_vocabulary`); the official
  pickle does not.
  """
  path = pretrained.resolve(path)
  params, config = load_params_any(path, config)
  go_vocabulary = None
  if io_utils.starts_with(path, _ZIP_MAGIC):
    with params_io.NpzReader(path) as reader:
      go_vocabulary = reader.read_go_vocabulary()
  return PretrainedModel(params, config, go_vocabulary)


def export(path: str, output: str, output_format: str,
           config: Optional[ml_collections.ConfigDict] = None,
           go_vocabulary: Optional[dataset_lib.Vocabulary] = None) -> None:
  """Converts between parameter formats.

  Args:
    path: an official pickle, one of our .npz files or a training checkpoint.
    output: destination, written atomically.
    output_format: 'keras' (the official pickle, loadable by the original
      package; it has no place for the GO vocabulary) or 'npz' (our flat
      parameter file, with the model config and GO vocabulary).
    config: see `load_params_any`.
    go_vocabulary: replaces the input's GO vocabulary (checked against the
      model's annotation outputs).
  """
  model = load_pretrained(path, config)
  if go_vocabulary is not None:
    model = PretrainedModel(model.params, model.config, go_vocabulary)
  if output_format == 'keras':
    keras_weights.save_keras_pickle(output, model.params, model.config)
  elif output_format == 'npz':
    params_io.save_params(output, model.params, model.config,
                          model.go_vocabulary)
  else:
    raise ValueError(f"Unknown format {output_format!r}; expected 'keras' or "
                     "'npz'.")
