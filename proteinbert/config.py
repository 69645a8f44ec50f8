"""The default configuration: the published ProteinBERT and its pretraining.

Every experiment config in `experiments/configs/` starts from `get_config()`
and changes only what differs. The returned ConfigDict is locked, so a
misspelt key fails instead of being silently added.
"""

import math

import ml_collections

from proteinbert import tokenization


def get_model_config() -> ml_collections.ConfigDict:
  """The architecture; defaults are the published model (15,981,321 params)."""
  config = ml_collections.ConfigDict()
  # Token vocabulary size; the published weights use the original 26 tokens.
  config.vocab_size = tokenization.VOCAB_SIZE
  # Number of GO annotations the model reads and predicts (8,943 published).
  config.num_annotations = 8943
  # Number of blocks, each a local (per-residue) and a global (per-protein) part.
  config.num_blocks = 6
  # Channels C of the local track.
  config.local_dim = 128
  # Channels G of the global track; must be divisible by num_heads.
  config.global_dim = 512
  # Heads H of the global attention; value size per head is global_dim / H.
  config.num_heads = 4
  # Key (and query) size K per attention head.
  config.key_size = 64
  # Kernel width of both the narrow and the wide convolution.
  config.conv_kernel_size = 9
  # Dilation rate of the wide convolution (the narrow one is undilated).
  config.wide_conv_dilation = 5
  # Activation of every dense and conv layer: 'gelu' is the exact (erf) GELU
  # that Keras uses; 'gelu_tanh' is the tanh approximation; also 'relu'.
  config.activation = 'gelu'
  # LayerNorm epsilon: Keras' default, which the published weights assume.
  config.layer_norm_eps = 1e-3
  # False reproduces the original: <PAD> positions are ordinary positions for
  # the convolutions and the global attention. True zeroes the local
  # representation at <PAD> positions before every convolution and removes
  # them from the attention softmax, so a protein's outputs do not depend on
  # how far its batch was padded. The published weights were trained with
  # False; with True their outputs change slightly near the C-terminus.
  config.mask_padding = False
  # Ablation switches; the parameter paths of the layers that remain do not
  # change when one is turned off.
  # Narrow (undilated) convolution in every block.
  config.narrow_conv = True
  # Wide (dilated) convolution in every block.
  config.wide_conv = True
  # Dense layer that broadcasts the global representation to every residue.
  config.global_to_local = True
  # Global attention from the global track over the residues.
  config.global_attention = True
  # Annotation input; False feeds the global track a zero vector (through the
  # input dense layer's bias only).
  config.annotation_input = True
  # Sequence mixer of the local track: 'conv' is the paper's narrow and wide
  # convolutions; 'self_attention' puts standard multi-head self-attention
  # with rotary positions in their place (num_heads heads of key_size, value
  # size local_dim / num_heads), a reference whose cost is quadratic in L.
  config.local_mixer = 'conv'
  # jmp policy: 'params=float32,compute=bfloat16,output=float32' for
  # accelerators. LayerNorm and softmax always run in float32.
  config.precision = 'params=float32,compute=float32,output=float32'
  return config


def validate_model_config(config: ml_collections.ConfigDict,
                          source: str = 'model config') -> None:
  """Raises ValueError naming `source` and the key if no model can have it.

  Every loader of weights calls this, so a file with an impossible config
  fails when it is read rather than as NaN outputs later.

  Args:
    config: a model config (keys of `get_model_config()`).
    source: how to name the config in errors (e.g. the file it came from).
  """
  defaults = get_model_config()
  missing = sorted(set(defaults.keys()) - set(config.keys()))
  unknown = sorted(set(config.keys()) - set(defaults.keys()))
  if missing or unknown:
    raise ValueError(f'{source}: model config keys differ from '
                     f'get_model_config(): missing {missing}, unknown '
                     f'{unknown}.')
  for key, default in defaults.items():
    value = config[key]
    # A float key may hold an int (JSON writes 1.0 as 1); bool is not an int.
    expected = (int, float) if isinstance(default, float) else (type(default),)
    if type(value) not in expected:
      raise ValueError(f'{source}: model.{key} must be a '
                       f'{type(default).__name__}, got '
                       f'{type(value).__name__} {value!r:.60}.')
  if not 0 < config.layer_norm_eps < math.inf:  # Also refuses NaN.
    raise ValueError(f'{source}: model.layer_norm_eps must be a positive '
                     f'number, got {config.layer_norm_eps}.')
  # Imported here: the model pulls in JAX, which the data tools that import
  # this file never need.
  from proteinbert import model as model_lib
  try:
    model_lib.validate_config(config)
  except ValueError as e:
    raise ValueError(f'{source}: {e}') from e


def get_data_config() -> ml_collections.ConfigDict:
  """The pretraining data pipeline; defaults are the original's."""
  config = ml_collections.ConfigDict()
  # HDF5 dataset to pretrain on; '' means the small demo dataset bundled with
  # the package.
  config.dataset_path = ''
  # (seq_len, batch_size) of each length episode; batch sizes are global
  # (summed over processes) and seq_len counts <START> and <END>.
  config.episodes = ((128, 128), (512, 64), (1024, 32))
  # Batches in an epoch; an epoch trains one episode only.
  config.batches_per_epoch = 100
  # Chance of replacing each input token with a uniformly random token.
  config.seq_noise_prob = 0.05
  # The original corrupts <PAD> positions too; False keeps them <PAD>, which
  # model.mask_padding=True needs to tell padding from residues.
  config.corrupt_padding = True
  # Chance of dropping each true input annotation.
  config.annotation_removal_prob = 0.25
  # Chance of switching on each false input annotation.
  config.annotation_addition_prob = 1e-4
  # Chance of hiding all of a protein's input annotations.
  config.annotation_hide_prob = 0.5
  # Sharpness of the episode assignment: a protein of tokenized length l joins
  # the episode of length s with probability ~ exp(-gamma * max(l/s, s/l)).
  config.length_gamma = 1.0
  # Proteins read from the dataset per load, by each process.
  config.load_chunk_size = 100_000
  # When to re-select the episode (the one with the most queued proteins):
  # 'steps' every epochs_per_episode epochs, reproducibly; 'wall_clock' once
  # minutes_per_episode have passed, as the original (single process only).
  config.episode_switch = 'steps'
  # Epochs per episode under 'steps'. The original's 15 minutes are a
  # hardware-dependent number of epochs; set this to match your step time.
  config.epochs_per_episode = 20
  # Minutes per episode under 'wall_clock' (the original's 15).
  config.minutes_per_episode = 15.0
  # Batches the background thread keeps ready ahead of the training step.
  config.prefetch_depth = 4
  # Seeds every random draw of the pipeline (assignment, crops, corruption).
  config.seed = 0
  return config


def get_train_config() -> ml_collections.ConfigDict:
  """Optimisation; defaults are the original's pretraining settings."""
  config = ml_collections.ConfigDict()
  # Updates to run in total (resumes included); -1 runs until interrupted, as
  # the original does.
  config.num_steps = -1
  # LAMB learning rate (the original's 2e-4).
  config.learning_rate = 2e-4
  # LAMB decoupled weight decay (the original uses none).
  config.weight_decay = 0.0
  # Clip gradients to this global norm before LAMB; 0 disables (original).
  config.grad_clip_norm = 0.0
  # Weight of the annotation loss relative to the token loss.
  config.annotation_loss_weight = 1.0
  # Initial dynamic loss scale, used only under float16 compute.
  config.initial_loss_scale = 2.0**15
  # Seeds the parameter initialisation and the per-step PRNG keys.
  config.seed = 0
  # Keras' ReduceLROnPlateau on each epoch's mean training loss.
  config.plateau = ml_collections.ConfigDict()
  # False keeps the learning rate constant.
  config.plateau.enabled = True
  # Multiply the learning rate by this on a plateau.
  config.plateau.factor = 0.8
  # Epochs without improvement before a reduction.
  config.plateau.patience_epochs = 20
  # Improvement smaller than this (absolute, in loss units) does not count.
  config.plateau.min_delta = 1e-4
  # Floor of the learning rate.
  config.plateau.min_learning_rate = 5e-5
  # Write metrics every this many steps.
  config.log_every_steps = 100
  return config


def get_checkpoint_config() -> ml_collections.ConfigDict:
  """When checkpoints are written and which are kept."""
  config = ml_collections.ConfigDict()
  # Save after every this many epochs (the original's 10).
  config.every_epochs = 10
  # Keep every this-many-th save for good; the others are deleted once a newer
  # one exists (the original's 25).
  config.keep_every = 25
  return config


def get_eval_config() -> ml_collections.ConfigDict:
  """Held-out metrics during pretraining."""
  config = ml_collections.ConfigDict()
  # Evaluate after every this many epochs; 0 disables.
  config.every_epochs = 10
  # Held-out proteins: the dataset's test-set proteins (whose annotations
  # training never sees), up to this many.
  config.num_proteins = 512
  # Sequence length and batch size of the held-out batches.
  config.seq_len = 512
  config.batch_size = 32
  return config


def _problems(section: str, config: ml_collections.ConfigDict,
              rules: dict) -> list[str]:
  """`section.key: why` for each key of `config` whose rule fails."""
  return [f'{section}.{key} {why}, got {config[key]!r}'
          for key, (holds, why) in rules.items() if not holds(config[key])]


def _positive(x) -> bool:
  return x > 0 and not isinstance(x, bool)


def _probability(x) -> bool:
  return 0 <= x <= 1


def _episodes_problems(episodes) -> list[str]:
  """Each (seq_len, batch_size): an int length with room for a residue and
  a positive int batch size."""
  try:
    pairs = [tuple(e) for e in episodes]
  except TypeError:
    pairs = [()]
  if not pairs or any(
      len(p) != 2 or not all(isinstance(v, int) for v in p)
      or p[0] < 3 or p[1] < 1 for p in pairs):
    return ['data.episodes must be (seq_len >= 3, batch_size >= 1) pairs of '
            f'ints, got {episodes!r}']
  return []


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError listing every impossible value of a pretraining
  config (`get_config()`), before any work starts.

  Catches what would otherwise fail late or silently: a batch size of zero
  or below (a NaN loss), zero batches per epoch, log_every_steps=0 (a
  division by zero after compiling), probabilities outside [0, 1], ...
  """
  validate_model_config(config.model)
  data, train = config.data, config.train
  problems = _episodes_problems(data.episodes)
  problems += _problems('data', data, {
      'batches_per_epoch': (_positive, 'must be positive'),
      'seq_noise_prob': (_probability, 'must be in [0, 1]'),
      'annotation_removal_prob': (_probability, 'must be in [0, 1]'),
      'annotation_addition_prob': (_probability, 'must be in [0, 1]'),
      'annotation_hide_prob': (_probability, 'must be in [0, 1]'),
      'length_gamma': (lambda x: x >= 0, 'must be 0 or more'),
      'load_chunk_size': (_positive, 'must be positive'),
      'episode_switch': (lambda x: x in ('steps', 'wall_clock'),
                         "must be 'steps' or 'wall_clock'"),
      'epochs_per_episode': (_positive, 'must be positive'),
      'minutes_per_episode': (_positive, 'must be positive'),
      'prefetch_depth': (_positive, 'must be positive'),
  })
  problems += _problems('train', train, {
      'num_steps': (lambda x: x >= -1, 'must be -1 (no limit) or more'),
      'learning_rate': (lambda x: 0 < x < math.inf, 'must be positive'),
      'weight_decay': (lambda x: 0 <= x < math.inf, 'must be 0 or more'),
      'grad_clip_norm': (lambda x: 0 <= x < math.inf, 'must be 0 or more'),
      'annotation_loss_weight': (lambda x: 0 <= x < math.inf,
                                 'must be 0 or more'),
      'initial_loss_scale': (lambda x: 0 < x < math.inf, 'must be positive'),
      'log_every_steps': (_positive, 'must be positive'),
  })
  problems += _problems('train.plateau', train.plateau, {
      'factor': (lambda x: 0 < x <= 1, 'must be in (0, 1]'),
      'patience_epochs': (lambda x: x >= 0, 'must be 0 or more'),
      'min_delta': (lambda x: 0 <= x < math.inf, 'must be 0 or more'),
      'min_learning_rate': (lambda x: 0 <= x < math.inf,
                            'must be 0 or more'),
  })
  problems += _problems('checkpoint', config.checkpoint, {
      'every_epochs': (_positive, 'must be positive'),
      'keep_every': (_positive, 'must be positive'),
  })
  problems += _problems('eval', config.eval, {
      'every_epochs': (lambda x: x >= 0, 'must be 0 (off) or more'),
      'num_proteins': (lambda x: x >= 0, 'must be 0 or more'),
      'seq_len': (lambda x: x >= 3, 'must be 3 or more'),
      'batch_size': (_positive, 'must be positive'),
  })
  if problems:
    raise ValueError('Invalid pretraining config: ' + '; '.join(problems)
                     + '.')


def get_config() -> ml_collections.ConfigDict:
  """The full default configuration, locked."""
  config = ml_collections.ConfigDict()
  config.model = get_model_config()
  config.data = get_data_config()
  config.train = get_train_config()
  config.checkpoint = get_checkpoint_config()
  config.eval = get_eval_config()
  config.lock()
  return config
