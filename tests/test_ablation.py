"""The ablation variants and runner: configs, sweep, resume, errors."""

import csv
import json
import os
import subprocess
import sys
from unittest import mock

import jax
import numpy as np
import pytest

from experiments import ablation
from experiments import benchmark_length_scaling
from experiments.configs import pretrain as pretrain_configs
from proteinbert import model as model_lib
from proteinbert.training import loop
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, 'experiments', 'configs', 'ablations')

# Parameters of every variant at the published sizes (8,943 annotations);
# the baseline is the Keras model's count.
PAPER_PARAMETERS = {
    'baseline': 15_981_321,
    'dilation_10': 15_981_321,
    'dilation_2': 15_981_321,
    'double_depth': 22_788_873,
    'double_global_dim': 36_167_945,
    'double_heads': 16_964_361,
    'double_key_size': 16_964_361,
    'double_local_dim': 22_580_489,
    'half_depth': 12_577_545,
    'half_global_dim': 8_247_305,
    'half_heads': 15_489_801,
    'half_key_size': 15_489_801,
    'half_local_dim': 14_082_569,
    'mask_padding': 15_981_321,
    'no_annotation_input': 15_981_321,
    'no_annotation_loss': 15_981_321,
    # Minus 6 x (H (G K + C K + C G / H)) attention weights.
    'no_global_attention': 14_605_065,
    'no_global_to_local': 15_587_337,
    'no_narrow_conv': 15_095_817,
    'no_wide_conv': 15_095_817,
    # Minus 6 x 2 convs, plus 6 x (2 (C H K + H K) + 2 (C C + C)).
    'self_attention': 14_804_745,
}


def _tiny_base(dataset_path):
  """Every variant's difference applied to a one-block model on tiny data.

  ReLU and a constant learning rate: they compile faster than the exact GELU
  and the plateau schedule, and no variant is about either.
  """
  config = helpers.tiny_pretrain_config(dataset_path)
  config.model.update(dict(num_blocks=1, activation='relu'))
  config.data.update(dict(episodes=((32, 4),), batches_per_epoch=2))
  config.train.plateau.enabled = False
  config.eval.update(dict(every_epochs=1, num_proteins=4, seq_len=32,
                          batch_size=4))
  return config


def _tiny_variants(dataset_path):
  """While active, every variant starts from `_tiny_base`."""
  return mock.patch.object(pretrain_configs, 'get_config',
                           lambda preset='demo': _tiny_base(dataset_path))


@pytest.fixture(scope='module')
def dataset_path(tmp_path_factory):
  return helpers.write_tiny_dataset(
      str(tmp_path_factory.mktemp('data') / 'tiny.h5'))


# The sweep trains these; every variant's config and parameter count is
# checked without training (test_variant_applies_to_both_presets).
SWEPT = ['baseline', 'no_global_attention', 'self_attention']
SEEDS = [0, 1]


@pytest.fixture(scope='module')
def sweep(dataset_path, tmp_path_factory):
  """Three variants x two seeds, 2 steps each (a minutes budget shorter
  than a period).

  Runs in a subprocess whose XLA skips its expensive optimisations: the sweep
  costs two compilations per variant and next to nothing else, and they take
  40% less CPU time this way.
  """
  output_dir = str(tmp_path_factory.mktemp('ablations'))
  code = ('from experiments import ablation\n'
          'from tests import test_ablation as t\n'
          f'with t._tiny_variants({dataset_path!r}):\n'
          '  ablation.run_ablation(t.SWEPT, t.CONFIG_DIR, '
          f'{output_dir!r}, ablation.Budget(minutes=1e-3), seeds=t.SEEDS)\n')
  flags = os.environ.get('XLA_FLAGS', '') + (
      ' --xla_backend_optimization_level=0'
      ' --xla_llvm_disable_expensive_passes=true')
  subprocess.run([sys.executable, '-c', code], cwd=ROOT, check=True,
                 env=dict(os.environ, XLA_FLAGS=flags))
  results = []
  for name in SWEPT:
    for seed in SEEDS:
      with open(os.path.join(ablation.run_workdir(output_dir, name, seed),
                             ablation.RESULT_FILE)) as f:
        results.append(json.load(f))
  return output_dir, results


def test_every_run_trains_evaluates_and_is_tabulated(sweep):
  output_dir, results = sweep
  assert [(r['variant'], r['seed']) for r in results] == [
      (name, seed) for name in SWEPT for seed in SEEDS]
  for result in results:
    assert result['steps'] == 2
    for key, _ in ablation.METRICS:
      assert np.isfinite(result[key]), (result['variant'], key)
    assert result['parameters'] > 0 and result['flops_per_sample'] > 0
    assert result['samples_per_s'] > 0
    assert result['config']['train']['seed'] == result['seed']
    assert result['config']['data']['seed'] == result['seed']
  with open(os.path.join(output_dir, 'results.csv')) as f:
    rows = list(csv.DictReader(f))
  assert [(r['variant'], int(r['seed'])) for r in rows] == [
      (name, seed) for name in SWEPT for seed in SEEDS]
  with open(os.path.join(output_dir, 'results.md')) as f:
    text = f.read()
  # Title line, blank line, header, rule, a row per variant, the baseline.
  assert len(text.splitlines()) == 4 + len(SWEPT) + 1
  assert 'corpus-frequency baseline' in text and ' ± ' in text
  for plot in ('loss_curves.png', 'metrics_vs_params.png'):
    with open(os.path.join(output_dir, plot), 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  with open(os.path.join(output_dir, ablation.BUDGET_FILE)) as f:
    budget = json.load(f)
  assert budget['calibrated_on'] == os.path.join('baseline', 'seed_0')
  assert budget['num_steps'] == 2


def test_seeds_change_the_run_and_variants_differ_as_named(sweep):
  _, results = sweep
  by_run = {(r['variant'], r['seed']): r for r in results}
  base0, base1 = by_run['baseline', 0], by_run['baseline', 1]
  assert base0['heldout/token_loss'] != base1['heldout/token_loss']
  assert base0['parameters'] == base1['parameters']
  for name in ('no_global_attention', 'self_attention'):
    assert by_run[name, 0]['parameters'] < base0['parameters'], name


def test_aggregate_gives_each_variant_its_seeds():
  runs = [dict(variant=v, seed=s, parameters=10, flops_per_sample=1.0,
               samples_per_s=rate, **{k: float(s) for k, _ in ablation.METRICS})
          for v, rate in (('a', 5.0), ('b', 7.0)) for s in (0, 1)]
  rows = ablation.aggregate(runs)
  assert [r['variant'] for r in rows] == ['a', 'b']
  assert rows[0]['seeds'] == [0, 1] and rows[1]['samples_per_s'] == 7.0
  assert rows[0][ablation.METRICS[0][0]] == [0.0, 1.0]


def test_finished_runs_are_not_rerun(dataset_path, sweep):
  output_dir, results = sweep
  with _tiny_variants(dataset_path), mock.patch.object(
      loop, 'pretrain', side_effect=AssertionError):
    again = ablation.run_ablation(SWEPT, CONFIG_DIR, output_dir,
                                  ablation.Budget(minutes=1e-3), seeds=SEEDS)
  assert again == results


def test_changed_budget_or_config_is_refused(dataset_path, sweep):
  output_dir, _ = sweep
  with _tiny_variants(dataset_path):
    with pytest.raises(ValueError, match='was run with budget'):
      ablation.run_ablation(['baseline'], CONFIG_DIR, output_dir,
                            ablation.Budget(steps=4))
    with pytest.raises(ValueError, match='another config'):
      ablation.run_ablation(['baseline'], CONFIG_DIR, output_dir,
                            ablation.Budget(minutes=1e-3),
                            overrides=['train.learning_rate=0.5'])
    with pytest.raises(ValueError, match='distinct'):
      ablation.run_ablation(['baseline'], CONFIG_DIR, output_dir,
                            ablation.Budget(minutes=1e-3), seeds=[1, 1])


def test_step_budget_rounds_up_to_evaluation_periods(dataset_path, tmp_path):
  with _tiny_variants(dataset_path):
    config = ablation.load_variant('baseline', CONFIG_DIR)
  assert ablation.resolve_steps(ablation.Budget(steps=3), config,
                                str(tmp_path / 'run'), str(tmp_path)) == 4


@pytest.mark.parametrize('name', ablation.available_variants(CONFIG_DIR))
def test_variant_applies_to_both_presets(name):
  for preset in ('demo', 'paper'):
    config = ablation.load_variant(name, CONFIG_DIR, preset)
    base = ablation.load_variant('baseline', CONFIG_DIR, preset)
    differs = config.to_dict() != base.to_dict()
    assert differs == (name != 'baseline'), (name, preset)
  paper = ablation.load_variant(name, CONFIG_DIR, 'paper').model
  shapes = jax.eval_shape(lambda: model_lib.init_params(
      paper, jax.random.PRNGKey(0)))
  assert model_lib.num_params(shapes) == PAPER_PARAMETERS[name]


def test_unknown_variant_lists_the_available_ones():
  with pytest.raises(ValueError, match='Available .*baseline.*no_wide_conv'):
    ablation.select_variants(['no_such_*'], CONFIG_DIR)
  with pytest.raises(ValueError, match='Unknown ablation variant .*baseline'):
    ablation.load_variant('no_such_variant', CONFIG_DIR)
  assert ablation.select_variants(['baseline', 'dilation_*', 'baseline'],
                                  CONFIG_DIR) == [
                                      'baseline', 'dilation_10', 'dilation_2']


def test_overrides_set_values_and_name_the_available_keys():
  config = pretrain_configs.get_config('demo')
  ablation.apply_overrides(config, ['model.num_blocks=3',
                                    'data.episodes=((64, 2),)',
                                    'model.activation=relu',
                                    'train.plateau.enabled=False'])
  assert config.model.num_blocks == 3 and config.data.episodes == ((64, 2),)
  assert config.model.activation == 'relu'
  assert not config.train.plateau.enabled
  with pytest.raises(ValueError, match="'model.nblocks'.*num_blocks"):
    ablation.apply_overrides(config, ['model.nblocks=3'])
  with pytest.raises(ValueError, match='the config has: checkpoint, data'):
    ablation.apply_overrides(config, ['modle.num_blocks=3'])
  with pytest.raises(ValueError, match='is a value, not a section'):
    ablation.apply_overrides(config, ['model.num_blocks.x=3'])
  with pytest.raises(ValueError, match='key=value'):
    ablation.apply_overrides(config, ['model.num_blocks'])
  with pytest.raises(ValueError, match='model.num_blocks=many'):
    ablation.apply_overrides(config, ['model.num_blocks=many'])


@pytest.mark.parametrize('text,budget', [
    ('300', ablation.Budget(steps=300)),
    ('10m', ablation.Budget(minutes=10.0)),
    ('2.5min', ablation.Budget(minutes=2.5)),
])
def test_budget_parsing(text, budget):
  assert ablation.parse_budget(text) == budget


@pytest.mark.parametrize('text', ['0', '1.5', '-3', '10h', ''])
def test_bad_budget_is_a_clear_error(text):
  with pytest.raises(ValueError, match='steps .* or of minutes'):
    ablation.parse_budget(text)


def test_length_scaling_benchmark_writes_table_and_plot(tmp_path):
  rows = []
  for mixer, max_run_bytes in (('conv', 2**30), ('self_attention', 0)):
    config = helpers.tiny_model_config(local_mixer=mixer, num_blocks=1,
                                       activation='relu')
    rows += benchmark_length_scaling.measure(mixer, config, [16, 32], 1,
                                             max_run_bytes)
  assert [(r['variant'], r['length']) for r in rows] == [
      ('conv', 16), ('conv', 32), ('self_attention', 16),
      ('self_attention', 32)]
  assert all(r['seconds'] > 0 for r in rows[:2])
  assert all(np.isnan(r['seconds']) for r in rows[2:])
  benchmark_length_scaling.write_table(rows, str(tmp_path))
  benchmark_length_scaling.plot(rows, str(tmp_path), 'tiny')
  with open(tmp_path / 'length_scaling.md') as f:
    assert f.read().count('not run') == 2
  assert (tmp_path / 'length_scaling.png').stat().st_size > 0
