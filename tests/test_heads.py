"""The fine-tuning model: parameter paths, head inputs, dropout, losses."""

import haiku as hk
import jax
import ml_collections
import numpy as np
import optax
import pytest

from proteinbert import model as model_lib
from proteinbert import tokenization
from proteinbert.finetuning import finetuned
from proteinbert.finetuning import heads
from proteinbert.finetuning import tasks
from tests import helpers

CONFIG = helpers.tiny_model_config(num_blocks=1)
TOKENS = tokenization.tokenize(['ACDEFG', 'KLM'], 12)


def _init(spec, head_input='hidden', dropout_rate=0.5):
  """(params, jitted apply(params, rng, is_training) on TOKENS)."""
  head = finetuned.make_head_config(head_input, dropout_rate)
  model = finetuned.build(CONFIG, spec, head)
  apply = lambda params, rng, is_training: model.apply(params, rng, TOKENS,
                                                       is_training)
  return (finetuned.init_params(CONFIG, spec, head, jax.random.PRNGKey(0)),
          apply)


@pytest.mark.parametrize('kind,head_input,features', [
    ('global_binary', 'hidden', 3 * 32 + 10),
    ('global_multilabel', 'output', 10),
    ('residue_categorical', 'hidden', 2 * 16 + 26),
    ('residue_numeric', 'output', 26),
])
def test_trunk_paths_are_the_pretrained_model_and_head_is_separate(
    kind, head_input, features):
  spec = tasks.make_spec(kind, 'abc')
  params, apply = _init(spec, head_input)
  trunk, head = heads.split_params(params)
  pretrained = jax.eval_shape(
      lambda: model_lib.init_params(CONFIG, jax.random.PRNGKey(0)))
  assert jax.tree_util.tree_structure(trunk) == (
      jax.tree_util.tree_structure(pretrained))
  assert list(head) == ['task_head/output']
  assert head['task_head/output']['w'].shape == (features, spec.num_outputs)
  logits = apply(params, None, False)
  assert logits.shape == (2,) + (12,) * spec.per_residue + (
      spec.num_outputs,)


def test_pretrained_trunk_is_used_and_checked():
  spec = tasks.make_spec('global_binary')
  head = finetuned.make_head_config()
  pretrained = model_lib.init_params(CONFIG, jax.random.PRNGKey(7))
  params = finetuned.init_params(CONFIG, spec, head, jax.random.PRNGKey(0),
                                 pretrained)
  np.testing.assert_array_equal(
      params['protein_bert/token_embedding']['embeddings'],
      pretrained['protein_bert/token_embedding']['embeddings'])
  other = jax.eval_shape(lambda: model_lib.init_params(
      helpers.tiny_model_config(num_blocks=2), jax.random.PRNGKey(0)))
  with pytest.raises(ValueError, match='unexpected.*block_2'):
    finetuned.init_params(CONFIG, spec, head, jax.random.PRNGKey(0), other)


def test_dropout_only_when_training():
  spec = tasks.make_spec('global_numeric')
  params, apply = _init(spec)
  rng = jax.random.PRNGKey(1)
  evals = [apply(params, r, False) for r in (rng, jax.random.PRNGKey(2))]
  np.testing.assert_array_equal(*evals)
  assert not np.allclose(apply(params, rng, True), evals[0])


def test_bad_head_input():
  spec = tasks.make_spec('global_binary')
  with pytest.raises(ValueError, match='head input'):
    heads.forward_fn(CONFIG, spec, ml_collections.ConfigDict(
        dict(head_input='last', dropout_rate=0.5)))


def test_losses_are_the_weighted_means_of_the_originals():
  rng = np.random.default_rng(0)
  weights = np.array([[0, 1, 1, 0], [0, 1, 0, 0]], np.float32)
  logits = rng.normal(size=(2, 4, 3)).astype(np.float32)
  binary = rng.integers(0, 2, (2, 4)).astype(np.float32)
  classes = rng.integers(0, 3, (2, 4))
  cases = [
      ('residue_binary', logits[..., :1], binary,
       optax.sigmoid_binary_cross_entropy(logits[..., 0], binary)),
      ('residue_categorical', logits, classes,
       optax.softmax_cross_entropy_with_integer_labels(logits, classes)),
      ('residue_numeric', logits[..., :1], binary,
       (logits[..., 0] - binary) ** 2),
  ]
  for kind, spec_logits, values, loss in cases:
    total, count = heads.weighted_loss_sum(
        tasks.make_spec(kind, 'abc'), spec_logits, values, weights)
    assert count == 3
    np.testing.assert_allclose(total, np.sum(np.asarray(loss) * weights),
                               rtol=1e-5)
  multi = rng.integers(0, 2, (2, 3)).astype(np.float32)
  total, count = heads.weighted_loss_sum(
      tasks.make_spec('global_multilabel', 'abc'), logits[:, 0], multi,
      np.ones(2, np.float32))
  expected = optax.sigmoid_binary_cross_entropy(logits[:, 0], multi).mean()
  np.testing.assert_allclose(total / count, expected, rtol=1e-5)


def test_split_params_partitions():
  params, _ = _init(tasks.make_spec('global_binary'))
  trunk, head = heads.split_params(params)
  merged = hk.data_structures.merge(trunk, head)
  assert sorted(merged) == sorted(params)
  assert not set(trunk) & set(head)
