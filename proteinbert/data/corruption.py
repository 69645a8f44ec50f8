"""Input corruption and loss weights of the pretraining task.

ProteinBERT learns by denoising (Brandes et al. 2022, "Pretraining"; the
original `EpochGenerator._encode_epoch`): the model sees corrupted tokens and
corrupted annotations and predicts the originals. Tokens are replaced by a
uniformly random token (any of the 26, special tokens included) with a small
probability; each true annotation is dropped with probability 0.25, each false
one switched on with probability 1e-4, and all of a protein's input
annotations are hidden half of the time.

Everything here is vectorised and draws only as many random numbers as the
corruption needs: annotation noise touches the few true annotations and a
binomial number of added ones instead of every cell of the [B, A] matrix.
"""

import numpy as np

from proteinbert import tokenization


def corrupt_tokens(targets: np.ndarray, noise_prob: float,
                   corrupt_padding: bool,
                   rng: np.random.Generator) -> np.ndarray:
  """Replaces each token by a uniformly random token with `noise_prob`.

  As in the original, a replacement equals the original token 1 time in 26.

  Args:
    targets: int32 [B, L] original tokens.
    noise_prob: replacement probability per position.
    corrupt_padding: whether `<PAD>` positions may be replaced too, as the
      original does.
    rng: draws B * L uniforms, then one token per replaced position.

  Returns:
    int32 [B, L] corrupted tokens.
  """
  replace = rng.random(targets.shape) < noise_prob
  if not corrupt_padding:
    replace &= targets != tokenization.PAD
  tokens = targets.copy()
  tokens[replace] = rng.integers(
      0, tokenization.VOCAB_SIZE, size=int(replace.sum()), dtype=targets.dtype)
  return tokens


def corrupt_annotations(targets: np.ndarray, removal_prob: float,
                        addition_prob: float, hide_prob: float,
                        rng: np.random.Generator) -> np.ndarray:
  """The original's annotation noise, applied to every protein independently.

  Args:
    targets: bool [B, A] true annotations.
    removal_prob: chance of dropping each true annotation.
    addition_prob: chance of switching on each false annotation.
    hide_prob: chance of hiding all of a protein's input annotations.
    rng: the random source.

  Returns:
    bool [B, A] input annotations.
  """
  # Flat cell indices: 1-D nonzero is an order of magnitude faster than 2-D.
  flat_targets = np.ascontiguousarray(targets).reshape(-1)
  flat_inputs = np.zeros_like(flat_targets)
  true_cells = np.flatnonzero(flat_targets)
  flat_inputs[true_cells[rng.random(true_cells.size) >= removal_prob]] = True

  # Independent Bernoulli(p) draws over M cells are the same distribution as a
  # Binomial(M, p) count of cells chosen uniformly without replacement, which
  # costs O(count) instead of O(M).
  num_added = rng.binomial(flat_targets.size, addition_prob)
  added = rng.choice(flat_targets.size, size=num_added, replace=False)
  flat_inputs[added[~flat_targets[added]]] = True

  inputs = flat_inputs.reshape(targets.shape)
  inputs[rng.random(len(targets)) < hide_prob] = False
  return inputs


def token_weights(targets: np.ndarray) -> np.ndarray:
  """float32 [B, L]: 1 at the positions the token loss counts (not `<PAD>`).

  Args:
    targets: int [B, L] original tokens.
  """
  return (targets != tokenization.PAD).astype(np.float32)


def annotation_weights(targets: np.ndarray) -> np.ndarray:
  """float32 [B]: 1 for proteins with at least one true annotation.

  A protein without annotations may simply be unannotated, so the original
  leaves it out of the annotation loss rather than teach "no annotation".

  Args:
    targets: bool [B, A] true annotations.
  """
  return targets.any(axis=1).astype(np.float32)
