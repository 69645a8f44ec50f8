r"""Benchmarks the dataset builder against the original two-step pipeline.

  python -m experiments.benchmark_build_dataset --sizes=20000,80000 \
      --original_python=/tmp/kvenv/bin/python

For each size, writes a synthetic release in the real formats (uniref90.xml.gz
with one member per entry, uniref90.fasta, go.obo; see
experiments/synthetic.py), then runs, each in a fresh process:

* ours: `python -m experiments.build_dataset`;
* the original (with --original_python, an interpreter that has
  `protein-bert==1.0.1 --no-deps`, pandas, lxml, pyfaidx and h5py):
  `create_uniref_db` then `create_uniref_h5_dataset`, called as library
  functions so the timing leaves out the TensorFlow import that the package's
  `__init__` would add (neither step uses TensorFlow).

Reported, best of --repeats alternating runs: entries/s over the build
itself, up to its output closed and in place (ours: the summary that
`--summary_json` writes; the original: until `create_h5_dataset` returns,
its file closed; imports excluded, which the wall time includes), entries per
CPU-second
(the build's CPU time, workers included: what a busy machine sees), peak
memory (PSS summed over the process and its workers, sampled every 0.1 s, so
shared pages count once) and output bytes per protein; for the original also
what its dense layout would take at the paper's 8,943 terms.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import h5py
import numpy as np

from experiments import synthetic
from proteinbert.data import dataset as dataset_lib

_SIZES = flags.DEFINE_list('sizes', ['20000', '80000'],
                           'Entries per synthetic release.')
_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'Where releases and outputs go; default: a temporary '
    'directory, removed afterwards.')
_ORIGINAL_PYTHON = flags.DEFINE_string(
    'original_python', None, 'Python with protein-bert 1.0.1 (--no-deps), '
    'pandas, lxml, pyfaidx, h5py; runs the original pipeline side by side.')
_NUM_TERMS = flags.DEFINE_integer('num_terms', 20_000, 'Ontology size.')
_MIN_ANNOTATION_COUNT = flags.DEFINE_integer(
    'min_annotation_count', 2, 'For both pipelines; at 80,000 entries the '
    "default gives the original 9,436 terms, near the 8,943 that 100 gave it "
    'on the full UniRef90.')
_NUM_WORKERS = flags.DEFINE_integer(
    'num_workers', None, "Our builder's worker processes (default: its own "
    'default, one per idle CPU).')
_BUCKET_SIZE = flags.DEFINE_integer(
    'bucket_size', 10_000, "Our builder's shuffle bucket, small here so that "
    'the sizes above already show memory levelling off.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the synthetic release.')
_REPEATS = flags.DEFINE_integer(
    'repeats', 3, 'Runs per pipeline and size, alternating; the fastest counts '
    '(other load on the machine only ever slows a run down).')

# Runs the original's two steps as its scripts do, without its TensorFlow
# importing package __init__, and prints their durations as JSON.
ORIGINAL_DRIVER = r'''
import importlib.util, json, resource, sys, time, types
def cpu():
  return sum(u.ru_utime + u.ru_stime for u in (
      resource.getrusage(resource.RUSAGE_SELF),
      resource.getrusage(resource.RUSAGE_CHILDREN)))
spec = importlib.util.find_spec('proteinbert')
package = types.ModuleType('proteinbert')
package.__path__ = list(spec.submodule_search_locations)
sys.modules['proteinbert'] = package
from proteinbert import uniref_dataset
xml, obo, fasta, output, min_count = sys.argv[1:6]
start, start_cpu = time.monotonic(), cpu()
meta = uniref_dataset.parse_go_annotations_meta(obo)
uniref_dataset.UnirefToSqliteParser(xml, meta, output + '.db',
                                    verbose=False).parse()
meta.to_csv(output + '.csv')
step1 = time.monotonic()
uniref_dataset.create_h5_dataset(output + '.db', fasta, output + '.csv', output,
                                 min_records_to_keep_annotation=int(min_count),
                                 verbose=False)
print(json.dumps({'seconds': time.monotonic() - start,
                  'cpu_seconds': cpu() - start_cpu,
                  'step1_seconds': step1 - start}))
'''


def _children(pid: int) -> list:
  """`pid` and its descendants, from /proc."""
  parents = {}
  for name in os.listdir('/proc'):
    if name.isdigit():
      try:
        with open(f'/proc/{name}/stat') as f:
          parents[int(name)] = int(f.read().rsplit(')', 1)[1].split()[1])
      except OSError:
        continue
  tree, frontier = [pid], [pid]
  while frontier:
    frontier = [c for c, p in parents.items() if p in frontier]
    tree += frontier
  return tree


def _pss_bytes(pids) -> int:
  total = 0
  for pid in pids:
    try:
      with open(f'/proc/{pid}/smaps_rollup') as f:
        total += sum(int(line.split()[1]) * 1024 for line in f
                     if line.startswith('Pss:'))
    except OSError:
      continue
  return total


def measure(command, cwd=None) -> dict:
  """Runs `command`; wall time, peak PSS of its process tree, stdout."""
  with tempfile.TemporaryFile() as out:
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=out,
                               stderr=subprocess.PIPE, text=True)
    peak = 0
    while True:
      pid, status, _ = os.wait4(process.pid, os.WNOHANG)
      if pid:
        break
      peak = max(peak, _pss_bytes(_children(process.pid)))
      time.sleep(0.1)
    wall = time.monotonic() - start
    stderr = process.stderr.read()
    if os.waitstatus_to_exitcode(status):
      raise RuntimeError(f'{command[:3]} failed:\n{stderr[-3000:]}')
    out.seek(0)
    return {'wall_seconds': wall, 'peak_mb': peak / 2**20,
            'stdout': out.read().decode()}


def run_original(python: str, xml: str, obo: str, fasta: str, output: str,
                 min_count: int) -> dict:
  """The original pipeline's measurements; its seconds exclude imports."""
  driver = output + '.driver.py'
  with open(driver, 'w') as f:
    f.write(ORIGINAL_DRIVER)
  result = measure([python, driver, xml, obo, fasta, output, str(min_count)])
  result.update(json.loads(result.pop('stdout').strip().splitlines()[-1]))
  return result


def _run_ours(xml: str, obo: str, output: str) -> dict:
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  command = [sys.executable, '-m', 'experiments.build_dataset',
             f'--uniref_xml={xml}', f'--go_obo={obo}', f'--output={output}',
             f'--min_annotation_count={_MIN_ANNOTATION_COUNT.value}',
             f'--bucket_size={_BUCKET_SIZE.value}', '--overwrite',
             f'--summary_json={output}.summary.json']
  if _NUM_WORKERS.value is not None:
    command.append(f'--num_workers={_NUM_WORKERS.value}')
  result = measure(command, cwd=repo)
  del result['stdout']
  with open(f'{output}.summary.json') as f:
    summary = json.load(f)
  result.update(seconds=summary['seconds'],
                cpu_seconds=summary['cpu_seconds'])
  return result


def _write_release(directory: str, size: int) -> tuple:
  rng = np.random.default_rng(_SEED.value)
  terms = synthetic.random_ontology(rng, _NUM_TERMS.value)
  paths = tuple(os.path.join(directory, n) for n in (
      'uniref90.xml.gz', 'go.obo', 'uniref90.fasta'))
  synthetic.write_obo(paths[1], terms)
  entries = list(synthetic.random_entries(rng, terms, size))
  synthetic.write_uniref_xml(paths[0], entries, synthetic.namespaces(terms))
  synthetic.write_fasta(paths[2], entries)
  return paths


def _keep_best(row: dict, name: str, result: dict) -> None:
  """Keeps the fastest run's times and the highest peak memory."""
  best = row.setdefault(name, result)
  peak = max(best['peak_mb'], result['peak_mb'])
  if result['seconds'] < best['seconds']:
    row[name] = best = result
  best['peak_mb'] = peak


def _describe(output: str) -> dict:
  with dataset_lib.open_dataset(output) as data:
    proteins, terms = data.num_proteins, data.num_annotations
  return {'proteins': proteins, 'terms': terms,
          'bytes_per_protein': os.path.getsize(output) / max(proteins, 1)}


def _dense_mask_bytes(output: str) -> int:
  with h5py.File(output) as f:
    return f['annotation_masks'].id.get_storage_size()


def main(argv):
  del argv
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix='benchmark_build_')
  rows = []
  for size in map(int, _SIZES.value):
    directory = os.path.join(work_dir, str(size))
    os.makedirs(directory, exist_ok=True)
    xml, obo, fasta = _write_release(directory, size)
    row = {'entries': size, 'xml_gz_mb': os.path.getsize(xml) / 2**20}
    ours, original = (os.path.join(directory, n)
                      for n in ('ours.h5', 'original.h5'))
    for _ in range(_REPEATS.value):
      _keep_best(row, 'ours', _run_ours(xml, obo, ours))
      if _ORIGINAL_PYTHON.value:
        for stale in (original, original + '.db', original + '.csv'):
          if os.path.exists(stale):
            os.remove(stale)
        _keep_best(row, 'original', run_original(
            _ORIGINAL_PYTHON.value, xml, obo, fasta, original,
            _MIN_ANNOTATION_COUNT.value))
    row['ours'].update(_describe(ours))
    if _ORIGINAL_PYTHON.value:
      row['original'].update(_describe(original))
      masks = _dense_mask_bytes(original) / max(
          row['original']['proteins'], 1)
      # The dense mask is 1 byte per term; the rest does not depend on A.
      row['original']['bytes_per_protein_at_8943_terms'] = (
          row['original']['bytes_per_protein'] - masks + 8943)
    rows.append(row)
    print(json.dumps(row, indent=1), flush=True)
  _print_table(rows)


def _print_table(rows) -> None:
  print(f'\n{"entries":>8} {"pipeline":>9} {"entries/s":>10} {"/CPU-s":>7} '
        f'{"wall s":>7} {"peak MB":>8} {"B/protein":>10} {"terms":>6}')
  for row in rows:
    for name in ('ours', 'original'):
      if name in row:
        r = row[name]
        print(f'{row["entries"]:>8} {name:>9} '
              f'{row["entries"] / r["seconds"]:>10,.0f} '
              f'{row["entries"] / r["cpu_seconds"]:>7,.0f} '
              f'{r["wall_seconds"]:>7.1f} {r["peak_mb"]:>8.0f} '
              f'{r["bytes_per_protein"]:>10,.0f} {r["terms"]:>6}')
    if 'original' in row:
      ours, original = row['ours'], row['original']
      at_paper = original['bytes_per_protein_at_8943_terms']
      size_ratio = original['bytes_per_protein'] / ours['bytes_per_protein']
      print(f'{"":>8} {"ratio":>9} '
            f'{original["seconds"] / ours["seconds"]:>9.1f}x '
            f'{original["cpu_seconds"] / ours["cpu_seconds"]:>6.1f}x '
            f'{"":>16} '
            f'{size_ratio:>9.1f}x'
            f' (original at 8,943 terms: {at_paper:,.0f} B/protein, '
            f'{at_paper / ours["bytes_per_protein"]:.0f}x)')


if __name__ == '__main__':
  app.run(main)
