"""A fine-tuned model: parameters, task and head, predict, save and reload.

    model = finetuning.load_finetuned('model.npz')
    probs = model.predict(['MKTAYIAK...', ...])   # one prediction per sequence

A saved model is one .npz file in the `params_io` layout (`numpy.load` lists
it): every parameter under `module/path//param` (the trunk's `protein_bert/...`
and the head's `task_head/...`), the model config under `__model_config__`,
and the task and head under `__finetuning__` (JSON).
"""

import functools
from typing import Optional, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from proteinbert import batching
from proteinbert import compiled
from proteinbert import io_utils
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import residues
from proteinbert import tokenization
from proteinbert.finetuning import heads
from proteinbert.finetuning import tasks

_FINETUNING_KEY = '__finetuning__'


def make_head_config(head_input: str = 'hidden',
                     dropout_rate: float = 0.5) -> ml_collections.ConfigDict:
  """The head section of a fine-tuning config (see `finetuning.config`)."""
  return ml_collections.ConfigDict(dict(head_input=head_input,
                                        dropout_rate=dropout_rate))


def prediction_fn(model_config: ml_collections.ConfigDict,
                  spec: tasks.TaskSpec,
                  head_config: ml_collections.ConfigDict):
  """The evaluation-mode model's `tasks.predictions`: predict(tokens)."""
  forward = heads.forward_fn(model_config, spec, head_config)
  return lambda tokens: tasks.predictions(spec, forward(tokens, False))


def build(model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
          head_config: ml_collections.ConfigDict) -> compiled.CompiledModel:
  """`heads.forward_fn` transformed and compiled (`is_training` static).

  Its `transformed.apply(params, rng, tokens, is_training)` is what training
  differentiates; rng may be None when not training.
  """
  return compiled.build(heads.forward_fn, model_config, spec, head_config,
                        static_argnums=(1,))


def logits_fn(model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
              head_config: ml_collections.ConfigDict):
  """The compiled evaluation-mode model (no dropout, no input annotations).

  Returns:
    logits(params, tokens int [B, L]) -> float32 [B, K] (global tasks) or
    [B, L, K] (per-residue tasks).
  """
  apply = build(model_config, spec, head_config).apply
  return lambda params, tokens: apply(params, None, tokens, False)


# `tasks.predictions`, compiled per task and shape.
predictions = jax.jit(tasks.predictions, static_argnums=0)


def init_params(model_config: ml_collections.ConfigDict,
                spec: tasks.TaskSpec, head_config: ml_collections.ConfigDict,
                rng: jax.Array,
                trunk_params: Optional[hk.Params] = None) -> hk.Params:
  """Fresh head parameters on a fresh or given trunk.

  Args:
    model_config: the trunk's config.
    spec: the task.
    head_config: the head section.
    rng: PRNG key.
    trunk_params: pretrained `protein_bert/...` params; None initialises the
      trunk randomly (Keras' initialisers, as `model.init_params`).

  Returns:
    The fine-tuning model's params.

  Raises:
    ValueError: trunk_params do not match model_config (every missing,
      unexpected or mis-shaped entry listed).
  """
  trunk_rng, head_rng = jax.random.split(rng)
  if trunk_params is None:
    trunk_params = model_lib.init_params(model_config, trunk_rng)
  else:
    params_io.check_structure(
        trunk_params,
        jax.eval_shape(lambda key: model_lib.init_params(model_config, key),
                       trunk_rng),
        'pretrained params')
  # The head alone: its params depend on nothing else.
  features = jnp.zeros((1, heads.feature_size(
      model_config, spec.per_residue, head_config.head_input)), jnp.float32)
  head_params = compiled.build(heads.head_fn, spec.num_outputs).init(
      head_rng, features)
  return hk.data_structures.merge(
      jax.tree_util.tree_map(jnp.asarray, trunk_params), head_params)


def _param_shapes(model_config: ml_collections.ConfigDict,
                  spec: tasks.TaskSpec,
                  head_config: ml_collections.ConfigDict) -> hk.Params:
  """The fine-tuning model's params as jax.ShapeDtypeStructs."""
  return jax.eval_shape(
      build(model_config, spec, head_config).init, jax.random.PRNGKey(0),
      jnp.full((1, 8), tokenization.PAD, jnp.int32), False)


class FinetunedModel:
  """A fine-tuned model ready to predict on new sequences."""

  def __init__(self, params: hk.Params,
               model_config: ml_collections.ConfigDict,
               spec: tasks.TaskSpec, head_config: ml_collections.ConfigDict,
               source: str = 'params'):
    """Wraps params; raises ValueError if they do not fit the model.

    Args:
      params: the fine-tuning model's params (trunk and head).
      model_config: the trunk's config.
      spec: the task.
      head_config: the head section.
      source: how to name the params in errors.
    """
    self.model_config = model_config
    self.spec = spec
    self.head_config = head_config
    params_io.check_structure(
        params, _param_shapes(model_config, spec, head_config), source)
    self.params = jax.tree_util.tree_map(jnp.asarray, params)

  def predict(self, seqs: Sequence[str], start_seq_len: int = 512,
              batch_size: int = 32) -> list[np.ndarray]:
    """Predicts every sequence, whatever its length.

    Sequences run in length buckets (`batching.length_buckets`), so none is
    cropped; each bucket's last batch is padded to its batch size, so each
    length compiles once.

    Args:
      seqs: [N] amino-acid sequences, read by the rule of
        `proteinbert.residues` (lower case as upper case, a final '*'
        dropped), as the fine-tuning CSVs are.
      start_seq_len: length of the first bucket; with
        `model.mask_padding=False` (the original's behaviour) predictions
        depend on it, so keep the length the model was trained at.
      batch_size: batch size at start_seq_len (halved per doubling).

    Returns:
      N float32 arrays in input order (see `tasks.predictions`): a scalar or
      [K] per protein for global tasks; [n] or [n, K] over the n residues for
      per-residue tasks.
    """
    seqs = residues.check_all(seqs)
    predict = compiled.build(prediction_fn, self.model_config, self.spec,
                             self.head_config).apply
    results = [None] * len(seqs)
    for i, out in batching.run_bucketed(
        functools.partial(predict, self.params, None), seqs, start_seq_len,
        batch_size):
      results[i] = (out[tasks.residue_slice(len(seqs[i]))]
                    if self.spec.per_residue else out)
    return results

  def save(self, path: str) -> None:
    """Writes the model to `path` (.npz) atomically."""
    params_io.save_params(path, self.params, self.model_config,
                          extra=model_entries(self.spec, self.head_config))


def model_entries(spec: tasks.TaskSpec,
                  head_config: ml_collections.ConfigDict
                  ) -> dict[str, np.ndarray]:
  """What makes a parameter file a fine-tuned model's, beside its params
  and model config: `__finetuning__`, the task and head (JSON)."""
  return {_FINETUNING_KEY: np.array(io_utils.json_dumps(dict(
      task=spec._asdict(), head=head_config.to_dict())))}


def load_finetuned(path: str) -> FinetunedModel:
  """Reads a model written by `FinetunedModel.save`.

  The file is read as untrusted input (`params_io.NpzReader`): the task and
  head come first, and each parameter is decompressed only after its header
  matched the model they describe.

  Raises:
    ValueError: not a fine-tuned model file, a damaged one
      (`params_io.CorruptFileError`: invalid JSON among them), or params that
      do not match its stored architecture, task or head; the message names
      the file.
  """
  with params_io.NpzReader(path) as reader:
    if _FINETUNING_KEY not in reader:
      raise ValueError(
          f'{path}: not a fine-tuned model (no {_FINETUNING_KEY}); pretrained '
          'weights load with proteinbert.load_pretrained.')
    model_config = reader.read_model_config()
    if model_config is None:
      raise ValueError(f'{path}: no {params_io.CONFIG_KEY}.')
    stored = reader.read_json(_FINETUNING_KEY)
    try:
      spec = tasks.make_spec(**stored['task'])
      head_config = make_head_config(**stored['head'])
    except (KeyError, TypeError, ValueError) as e:
      raise params_io.CorruptFileError(
          f'{path}: {_FINETUNING_KEY} must hold a valid task and head: '
          f'{type(e).__name__}: {e}') from None
    params = reader.read_params(_param_shapes(model_config, spec, head_config))
  return FinetunedModel(params, model_config, spec, head_config, source=path)
