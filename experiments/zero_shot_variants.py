r"""Zero-shot Spearman of the variant scores on fluorescence and stability.

  python -m experiments.zero_shot_variants --benchmarks=../shared/benchmarks \
      --output_dir=experiments/results/zero_shot_variants --workdir=/tmp/zsv

Fluorescence (GFP variants of one parent): the wild type is the per-position
consensus of the variants of the commonest length; variants of other lengths
(insertions or deletions) cannot be scored as substitutions and are left out.
Every strategy but pseudo-ppl scores all variants; pseudo-ppl (L = 237
corrupted copies of each) scores a seeded random subset, on which the other
strategies are reported too.

Stability (designed proteins of many parents): sequences of one length one
substitution apart are linked; a linked group of at least three whose
per-position consensus is one of them is a family with that parent, and its
other members are scored against it (Spearman with the label and with the
label minus the parent's). A pair has no telling which is the parent, and
most designs have no relative at all, so over the whole set the score is
each sequence's own pseudo-log-likelihood per residue (a seeded subset).

Writes results.json in output_dir; the scored CSVs and their inputs stay in
workdir.
"""

import collections
import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
from scipy.sparse import csgraph

from proteinbert import inference
from proteinbert import metrics
from proteinbert import tables
from proteinbert import variants
from proteinbert.finetuning import data as data_lib

_BENCHMARKS = flags.DEFINE_string('benchmarks', None, 'Directory of the '
                                  'benchmark CSVs.', required=True)
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'swissprot-small',
                                  'The pretrained model.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where results.json '
                                  'goes.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Inputs and scored CSVs.',
                               required=True)
_FLUORESCENCE_PPPL = flags.DEFINE_integer(
    'fluorescence_pppl', 50, 'GFP variants scored by pseudo-ppl.')
_STABILITY_PLL = flags.DEFINE_integer(
    'stability_pll', 800, 'Stability sequences scored by their own '
    'pseudo-log-likelihood.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the subsets.')
_MAX_TOKENS = flags.DEFINE_integer('max_tokens', 16384,
                                   'Tokens per model call.')

_MARGINALS = ('wt-marginals', 'masked-marginals')


def consensus(seqs) -> str:
  """The commonest letter at each position of equal-length sequences (ties:
  alphabetical)."""
  columns = np.array([list(s) for s in seqs]).T
  return ''.join(max(sorted(collections.Counter(c).items()),
                     key=lambda item: item[1])[0] for c in columns)


def _score(model, workdir: str, name: str, parents: dict, rows: list,
           strategies) -> list[dict]:
  """Writes parents (FASTA) and rows (protein_id, seq, ...), scores them."""
  fasta = os.path.join(workdir, f'{name}.fasta')
  tables.write_text(fasta, ''.join(f'>{i}\n{s}\n' for i, s in parents.items()))
  mutants = os.path.join(workdir, f'{name}.csv')
  tables.write_csv(mutants, rows)
  start = time.perf_counter()
  scored = variants.score_file(model, mutants, fasta,
                               os.path.join(workdir, f'{name}.scores.csv'),
                               strategies, max_tokens=_MAX_TOKENS.value)
  logging.info('%s: %d variants in %.0f s.', name, len(rows),
               time.perf_counter() - start)
  return scored


def _spearmans(rows, strategies, target: str = 'label') -> dict:
  truths = [float(r[target]) for r in rows]
  return {s: metrics.spearman(truths, [r[s] for r in rows])
          for s in strategies}


def fluorescence(model, path: str, workdir: str, rng) -> dict:
  data = data_lib.read_csv(path)
  length = collections.Counter(map(len, data.seqs)).most_common(1)[0][0]
  kept = [i for i, s in enumerate(data.seqs) if len(s) == length]
  wildtype = consensus([data.seqs[i] for i in kept])
  rows = [dict(protein_id='consensus', seq=data.seqs[i],
               label=data.labels[i]) for i in kept]
  scored = _score(model, workdir, 'fluorescence', {'consensus': wildtype},
                  rows, _MARGINALS)
  subset = sorted(rng.choice(len(rows), _FLUORESCENCE_PPPL.value,
                             replace=False))
  pppl = _score(model, workdir, 'fluorescence_pppl', {'consensus': wildtype},
                [rows[i] for i in subset], ['pseudo-ppl'])
  # The baseline a ranking by substitution count sets (all are 1 to 3).
  count = 'minus_substitution_count'
  for row in scored:
    row[count] = -len(row['mutation'].split(':'))
  for i, row in zip(subset, pppl):
    row.update({s: scored[i][s] for s in (*_MARGINALS, count)})
  return dict(
      variants=len(rows), left_out_other_lengths=len(data.seqs) - len(kept),
      wildtype=wildtype, wildtype_in_set=wildtype in data.seqs,
      substitution_counts=dict(collections.Counter(
          -row[count] for row in scored)),
      spearman=_spearmans(scored, (*_MARGINALS, count)),
      # Within a count, the per-substitution offset of wt-marginals drops out.
      spearman_by_substitution_count={
          k: _spearmans([r for r in scored if r[count] == -k], _MARGINALS)
          for k in sorted({-r[count] for r in scored})},
      pseudo_ppl_subset=dict(size=len(subset), seed=_SEED.value,
                             spearman=_spearmans(
                                 pppl, (*variants.STRATEGIES, count))))


def _families(seqs):
  """(parent index, member indices) of linked groups (see the docstring)."""
  families = []
  by_length = collections.defaultdict(list)
  for i, s in enumerate(seqs):
    by_length[len(s)].append(i)
  for indices in by_length.values():
    letters = np.array([list(seqs[i]) for i in indices])
    distance = sum(letters[:, [j]] != letters[:, j] for j in
                   range(letters.shape[1]))
    _, labels = csgraph.connected_components(distance <= 1, directed=False)
    for group in np.unique(labels):
      members = [indices[k] for k in np.flatnonzero(labels == group)]
      parent = consensus([seqs[i] for i in members])
      if len(members) >= 3 and parent in (seqs[i] for i in members):
        families.append((next(i for i in members if seqs[i] == parent),
                         members))
  return families


def stability(model, path: str, workdir: str, rng) -> dict:
  data = data_lib.read_csv(path)
  families = _families(data.seqs)
  parents = {f'family{k}': data.seqs[p] for k, (p, _) in enumerate(families)}
  rows = [dict(protein_id=f'family{k}', seq=data.seqs[i],
               label=data.labels[i],
               delta=float(data.labels[i]) - float(data.labels[p]))
          for k, (p, members) in enumerate(families) for i in members
          if i != p]
  scored = _score(model, workdir, 'stability_families', parents, rows,
                  variants.STRATEGIES)
  subset = sorted(rng.choice(len(data.seqs), _STABILITY_PLL.value,
                             replace=False))
  seqs = [data.seqs[i] for i in subset]
  start = time.perf_counter()
  pll = variants.pseudo_log_likelihoods(model, seqs, _MAX_TOKENS.value)
  logging.info('stability PLL: %d sequences in %.0f s.', len(seqs),
               time.perf_counter() - start)
  return dict(
      sequences=len(data.seqs), families=len(families),
      family_variants=len(rows),
      family_spearman_label=_spearmans(scored, variants.STRATEGIES),
      family_spearman_delta=_spearmans(scored, variants.STRATEGIES, 'delta'),
      own_pll_subset=dict(
          size=len(seqs), seed=_SEED.value, spearman=metrics.spearman(
              [float(data.labels[i]) for i in subset],
              pll / np.array([len(s) for s in seqs]))))


def main(argv):
  del argv
  model = inference.load_pretrained(_CHECKPOINT.value)
  os.makedirs(_WORKDIR.value, exist_ok=True)
  results = {'checkpoint': _CHECKPOINT.value, 'seed': _SEED.value}
  for name, run in (('fluorescence', fluorescence), ('stability', stability)):
    start = time.perf_counter()
    results[name] = run(model, os.path.join(_BENCHMARKS.value,
                                            f'{name}.valid.csv'),
                        _WORKDIR.value, np.random.default_rng(_SEED.value))
    results[name]['seconds'] = round(time.perf_counter() - start)
    logging.info('%s: %s', name, results[name])
  tables.write_text(os.path.join(_OUTPUT_DIR.value, 'results.json'),
                    json.dumps(results, indent=2) + '\n')


if __name__ == '__main__':
  app.run(main)
