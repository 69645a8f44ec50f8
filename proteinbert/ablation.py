"""Architecture ablations: load variants, train each alike, compare them.

A variant is a config file `<name>.py` in a directory (the runner's is
`experiments/configs/ablations/`) whose `get_config(preset)` returns a full
experiment config. `run_ablation` pretrains every chosen variant on the same
data with the same seeds and number of steps, each in its own `training.loop`
work directory `<output_dir>/<name>/`, and takes the held-out metrics of the
final step (the loop evaluates every variant on the same test-set proteins).
It writes into `output_dir`:
  results.md, results.csv   one row per variant: parameters, forward FLOPs
                            per sample, training samples/s, held-out metrics
  loss_curves.png           training and held-out token loss against step
  metrics_vs_params.png     held-out metrics against parameter count
  budget.json               the step budget, fixed at the first run
A variant with a `result.json` in its work directory is finished and not run
again; an interrupted one resumes from its checkpoints.
"""

import ast
import copy
import fnmatch
import importlib.util
import json
import os
import re
import time
from typing import Mapping, NamedTuple, Optional, Sequence

from absl import logging
import jax
import jax.numpy as jnp
from matplotlib import figure
import ml_collections

from proteinbert import compiled
from proteinbert import io_utils
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tables
from proteinbert.training import checkpoint
from proteinbert.training import loop

RESULT_FILE = 'result.json'
BUDGET_FILE = 'budget.json'

# Held-out metrics in the table: (loop metric, column title), in order.
METRICS = (
    ('heldout/corrupted_token_accuracy', 'corrupted-token accuracy'),
    ('heldout/token_accuracy', 'token accuracy'),
    ('heldout/token_loss', 'token loss (nats)'),
    ('heldout/annotation_auc', 'annotation AUC'),
)


class Budget(NamedTuple):
  """Training budget per variant: a number of steps or of minutes."""
  steps: Optional[int] = None
  minutes: Optional[float] = None


def parse_budget(text: str) -> Budget:
  """'300' is 300 steps; '10m' or '10min' is 10 minutes (of the first run)."""
  match = re.fullmatch(r'\s*(\d+(?:\.\d*)?)\s*(m|min)?\s*', text)
  if match and float(match[1]) > 0:
    if match[2]:
      return Budget(minutes=float(match[1]))
    if float(match[1]).is_integer():
      return Budget(steps=int(float(match[1])))
  raise ValueError(f'Bad budget {text!r}: give a positive number of steps '
                   "('300') or of minutes ('10m').")


def available_variants(config_dir: str) -> list[str]:
  """Names of the variant config files in `config_dir`, sorted."""
  return sorted(name[:-3] for name in os.listdir(config_dir)
                if name.endswith('.py') and not name.startswith('_'))


def _listing(config_dir: str) -> str:
  return (f'Available in {config_dir}: '
          f'{", ".join(available_variants(config_dir))}.')


def select_variants(patterns: Sequence[str], config_dir: str) -> list[str]:
  """Variant names matching shell-style `patterns`, in pattern order.

  Raises:
    ValueError: a pattern matches no variant; the message lists them all.
  """
  available = available_variants(config_dir)
  selected = []
  for pattern in patterns:
    matches = fnmatch.filter(available, pattern)
    if not matches:
      raise ValueError(f'No ablation variant matches {pattern!r}. '
                       + _listing(config_dir))
    selected.extend(name for name in matches if name not in selected)
  return selected


def load_variant(name: str, config_dir: str,
                 preset: str = 'demo') -> ml_collections.ConfigDict:
  """The experiment config of variant `name`, from `<config_dir>/<name>.py`."""
  path = os.path.join(config_dir, f'{name}.py')
  if not os.path.isfile(path):
    raise ValueError(f'Unknown ablation variant {name!r}. '
                     + _listing(config_dir))
  spec = importlib.util.spec_from_file_location(f'ablation_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Sequence[str]) -> None:
  """Sets `section.key=value` entries of `config` in place.

  Values are Python literals ('4', '1e-3', 'True', '((128, 32),)'); anything
  else is a string. The config's types are kept: a string for an int key
  fails.

  Raises:
    ValueError: malformed entry, unknown key (the message lists the keys of
      the section it was looked for in) or a value of the wrong type.
  """
  for override in overrides:
    path, sep, text = override.partition('=')
    if not sep:
      raise ValueError(f'Override {override!r} is not of the form key=value.')
    keys = path.strip().split('.')
    node = config
    for depth, key in enumerate(keys):
      section = '.'.join(keys[:depth]) or 'the config'
      if not isinstance(node, ml_collections.ConfigDict):
        raise ValueError(f'Unknown config key {path!r}: {section} is a value, '
                         'not a section.')
      if key not in node:
        raise ValueError(f'Unknown config key {path!r}; {section} has: '
                         f'{", ".join(sorted(node.keys()))}.')
      if depth < len(keys) - 1:
        node = node[key]
    try:
      node[keys[-1]] = _literal(text.strip())
    except TypeError as e:
      raise ValueError(f'Override {override!r}: {e}') from None


def _literal(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def eval_period(config: ml_collections.ConfigDict) -> int:
  """Steps between held-out evaluations; budgets are a multiple of it."""
  if config.eval.every_epochs < 1 or config.eval.num_proteins < 1:
    raise ValueError('Ablations compare held-out metrics: eval.every_epochs '
                     'and eval.num_proteins must be positive.')
  return config.data.batches_per_epoch * config.eval.every_epochs


def read_metrics(workdir: str) -> list[dict]:
  """The records of a loop work directory's `metrics.jsonl`."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def training_throughput(records: Sequence[Mapping[str, float]]) -> float:
  """Training samples per second over the update steps of `records`.

  Each training record of the loop holds the samples per second since the
  previous one and, per episode length, the seconds its `pretrain` call has
  spent in update steps (compiles and evaluations excluded). A resumed call
  restarts those clocks; it is told apart by its own compile times.

  Args:
    records: a work directory's metrics, in order.

  Returns:
    Samples per second, or NaN without training records.
  """
  samples = seconds = 0.0
  clocks, compiles = {}, {}
  for record in records:
    if 'samples_per_s' not in record:
      continue
    call_compiles = {k: v for k, v in record.items()
                     if k.startswith('compile_seconds/')}
    if any(call_compiles.get(k) != v for k, v in compiles.items()):
      clocks = {}
    compiles = call_compiles
    clock = f'episode_seconds/{int(record["episode_seq_len"])}'
    elapsed = record[clock] - clocks.get(clock, 0.0)
    clocks[clock] = record[clock]
    samples += record['samples_per_s'] * elapsed
    seconds += elapsed
  return samples / seconds if seconds else float('nan')


def lower_forward(model_config: ml_collections.ConfigDict, batch_size: int,
                  seq_len: int) -> jax.stages.Lowered:
  """The jitted forward pass lowered for [batch_size, seq_len] tokens.

  Args:
    model_config: the model config.
    batch_size: B.
    seq_len: L.

  Returns:
    The lowered `apply(params, None, tokens int32 [B, L], annotations f32
    [B, A])`; `.cost_analysis()` counts its FLOPs, `.compile()` builds it.
  """
  params = jax.eval_shape(lambda: model_lib.init_params(
      model_config, jax.random.PRNGKey(0)))
  tokens = jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32)
  annotations = jax.ShapeDtypeStruct(
      (batch_size, model_config.num_annotations), jnp.float32)
  return compiled.build(model_lib.forward_fn, model_config).apply.lower(
      params, None, tokens, annotations)


def summarize(name: str, config: ml_collections.ConfigDict,
              workdir: str) -> dict:
  """The table row of a finished variant.

  Args:
    name: the variant.
    config: its experiment config.
    workdir: its loop work directory.

  Returns:
    variant, parameters, flops_per_sample (XLA's count for one forward pass
    at eval.seq_len), samples_per_s (training), steps and the held-out
    metrics of the final step.

  Raises:
    ValueError: the final step has no held-out evaluation.
  """
  params, model_config = params_io.load_params(
      checkpoint.latest(os.path.join(workdir, 'checkpoints')))
  records = read_metrics(workdir)
  final = [r for r in records if METRICS[0][0] in r]
  if not final or final[-1]['step'] != config.train.num_steps:
    raise ValueError(f'{workdir}: no held-out evaluation at the final step '
                     f'{config.train.num_steps}.')
  flops = lower_forward(model_config, 1,
                        config.eval.seq_len).cost_analysis()['flops']
  row = {'variant': name,
         'parameters': model_lib.num_params(params),
         'flops_per_sample': float(flops),
         'samples_per_s': training_throughput(records),
         'steps': config.train.num_steps}
  row.update({key: final[-1][key] for key, _ in METRICS})
  return row


def _config_json(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort())


def run_variant(name: str, config: ml_collections.ConfigDict,
                workdir: str) -> dict:
  """Pretrains and summarizes one variant, unless it has finished before.

  Args:
    name: the variant.
    config: its experiment config, with the budget in train.num_steps.
    workdir: its loop work directory; resumed from if it has checkpoints.

  Returns:
    The `summarize` row, plus train_wall_s (seconds of this run, compiles
    and evaluations included) and the config.

  Raises:
    ValueError: `workdir` holds a finished run with another config.
  """
  result_path = os.path.join(workdir, RESULT_FILE)
  if os.path.exists(result_path):
    with open(result_path) as f:
      result = json.load(f)
    if result['config'] != _config_json(config):
      raise ValueError(
          f'{workdir} holds a finished run of {name!r} with another config '
          '(budget, dataset, preset or overrides); choose another output '
          'directory or delete that one.')
    logging.info('%s: finished before, not re-run.', name)
    return result
  logging.info('%s: pretraining %d steps in %s.', name,
               config.train.num_steps, workdir)
  started = time.perf_counter()
  loop.pretrain(config, workdir)
  result = summarize(name, config, workdir)
  result['train_wall_s'] = time.perf_counter() - started
  result['config'] = _config_json(config)
  with io_utils.atomic_path(result_path) as tmp:
    with open(tmp, 'w') as f:
      json.dump(result, f, indent=2)
  return result


def resolve_steps(budget: Budget, name: str,
                  config: ml_collections.ConfigDict, output_dir: str) -> int:
  """The budget in steps, a multiple of `eval_period`, fixed at the first run.

  A budget in minutes is converted at the seconds per step (compiles and
  evaluations included) of `name`'s first evaluation period, which is
  trained here in `<output_dir>/<name>` and later resumed from.

  Args:
    budget: the requested budget.
    name: the first variant.
    config: its experiment config.
    output_dir: the ablation's output directory.

  Returns:
    Steps per variant.

  Raises:
    ValueError: `output_dir` was run with another budget.
  """
  budget_path = os.path.join(output_dir, BUDGET_FILE)
  if os.path.exists(budget_path):
    with open(budget_path) as f:
      stored = json.load(f)
    if Budget(**stored['budget']) != budget:
      raise ValueError(f'{output_dir} was run with budget {stored["budget"]} '
                       f'({stored["num_steps"]} steps); choose another output '
                       'directory.')
    return stored['num_steps']
  period = eval_period(config)
  record = {'budget': budget._asdict()}
  if budget.steps:
    num_steps = -(-budget.steps // period) * period
  else:
    config = copy.deepcopy(config)
    config.train.num_steps = period
    started = time.perf_counter()
    loop.pretrain(config, os.path.join(output_dir, name))
    record['seconds_per_step'] = (time.perf_counter() - started) / period
    record['calibrated_on'] = name
    num_steps = period * max(1, round(
        budget.minutes * 60 / record['seconds_per_step'] / period))
  record['num_steps'] = num_steps
  logging.info('Budget %s: %d steps per variant.', budget, num_steps)
  os.makedirs(output_dir, exist_ok=True)
  with io_utils.atomic_path(budget_path) as tmp:
    with open(tmp, 'w') as f:
      json.dump(record, f, indent=2)
  return num_steps


def _cell(key: str, value) -> str:
  if key == 'parameters':
    return f'{value:,}'
  if key == 'flops_per_sample':
    return f'{value / 1e9:.3f}'
  if key == 'samples_per_s':
    return f'{value:.0f}'
  return value if isinstance(value, str) else f'{value:.4f}'


def write_table(results: Sequence[Mapping], output_dir: str,
                seq_len: int) -> None:
  """Writes `results.md` and `results.csv` (one row per variant)."""
  titles = {'variant': 'variant', 'parameters': 'parameters',
            'flops_per_sample': f'GFLOPs/sample (forward, L={seq_len})',
            'samples_per_s': 'train samples/s'}
  titles.update({key: f'held-out {title}' for key, title in METRICS})
  tables.write_text(os.path.join(output_dir, 'results.md'), tables.markdown(
      [{titles[k]: _cell(k, r[k]) for k in titles} for r in results]))
  tables.write_csv(os.path.join(output_dir, 'results.csv'), results,
                   list(titles) + ['steps', 'train_wall_s'])


def _style(i: int) -> dict:
  """Colour, dashes and marker of the i-th variant, distinct up to 40."""
  group = i // 10 % 4
  return {'color': f'C{i % 10}', 'linestyle': ('-', '--', '-.', ':')[group],
          'marker': 'os^D'[group]}


def plot_loss_curves(names: Sequence[str], output_dir: str) -> str:
  """Training and held-out token loss against step, one line per variant."""
  fig = figure.Figure(figsize=(13, 5.5), layout='constrained')
  train_ax, heldout_ax = fig.subplots(1, 2)
  for i, name in enumerate(names):
    records = read_metrics(os.path.join(output_dir, name))
    train = [(r['step'], r['token_loss']) for r in records if 'token_loss' in r]
    heldout = [(r['step'], r['heldout/token_loss']) for r in records
               if 'heldout/token_loss' in r]
    style = _style(i)
    train_ax.plot(*zip(*train), color=style['color'],
                  linestyle=style['linestyle'], linewidth=1)
    heldout_ax.plot(*zip(*heldout), markersize=3, label=name, **style)
  train_ax.set_title('Training token loss (mean over each logging interval)')
  heldout_ax.set_title('Held-out token loss (test-set proteins)')
  for ax in (train_ax, heldout_ax):
    # Log scale: the first steps fall by nats, the differences at the end are
    # hundredths.
    ax.set_yscale('log')
    ax.set_xlabel('training step')
    ax.set_ylabel('token cross-entropy (nats per token, log scale)')
    ax.grid(alpha=0.3, which='both')
  heldout_ax.legend(loc='center left', bbox_to_anchor=(1.02, 0.5),
                    fontsize=8)
  path = os.path.join(output_dir, 'loss_curves.png')
  fig.savefig(path, dpi=130)
  return path


def plot_metrics_vs_params(results: Sequence[Mapping], output_dir: str) -> str:
  """Each held-out metric against parameter count, one marker per variant."""
  shown = (METRICS[0], METRICS[2], METRICS[3])
  fig = figure.Figure(figsize=(16, 5.5), layout='constrained')
  axes = fig.subplots(1, len(shown))
  for ax, (key, title) in zip(axes, shown):
    for i, result in enumerate(results):
      style = _style(i)
      ax.scatter(result['parameters'], result[key], color=style['color'],
                 marker=style['marker'], s=30, label=result['variant'])
    ax.set_xscale('log')
    ax.set_xlabel('parameters (count, log scale)')
    ax.set_ylabel(f'held-out {title}')
    ax.grid(alpha=0.3, which='both')
  axes[-1].legend(loc='center left', bbox_to_anchor=(1.02, 0.5), fontsize=8)
  fig.suptitle('Held-out metrics at the final step against model size')
  path = os.path.join(output_dir, 'metrics_vs_params.png')
  fig.savefig(path, dpi=130)
  return path


def run_ablation(names: Sequence[str], config_dir: str, output_dir: str,
                 budget: Budget, preset: str = 'demo',
                 dataset_path: str = '',
                 overrides: Sequence[str] = ()) -> list[dict]:
  """Trains, evaluates and compares variants; writes tables and plots.

  Args:
    names: variants (`select_variants`), in table order.
    config_dir: where their config files are.
    output_dir: one work directory per variant, and the outputs.
    budget: steps or minutes per variant (see `resolve_steps`).
    preset: passed to every variant's `get_config`.
    dataset_path: the dataset to pretrain on; '' keeps the configs' (the
      bundled demo dataset unless a config says otherwise).
    overrides: `apply_overrides` entries applied to every variant.

  Returns:
    The result rows, as written to the tables.
  """
  if not names:
    raise ValueError('No variants to run. ' + _listing(config_dir))
  configs = {name: load_variant(name, config_dir, preset) for name in names}
  for config in configs.values():
    apply_overrides(config, overrides)
    if dataset_path:
      config.data.dataset_path = dataset_path
  num_steps = resolve_steps(budget, names[0], configs[names[0]], output_dir)
  results = []
  for name, config in configs.items():
    config.train.num_steps = num_steps
    results.append(run_variant(name, config, os.path.join(output_dir, name)))
  write_table(results, output_dir, configs[names[0]].eval.seq_len)
  plot_loss_curves(names, output_dir)
  plot_metrics_vs_params(results, output_dir)
  return results
