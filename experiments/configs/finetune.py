"""Fine-tuning configs: `finetune.py:<task>[,<variant>]`.

<task>: a benchmark of the paper (file prefix in the benchmarks directory:
  signalP_binary, ProFET_NP_SP_Cleaved, disorder_secondary_structure,
  secondary_structure, remote_homology, scop, stability, fluorescence), or
  `custom` for your own CSVs: set --config.data.directory,
  --config.data.name and --config.task.kind.
<variant>:
  paper    (default) the published architecture and the original demo's
           schedule; set --config.init_checkpoint to the official weights or
           one of our checkpoints (empty = random init of the full model).
  scratch  random initialisation of a smaller trunk that trains on a 2-core
           CPU in minutes (the paper's "no pretraining" scores used the full
           model): 2 blocks, 64 local / 128 global channels, 16 annotation
           units, padding masked; no frozen stage (nothing pretrained to
           protect); batch 64 and Adam at 1e-3 (the demo's 1e-4 suits
           pretrained weights), at most 10 epochs; for benchmarks whose
           sequences are all short, a shorter length and no final stage.
  small    the architecture of the shipped `swissprot-small` (4 blocks,
           128 local / 256 global channels, its 2,572 GO outputs) with the
           paper's staged schedule cut to a CPU budget: at most 1,000
           records per split, at most 4 epochs per stage, the shortest
           fitting length up to 256 and no final long-sequence stage. The
           transfer comparison runs it twice, changing only
           --config.init_checkpoint (swissprot-small vs empty = random
           init); see experiments/results/transfer/.
  tiny     a seconds-long smoke run (tiny trunk, 1 epoch, 64 records/split).
"""

from proteinbert.finetuning import benchmarks
from proteinbert.finetuning import config as config_lib

# Shortest power-of-two tokenized length that holds every sequence of the
# benchmark (with <START> and <END>); the scratch variant trains there.
_FITTING_SEQ_LEN = {'signalP_binary': 128, 'stability': 64,
                    'fluorescence': 256}


def _scratch(config, name):
  model = config.model
  model.num_blocks = 2
  model.local_dim = 64
  model.global_dim = 128
  model.num_heads = 4
  model.key_size = 32
  # Without pretraining there are no annotations to read or predict.
  model.num_annotations = 16
  model.mask_padding = True
  train = config.train
  train.begin_frozen = False
  train.batch_size = 64
  train.learning_rate = 1e-3
  train.max_epochs_per_stage = 10
  if name in _FITTING_SEQ_LEN:
    train.seq_len = _FITTING_SEQ_LEN[name]
    train.final_epochs = 0


# The GO vocabulary size of the shipped swissprot-small (its annotation head).
_SWISSPROT_SMALL_ANNOTATIONS = 2572


def _small(config, name):
  config.model.update(dict(num_blocks=4, local_dim=128, global_dim=256,
                           num_heads=4, key_size=32,
                           num_annotations=_SWISSPROT_SMALL_ANNOTATIONS))
  config.data.limit = 1000
  train = config.train
  train.max_epochs_per_stage = 4
  train.seq_len = min(_FITTING_SEQ_LEN.get(name, 256), 256)
  train.final_epochs = 0


def _tiny(config):
  config.model.update(dict(num_annotations=8, num_blocks=1, local_dim=8,
                           global_dim=16, num_heads=2, key_size=4,
                           mask_padding=True))
  config.data.limit = 64
  config.train.update(dict(seq_len=128, batch_size=8, max_epochs_per_stage=1,
                           final_seq_len=256, learning_rate=1e-3))
  config.eval.batch_size = 8


def get_config(preset: str = 'signalP_binary'):
  name, _, variant = preset.partition(',')
  variant = variant or 'paper'
  config = config_lib.get_config()
  if name != 'custom':
    if name not in benchmarks.BENCHMARKS:
      raise ValueError(f'Unknown task {name!r}; expected custom or one of '
                       f'{sorted(benchmarks.BENCHMARKS)}.')
    config.data.name = name
    config.task.kind = benchmarks.BENCHMARKS[name].kind
  if variant == 'scratch':
    _scratch(config, name)
  elif variant == 'small':
    _small(config, name)
  elif variant == 'tiny':
    _tiny(config)
  elif variant != 'paper':
    raise ValueError(f'Unknown variant {variant!r}; expected paper, scratch, '
                     'small or tiny.')
  return config
