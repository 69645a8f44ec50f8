"""A fine-tuned model: parameters, task and head, predict, save and reload.

    model = finetuning.load_finetuned('model.npz')
    probs = model.predict(['MKTAYIAK...', ...])   # one prediction per sequence

A saved model is one .npz file in the `params_io` layout (`numpy.load` lists
it): every parameter under `module/path//param` (the trunk's `protein_bert/...`
and the head's `task_head/...`), the model config under `__model_config__`,
and the task and head under `__finetuning__` (JSON).
"""

import functools
import json
from typing import Optional, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from proteinbert import io_utils
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tokenization
from proteinbert.finetuning import batching
from proteinbert.finetuning import heads
from proteinbert.finetuning import tasks

_FINETUNING_KEY = '__finetuning__'


def make_head_config(head_input: str = 'hidden',
                     dropout_rate: float = 0.5) -> ml_collections.ConfigDict:
  """The head section of a fine-tuning config (see `finetuning.config`)."""
  return ml_collections.ConfigDict(dict(head_input=head_input,
                                        dropout_rate=dropout_rate))


def transform(model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
              head_config: ml_collections.ConfigDict) -> hk.Transformed:
  return hk.transform(heads.forward_fn(model_config, spec, head_config))


def _dummy_inputs(model_config):
  return (jnp.full((1, 8), tokenization.PAD, jnp.int32),
          jnp.zeros((1, model_config.num_annotations), jnp.float32))


# Compiled functions are cached per model (configs keyed by their JSON), so
# models of one architecture, e.g. a model and its reloaded copy, share them.
# Haiku's eager init would compile every operation on its own instead.


@functools.lru_cache(maxsize=16)
def _jitted_trunk_init(model_config_json: str):
  config = ml_collections.ConfigDict(json.loads(model_config_json))
  return jax.jit(lambda key: model_lib.init_params(config, key))


def init_trunk(model_config: ml_collections.ConfigDict,
               rng: jax.Array) -> hk.Params:
  """`model.init_params`, compiled once per architecture."""
  return _jitted_trunk_init(model_config.to_json())(rng)


@functools.lru_cache(maxsize=16)
def _jitted_head_init(num_outputs: int, num_features: int):
  # The head alone: its params depend on nothing else.
  head = hk.transform(lambda features: heads.TaskHead(num_outputs, 0.0)(
      features, False))
  return jax.jit(lambda key: head.init(
      key, jnp.zeros((1, num_features), jnp.float32)))


def apply_fn(model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
             head_config: ml_collections.ConfigDict):
  """The model without input annotations, as the original fine-tunes it.

  Returns:
    apply(params, rng, tokens int [B, L], is_training) -> float32 logits
    [B, K] or [B, L, K]; rng may be None when not training.
  """
  transformed = transform(model_config, spec, head_config)

  def apply(params, rng, tokens, is_training):
    annotations = jnp.zeros((tokens.shape[0], model_config.num_annotations),
                            jnp.float32)
    return transformed.apply(params, rng, tokens, annotations, is_training)

  return apply


@functools.lru_cache(maxsize=16)
def _jitted_logits(model_config_json: str, spec: tasks.TaskSpec,
                   head_config_json: str):
  apply = apply_fn(ml_collections.ConfigDict(json.loads(model_config_json)),
                   spec, ml_collections.ConfigDict(json.loads(
                       head_config_json)))
  return jax.jit(lambda params, tokens: apply(params, None, tokens, False))


def logits_fn(model_config: ml_collections.ConfigDict, spec: tasks.TaskSpec,
              head_config: ml_collections.ConfigDict):
  """The compiled evaluation-mode model (no dropout, no input annotations).

  Returns:
    logits(params, tokens int [B, L]) -> float32 [B, K] (global tasks) or
    [B, L, K] (per-residue tasks).
  """
  return _jitted_logits(model_config.to_json(), spec, head_config.to_json())


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
    trunk_params = init_trunk(model_config, trunk_rng)
  else:
    params_io.check_structure(
        trunk_params,
        jax.eval_shape(lambda key: init_trunk(model_config, key), trunk_rng),
        'pretrained params')
  head_init = _jitted_head_init(spec.num_outputs, heads.feature_size(
      model_config, spec.per_residue, head_config.head_input))
  return hk.data_structures.merge(
      jax.tree_util.tree_map(jnp.asarray, trunk_params), head_init(head_rng))


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
    transformed = transform(model_config, spec, head_config)
    expected = jax.eval_shape(
        lambda: transformed.init(jax.random.PRNGKey(0),
                                 *_dummy_inputs(model_config), False))
    params_io.check_structure(params, expected, source)
    self.params = jax.tree_util.tree_map(jnp.asarray, params)
    self._logits = logits_fn(model_config, spec, head_config)

  def predict(self, seqs: Sequence[str], start_seq_len: int = 512,
              batch_size: int = 32) -> list[np.ndarray]:
    """Predicts every sequence, whatever its length.

    Sequences run in length buckets (`batching.length_buckets`), so none is
    cropped; each bucket's last batch is padded to its batch size, so each
    length compiles once.

    Args:
      seqs: [N] amino-acid sequences.
      start_seq_len: length of the first bucket; with
        `model.mask_padding=False` (the original's behaviour) predictions
        depend on it, so keep the length the model was trained at.
      batch_size: batch size at start_seq_len (halved per doubling).

    Returns:
      N float32 arrays in input order (see `tasks.predictions`): a scalar or
      [K] per protein for global tasks; [n] or [n, K] over the n residues for
      per-residue tasks.
    """
    results = [None] * len(seqs)
    for bucket in batching.length_buckets(seqs, start_seq_len, batch_size):
      for part in batching.batch_slices(len(bucket.indices),
                                        bucket.batch_size):
        indices = bucket.indices[part]
        tokens = tokenization.tokenize([seqs[i] for i in indices],
                                       bucket.seq_len)
        logits = self._logits(self.params, batching.pad_rows(
            tokens, bucket.batch_size, tokenization.PAD))
        out = np.asarray(predictions(self.spec, logits))
        for row, i in enumerate(indices):
          results[i] = (out[row, tasks.residue_slice(len(seqs[i]))]
                        if self.spec.per_residue else out[row])
    return results

  def save(self, path: str) -> None:
    """Writes the model to `path` (.npz) atomically."""
    arrays = params_io.flatten(jax.device_get(self.params))
    arrays[params_io.CONFIG_KEY] = np.array(self.model_config.to_json())
    arrays[_FINETUNING_KEY] = np.array(json.dumps(
        dict(task=self.spec._asdict(), head=self.head_config.to_dict())))
    with io_utils.atomic_path(path) as tmp, open(tmp, 'wb') as f:
      np.savez(f, **arrays)


def load_finetuned(path: str) -> FinetunedModel:
  """Reads a model written by `FinetunedModel.save`.

  Raises:
    ValueError: not a fine-tuned model file, or params that do not match its
      stored architecture, task or head.
  """
  arrays = params_io.read_npz(path)
  if _FINETUNING_KEY not in arrays:
    raise ValueError(
        f'{path}: not a fine-tuned model (no {_FINETUNING_KEY}); pretrained '
        'weights load with proteinbert.load_pretrained.')
  params, model_config = params_io.from_arrays(arrays, path)
  if model_config is None:
    raise ValueError(f'{path}: no {params_io.CONFIG_KEY}.')
  stored = json.loads(str(arrays[_FINETUNING_KEY]))
  spec = tasks.make_spec(**stored['task'])
  return FinetunedModel(params, model_config, spec,
                        make_head_config(**stored['head']), source=path)
