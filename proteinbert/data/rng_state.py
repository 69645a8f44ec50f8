"""numpy Generator state as a plain integer array, for loader checkpoints.

`Generator.bit_generator.state` is a nested dict holding 128-bit integers,
which npz, msgpack and most checkpoint formats cannot store; as six uint64
words it fits any of them.
"""

import numpy as np

_WORD = 1 << 64


def to_array(rng: np.random.Generator) -> np.ndarray:
  """uint64 [6]: the full state of a PCG64 generator (numpy's default).

  Raises:
    ValueError: `rng` uses another bit generator.
  """
  state = rng.bit_generator.state
  if state['bit_generator'] != 'PCG64':
    raise ValueError(
        f"Expected a PCG64 generator, got {state['bit_generator']}.")
  words = []
  for value in (state['state']['state'], state['state']['inc']):
    words += [value // _WORD, value % _WORD]
  words += [state['has_uint32'], state['uinteger']]
  return np.array(words, dtype=np.uint64)


def from_array(words: np.ndarray) -> np.random.Generator:
  """The generator whose state `to_array` wrote (uint64 [6])."""
  words = [int(w) for w in np.asarray(words, dtype=np.uint64)]
  if len(words) != 6:
    raise ValueError(f'Expected 6 words of PCG64 state, got {len(words)}.')
  bit_generator = np.random.PCG64()
  bit_generator.state = {
      'bit_generator': 'PCG64',
      'state': {'state': words[0] * _WORD + words[1],
                'inc': words[2] * _WORD + words[3]},
      'has_uint32': words[4],
      'uinteger': words[5],
  }
  return np.random.Generator(bit_generator)
