"""The assembled ProteinBERT model (Brandes et al., Bioinformatics 2022).

Axis letters: B batch, L length, C local channels, G global channels,
A annotations, V vocabulary.

Parameter paths (stable; weight conversion is a fixed table over them):
  protein_bert/token_embedding                  embeddings [V, C]
  protein_bert/annotation_input                 w [A, G], b [G]
  protein_bert/block_{i}/local/global_to_local  w [G, C], b [C]
  protein_bert/block_{i}/local/narrow_conv      w [kernel, C, C], b [C]
  protein_bert/block_{i}/local/wide_conv        w [kernel, C, C], b [C]
  protein_bert/block_{i}/local/self_attention/{query,key}  w [C, H * K],
                                                b [H * K]
  protein_bert/block_{i}/local/self_attention/{value,output}  w [C, C], b [C]
  protein_bert/block_{i}/local/conv_norm        scale [C], offset [C]
  protein_bert/block_{i}/local/dense            w [C, C], b [C]
  protein_bert/block_{i}/local/dense_norm       scale [C], offset [C]
  protein_bert/block_{i}/global/dense_1         w [G, G], b [G]
  protein_bert/block_{i}/global/global_attention  query_w [H, G, K],
                                                key_w [H, C, K], value_w [H, C, G/H]
  protein_bert/block_{i}/global/attention_norm  scale [G], offset [G]
  protein_bert/block_{i}/global/dense_2         w [G, G], b [G]
  protein_bert/block_{i}/global/dense_norm      scale [G], offset [G]
  protein_bert/token_head                       w [C, V], b [V]
  protein_bert/annotation_head                  w [G, A], b [A]
with i = 1..num_blocks. An ablation that removes a layer removes its entry and
moves nothing else. The self_attention entries exist only with
local_mixer='self_attention', which has no narrow_conv or wide_conv.
"""

from typing import Callable, NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import ml_collections

from proteinbert import compiled
from proteinbert import global_track
from proteinbert import layers
from proteinbert import local_track
from proteinbert import precision
from proteinbert import tokenization


class ModelOutput(NamedTuple):
  """What the model computes; every array in the policy's output dtype.

  Attributes:
    token_logits: [B, L, V] logits of the original token at every position.
    annotation_logits: [B, A] logits of every annotation.
    local_hidden: per-residue representations [B, L, C], two per block in
      order (after the convolutional merge, after the dense merge).
    global_hidden: per-protein representations [B, G]: the annotation input
      layer, then two per block in order (after the attention merge, after
      the dense merge).
    global_attention: the global attention's weights [B, H, L], one per block
      in order (`stacked_attention`); empty without global attention.
  """
  token_logits: jnp.ndarray
  annotation_logits: jnp.ndarray
  local_hidden: tuple
  global_hidden: tuple
  global_attention: tuple = ()


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the key when the model config is inconsistent."""
  positive = ('vocab_size', 'num_blocks', 'local_dim', 'global_dim',
              'num_heads', 'key_size', 'conv_kernel_size',
              'wide_conv_dilation')
  for key in positive:
    if int(config[key]) < 1:
      raise ValueError(f'model.{key} must be positive, got {config[key]}.')
  # Zero annotations: a sequence-only model (token objective only).
  if int(config.num_annotations) < 0:
    raise ValueError('model.num_annotations must be >= 0, got '
                     f'{config.num_annotations}.')
  if config.global_dim % config.num_heads:
    raise ValueError(
        f'model.global_dim ({config.global_dim}) must be divisible by '
        f'model.num_heads ({config.num_heads}): each head gets '
        'global_dim / num_heads value channels.')
  if config.conv_kernel_size % 2 == 0:
    raise ValueError(
        f'model.conv_kernel_size must be odd for symmetric \'same\' padding, '
        f'got {config.conv_kernel_size}.')
  layers.get_activation(config.activation)
  precision.get_policy(config.precision)
  local_track.validate_config(config)


class ProteinBertBlock(hk.Module):
  """One block: the local half, then the global half that reads its output."""

  def __init__(self, config: ml_collections.ConfigDict, name: str):
    super().__init__(name=name)
    self._config = config

  def __call__(self, local, global_, mask):
    """[B, L, C], [B, G], [B, L] bool or None -> hidden states and outputs
    (local, global), and the global attention's weights [B, H, L] or None."""
    local_states = local_track.LocalBlock(self._config)(local, global_, mask)
    global_states, weights = global_track.GlobalBlock(self._config)(
        global_, local_states[-1], mask)
    return local_states, global_states, weights


class ProteinBert(hk.Module):
  """ProteinBERT: token and annotation reconstruction from corrupted inputs."""

  def __init__(self, config: ml_collections.ConfigDict,
               name: str = 'protein_bert'):
    """Constructs the model.

    Args:
      config: the model config (`proteinbert.config.get_model_config()`).
      name: module name.
    """
    super().__init__(name=name)
    validate_config(config)
    self._config = config

  def __call__(self, tokens: jnp.ndarray,
               annotations: jnp.ndarray) -> ModelOutput:
    """Applies the model.

    Args:
      tokens: int [B, L] token indices (`proteinbert.tokenize`).
      annotations: [B, A] 0/1 input annotations (any float or int dtype).

    Returns:
      The ModelOutput.
    """
    c = self._config
    act = layers.get_activation(c.activation)
    batch, length = tokens.shape
    chex.assert_shape(annotations, (batch, c.num_annotations))
    mask = (tokens != tokenization.PAD) if c.mask_padding else None

    local = hk.Embed(
        c.vocab_size, c.local_dim,
        w_init=hk.initializers.RandomUniform(-0.05, 0.05),
        name='token_embedding')(tokens)
    if not c.annotation_input:
      annotations = jnp.zeros_like(annotations)
    global_ = act(layers.dense(c.global_dim, 'annotation_input')(
        annotations.astype(local.dtype)))

    local_hidden, global_hidden, attention = [], [global_], []
    for i in range(1, c.num_blocks + 1):
      local_states, global_states, weights = ProteinBertBlock(
          c, name=f'block_{i}')(local, global_, mask)
      local, global_ = local_states[-1], global_states[-1]
      local_hidden.extend(local_states)
      global_hidden.extend(global_states)
      if weights is not None:
        attention.append(weights)

    token_logits = layers.dense(c.vocab_size, 'token_head')(local)
    annotation_logits = layers.dense(c.num_annotations,
                                     'annotation_head')(global_)
    chex.assert_shape(token_logits, (batch, length, c.vocab_size))
    chex.assert_shape(annotation_logits, (batch, c.num_annotations))
    return ModelOutput(token_logits, annotation_logits, tuple(local_hidden),
                       tuple(global_hidden), tuple(attention))


def forward_fn(
    config: ml_collections.ConfigDict,
) -> Callable[[jnp.ndarray, jnp.ndarray], ModelOutput]:
  """The untransformed forward function, under the config's jmp policy.

  `compiled.build(forward_fn, config)` transforms and compiles it.

  Args:
    config: the model config.

  Returns:
    forward(tokens int [B, L], annotations [B, A]) -> ModelOutput.
  """
  validate_config(config)

  def forward(tokens, annotations):
    with precision.policy_scope(ProteinBert, config.precision):
      return ProteinBert(config)(tokens, annotations)

  return forward


def concatenated_hidden(
    output: ModelOutput) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The original's `get_model_with_hidden_layers_as_outputs` concatenation.

  Per residue: every LayerNorm output in model order, then the token softmax
  (1,562 channels at the published size). Per protein: the annotation input
  layer, every LayerNorm output in model order, then the annotation sigmoid
  (15,599 channels at the published size).

  Args:
    output: the model's output.

  Returns:
    (local [B, L, 2 * num_blocks * C + V], global [B, G * (2 * num_blocks + 1)
    + A]), float32.
  """
  f32 = lambda xs: [x.astype(jnp.float32) for x in xs]
  local = jnp.concatenate(
      f32(output.local_hidden) + [jax.nn.softmax(
          output.token_logits.astype(jnp.float32), axis=-1)], axis=-1)
  global_ = jnp.concatenate(
      f32(output.global_hidden) + [jax.nn.sigmoid(
          output.annotation_logits.astype(jnp.float32))], axis=-1)
  return local, global_


def stacked_attention(output: ModelOutput) -> jnp.ndarray:
  """The global attention weights of every block, as one array.

  Block i's head h weighs position l by softmax_l(q_h . k_hl / sqrt(K)), its
  query from the block's input global vector and its keys from the block's
  per-residue output (`global_track.GlobalAttention`). With
  `mask_padding` the weights sum to 1 over the unpadded positions and are 0
  at <PAD>; without it (the original) <PAD> positions are attended too.

  Args:
    output: the model's output.

  Returns:
    float32 [B, num_blocks, H, L].

  Raises:
    ValueError: the model has no global attention.
  """
  if not output.global_attention:
    raise ValueError('The model has no global attention '
                     '(model.global_attention=False).')
  return jnp.stack(output.global_attention, axis=1).astype(jnp.float32)


def num_params(params: hk.Params) -> int:
  """Total number of scalars in a parameter tree."""
  return sum(x.size for x in jax.tree_util.tree_leaves(params))


def init_params(config: ml_collections.ConfigDict, rng: jax.Array,
                seq_len: int = 16, batch_size: int = 1) -> hk.Params:
  """Fresh parameters; they do not depend on seq_len or batch_size."""
  tokens = jnp.full((batch_size, seq_len), tokenization.PAD, jnp.int32)
  annotations = jnp.zeros((batch_size, config.num_annotations), jnp.float32)
  return compiled.build(forward_fn, config).init(rng, tokens, annotations)


def lower_forward(config: ml_collections.ConfigDict, batch_size: int,
                  seq_len: int) -> jax.stages.Lowered:
  """The jitted forward pass lowered for [batch_size, seq_len] tokens.

  Args:
    config: the model config.
    batch_size: B.
    seq_len: L.

  Returns:
    The lowered `apply(params, None, tokens int32 [B, L], annotations f32
    [B, A])`; `.cost_analysis()` counts its FLOPs, `.compile()` builds it.
  """
  params = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))
  tokens = jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32)
  annotations = jax.ShapeDtypeStruct((batch_size, config.num_annotations),
                                     jnp.float32)
  return compiled.build(forward_fn, config).apply.lower(
      params, None, tokens, annotations)
