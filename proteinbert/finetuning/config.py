"""The default fine-tuning configuration: the original's demo settings.

`experiments/configs/finetune.py` starts from `get_config()` and sets the task
(one preset per benchmark). The returned ConfigDict is locked, so a misspelt
key fails instead of being silently added.
"""

import ml_collections

from proteinbert import config as config_lib


def get_config() -> ml_collections.ConfigDict:
  """The full default fine-tuning configuration, locked."""
  config = ml_collections.ConfigDict()
  # The trunk for random initialisation. With init_checkpoint the
  # architecture is the checkpoint's; only mask_padding and precision (how
  # the model runs, not what it is) are taken from here.
  config.model = config_lib.get_model_config()
  # Where the trunk starts: '' random initialisation; else the official
  # pickle, one of our .npz parameter files, or a pretraining checkpoint.
  config.init_checkpoint = ''

  config.task = ml_collections.ConfigDict()
  # One of proteinbert.finetuning.tasks.KINDS, e.g. 'global_binary'.
  config.task.kind = 'global_binary'
  # Class names in output order (categorical, multi-label); () infers them
  # from the labels of every split present, sorted.
  config.task.classes = ()
  # Numeric tasks learn standardised targets (train mean and std); the saved
  # model maps predictions back. The original regresses raw labels.
  config.task.standardize = True

  config.head = ml_collections.ConfigDict()
  # 'hidden': the concatenated hidden layers (the original demo's choice);
  # 'output': the pretraining outputs (token / annotation probabilities).
  config.head.head_input = 'hidden'
  # Dropout before the head's dense layer (the original's 0.5).
  config.head.dropout_rate = 0.5

  config.data = ml_collections.ConfigDict()
  # Directory with NAME.train.csv / NAME.valid.csv / NAME.test.csv.
  config.data.directory = '../shared/benchmarks'
  # The task's file prefix, e.g. 'signalP_binary'.
  config.data.name = ''
  # Share of the training pool carved off as validation when there is no
  # valid split.
  config.data.valid_fraction = 0.1
  # Seeds the carving and the `limit` subsampling.
  config.data.seed = 0
  # Keep at most this many random records of each split (smoke runs); 0
  # keeps all.
  config.data.limit = 0

  config.train = ml_collections.ConfigDict()
  # 'adam' (the original's fine-tuning optimizer) or 'lamb'.
  config.train.optimizer = 'adam'
  # Tokenized length (<START>, <END> included) of the frozen and 'all'
  # stages; longer training sequences sit those stages out.
  config.train.seq_len = 512
  # Sequences per batch at seq_len.
  config.train.batch_size = 32
  # Epoch limit of the frozen and 'all' stages (early stopping ends sooner).
  config.train.max_epochs_per_stage = 40
  # Stage 1: train only the head on the frozen pretrained trunk.
  config.train.begin_frozen = True
  # Learning rate of the frozen stage (the demo's 1e-2).
  config.train.frozen_learning_rate = 1e-2
  # Learning rate of the 'all' stage (the demo's 1e-4).
  config.train.learning_rate = 1e-4
  # Epochs of the final stage at final_seq_len; 0 skips it.
  config.train.final_epochs = 1
  # Tokenized length of the final stage (batch size scaled down to match).
  config.train.final_seq_len = 1024
  # Learning rate of the final stage (the demo's 1e-5).
  config.train.final_learning_rate = 1e-5
  # Decoupled weight decay of the optimizer (the original uses none).
  config.train.weight_decay = 0.0
  # Clip gradients to this global norm; 0 disables (the original).
  config.train.grad_clip_norm = 0.0
  # Initial dynamic loss scale, used only under float16 compute.
  config.train.initial_loss_scale = 2.0**15
  # Keras' ReduceLROnPlateau on the validation loss after each epoch (the
  # demo's callback), restarted with every stage.
  config.train.plateau = ml_collections.ConfigDict()
  # False keeps each stage's learning rate constant.
  config.train.plateau.enabled = True
  # Multiply the learning rate by this on a plateau.
  config.train.plateau.factor = 0.25
  # Epochs without improvement before a reduction.
  config.train.plateau.patience_epochs = 1
  # Improvement smaller than this (absolute, in loss units) does not count.
  config.train.plateau.min_delta = 1e-4
  # Floor of the learning rate.
  config.train.plateau.min_learning_rate = 1e-5
  # Keras' EarlyStopping on the validation loss, restarted with every stage.
  config.train.early_stopping = ml_collections.ConfigDict()
  # Epochs without a new best validation loss before a stage stops; the
  # stage's best parameters are then restored.
  config.train.early_stopping.patience_epochs = 2
  # Seeds the head initialisation, dropout and shuffling.
  config.train.seed = 0

  config.checkpoint = ml_collections.ConfigDict()
  # A checkpoint is written after every epoch (<workdir>/checkpoints); the
  # newest this many are kept. The only key a resumed run may change.
  config.checkpoint.keep_last = 2

  config.eval = ml_collections.ConfigDict()
  # First length bucket of the evaluation by length; 0 means train.seq_len
  # (with model.mask_padding=False predictions depend on the padded length,
  # so evaluate at the length trained at).
  config.eval.start_seq_len = 0
  # Batch size of the first bucket, halved per doubling of the length.
  config.eval.batch_size = 32
  config.lock()
  return config
