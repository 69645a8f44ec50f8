"""Downstream fine-tuning: tasks, heads, the staged schedule, evaluation.

    from proteinbert import finetuning
    spec = finetuning.make_spec('global_binary')
    labels = finetuning.parse_labels(spec, seqs, label_texts)
    params = finetuning.init_params(model_config, spec, head_config, rng,
                                    trunk_params)   # None: random trunk
    params, history = finetuning.finetune(model_config, spec, head_config,
                                          params, (seqs, labels),
                                          (valid_seqs, valid_labels),
                                          config.train)
    model = finetuning.FinetunedModel(params, model_config, spec, head_config)
    model.save('model.npz'); model = finetuning.load_finetuned('model.npz')
    model.predict(new_seqs)
    finetuning.evaluate_by_length(model, test_seqs, test_labels).rows
"""

from proteinbert.finetuning.config import get_config
from proteinbert.finetuning.evaluate import evaluate_by_length
from proteinbert.finetuning.finetuned import FinetunedModel
from proteinbert.finetuning.finetuned import init_params
from proteinbert.finetuning.finetuned import load_finetuned
from proteinbert.finetuning.finetuned import make_head_config
from proteinbert.finetuning.tasks import make_spec
from proteinbert.finetuning.tasks import parse_labels
from proteinbert.finetuning.tasks import TaskSpec
from proteinbert.finetuning.train import finetune

__all__ = [
    'evaluate_by_length',
    'finetune',
    'FinetunedModel',
    'get_config',
    'init_params',
    'load_finetuned',
    'make_head_config',
    'make_spec',
    'parse_labels',
    'TaskSpec',
]
