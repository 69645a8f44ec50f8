"""Architecture ablations: load variants, train each alike, compare them.

A variant is a config file `<name>.py` in a directory (the runner's is
`experiments/configs/ablations/`) whose `get_config(preset)` returns a full
experiment config. `run_ablation` pretrains every chosen variant with every
chosen seed (`train.seed` and `data.seed`: initialisation, data order and
corruption) on the same data for the same number of steps, each in its own
`training.loop` work directory `<output_dir>/<name>/seed_<seed>/`, and takes
the held-out metrics of the final step (the loop evaluates every variant on
the same test-set proteins). It writes into `output_dir`:
  results.md       one row per variant: parameters, forward FLOPs per sample,
                   training samples/s, each held-out metric's mean over seeds
                   and half their range; the frequency baseline's row
  results.csv      one row per variant and seed
  loss_curves.png, metrics_vs_params.png   (`experiments/ablation_plots.py`)
  budget.json      the step budget, fixed at the first run
A run with a `result.json` in its work directory is finished and not run
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
import ml_collections
import numpy as np

from experiments import ablation_plots
from proteinbert import io_utils
from proteinbert import model as model_lib
from proteinbert import params_io
from proteinbert import tables
from proteinbert.training import checkpoint
from proteinbert.training import loop

RESULT_FILE = 'result.json'
BUDGET_FILE = 'budget.json'

# Held-out metrics in the table: (loop metric, column title), in order.
# Denoising accuracy and loss are over the residues the model is not shown
# at corrupted positions (what it knows, not what it copies; see
# `training/losses.py`).
METRICS = (
    ('heldout/denoising_accuracy', 'denoising accuracy'),
    ('heldout/denoising_loss', 'denoising loss (nats)'),
    ('heldout/token_loss', 'token loss (nats)'),
    ('heldout/annotation_auc', 'annotation AUC'),
    ('heldout/annotation_average_precision', 'annotation AP'),
)
# The corpus-frequency baseline of the token metrics (same for every
# variant of a seed).
BASELINE_PREFIX = 'heldout/frequency_baseline/'


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


def summarize(name: str, config: ml_collections.ConfigDict,
              workdir: str) -> dict:
  """The table row of a finished variant.

  Args:
    name: the variant.
    config: its experiment config.
    workdir: its loop work directory.

  Returns:
    variant, seed (train.seed), parameters, flops_per_sample (XLA's count
    for one forward pass at eval.seq_len), samples_per_s (median over the
    loop's logging intervals), steps and every held-out metric of the final
    step (the model's and the frequency baseline's).

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
  flops = model_lib.lower_forward(model_config, 1,
                                  config.eval.seq_len).cost_analysis()['flops']
  # The loop reports samples/s per logging interval with compiles and
  # evaluations left out; the median also ignores intervals slowed by
  # other work on a shared machine.
  rates = [r['samples_per_s'] for r in records if 'samples_per_s' in r]
  row = {'variant': name,
         'seed': config.train.seed,
         'parameters': model_lib.num_params(params),
         'flops_per_sample': float(flops),
         'samples_per_s': float(np.median(rates)) if rates else float('nan'),
         'steps': config.train.num_steps}
  row.update({key: v for key, v in final[-1].items()
              if key.startswith('heldout/')})
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
    logging.info('%s (seed %d): finished before, not re-run.', name,
                 config.train.seed)
    return result
  logging.info('%s (seed %d): pretraining %d steps in %s.', name,
               config.train.seed, config.train.num_steps, workdir)
  started = time.perf_counter()
  loop.pretrain(config, workdir)
  result = summarize(name, config, workdir)
  result['train_wall_s'] = time.perf_counter() - started
  result['config'] = _config_json(config)
  with io_utils.atomic_path(result_path) as tmp:
    with open(tmp, 'w') as f:
      json.dump(result, f, indent=2)
  return result


def resolve_steps(budget: Budget, config: ml_collections.ConfigDict,
                  workdir: str, output_dir: str) -> int:
  """The budget in steps, a multiple of `eval_period`, fixed at the first run.

  A budget in minutes is converted at the seconds per step (compiles and
  evaluations included) of the first run's first evaluation period, which is
  trained here in `workdir` and later resumed from.

  Args:
    budget: the requested budget.
    config: the first run's experiment config.
    workdir: the first run's work directory.
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
    loop.pretrain(config, workdir)
    record['seconds_per_step'] = (time.perf_counter() - started) / period
    record['calibrated_on'] = os.path.relpath(workdir, output_dir)
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


def _spread(values: Sequence[float]) -> str:
  """'mean ± half range' over seeds; the mean alone for one seed."""
  mean = float(np.mean(values))
  if len(values) == 1:
    return f'{mean:.4f}'
  return f'{mean:.4f} ± {(max(values) - min(values)) / 2:.4f}'


def aggregate(results: Sequence[Mapping]) -> list[dict]:
  """One row per variant (in first-seen order): the seeds' figures.

  Args:
    results: `run_variant` rows, one per variant and seed.

  Returns:
    Rows of variant, seeds, parameters, flops_per_sample, samples_per_s
    (median over seeds) and, per `METRICS` key, the list of the seeds'
    values.
  """
  rows = {}
  for result in results:
    row = rows.setdefault(result['variant'], {
        'variant': result['variant'], 'seeds': [],
        'parameters': result['parameters'],
        'flops_per_sample': result['flops_per_sample'], 'rates': [],
        **{key: [] for key, _ in METRICS}})
    row['seeds'].append(result['seed'])
    row['rates'].append(result['samples_per_s'])
    for key, _ in METRICS:
      row[key].append(result[key])
  for row in rows.values():
    row['samples_per_s'] = float(np.median(row.pop('rates')))
  return list(rows.values())


def _baseline_row(results: Sequence[Mapping]) -> Optional[dict]:
  """The frequency baseline's figures (one run per seed), where logged."""
  per_seed = {r['seed']: r for r in results}
  cells = {}
  for key, _ in METRICS:
    baseline = BASELINE_PREFIX + key[len('heldout/'):]
    values = [r[baseline] for r in per_seed.values() if baseline in r]
    if values:
      cells[key] = _spread(values)
  return cells or None


def write_table(results: Sequence[Mapping], output_dir: str,
                seq_len: int) -> None:
  """Writes `results.md` (per variant, over seeds) and `results.csv` (per
  variant and seed)."""
  titles = {'variant': 'variant', 'parameters': 'parameters',
            'flops_per_sample': f'GFLOPs/sample (forward, L={seq_len})',
            'samples_per_s': 'train samples/s'}
  titles.update({key: f'held-out {title}' for key, title in METRICS})
  md_rows = []
  for row in aggregate(results):
    md_rows.append({titles[k]: (_spread(row[k]) if k in dict(METRICS)
                                else _cell(k, row[k])) for k in titles})
  baseline = _baseline_row(results)
  if baseline:
    md_rows.append({titles[k]: baseline.get(k, '') for k in titles}
                   | {titles['variant']: '(corpus-frequency baseline)'})
  seeds = sorted({r['seed'] for r in results})
  tables.write_text(os.path.join(output_dir, 'results.md'),
                    f'Seeds {seeds}: each held-out figure is the mean over '
                    'seeds ± half their range.\n\n'
                    + tables.markdown(md_rows))
  columns = ['variant', 'seed'] + [k for k in titles if k != 'variant'] + [
      'steps', 'train_wall_s'] + sorted(
          {k for r in results for k in r if k.startswith(BASELINE_PREFIX)})
  tables.write_csv(os.path.join(output_dir, 'results.csv'), results, columns)


def run_workdir(output_dir: str, name: str, seed: int) -> str:
  """The loop work directory of variant `name` with `seed`."""
  return os.path.join(output_dir, name, f'seed_{seed}')


def with_seed(config: ml_collections.ConfigDict,
              seed: int) -> ml_collections.ConfigDict:
  """A copy of `config` whose initialisation, data order and corruption
  are drawn from `seed`."""
  config = copy.deepcopy(config)
  config.train.seed = seed
  config.data.seed = seed
  return config


def run_ablation(names: Sequence[str], config_dir: str, output_dir: str,
                 budget: Budget, preset: str = 'demo',
                 dataset_path: str = '', overrides: Sequence[str] = (),
                 seeds: Sequence[int] = (0,)) -> list[dict]:
  """Trains, evaluates and compares variants; writes tables and plots.

  Args:
    names: variants (`select_variants`), in table order.
    config_dir: where their config files are.
    output_dir: one work directory per variant and seed, and the outputs.
    budget: steps or minutes per variant (see `resolve_steps`).
    preset: passed to every variant's `get_config`.
    dataset_path: the dataset to pretrain on; '' keeps the configs' (the
      bundled demo dataset unless a config says otherwise).
    overrides: `apply_overrides` entries applied to every variant.
    seeds: every variant trains once per seed.

  Returns:
    The result rows (one per variant and seed), as written to results.csv.
  """
  if not names:
    raise ValueError('No variants to run. ' + _listing(config_dir))
  if not seeds or len(set(seeds)) != len(seeds):
    raise ValueError(f'Seeds must be distinct and at least one: {seeds}.')
  configs = {name: load_variant(name, config_dir, preset) for name in names}
  for config in configs.values():
    apply_overrides(config, overrides)
    if dataset_path:
      config.data.dataset_path = dataset_path
  first = with_seed(configs[names[0]], seeds[0])
  num_steps = resolve_steps(budget, first,
                            run_workdir(output_dir, names[0], seeds[0]),
                            output_dir)
  results = []
  for name, config in configs.items():
    config.train.num_steps = num_steps
    for seed in seeds:
      results.append(run_variant(name, with_seed(config, seed),
                                 run_workdir(output_dir, name, seed)))
  write_table(results, output_dir, configs[names[0]].eval.seq_len)
  curves = {name: [read_metrics(run_workdir(output_dir, name, seed))
                   for seed in seeds] for name in names}
  ablation_plots.plot_loss_curves(
      curves, os.path.join(output_dir, 'loss_curves.png'))
  ablation_plots.plot_metrics_vs_params(
      aggregate(results), [(k, t) for k, t in METRICS if k != METRICS[2][0]],
      os.path.join(output_dir, 'metrics_vs_params.png'))
  return results
