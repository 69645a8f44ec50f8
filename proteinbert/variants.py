"""Zero-shot variant-effect scores from the denoiser's token probabilities.

Axis letters: n residues, V vocabulary, P positions scored, N variants.

The strategies are those fair-esm users know (Meier et al. 2021,
`examples/variant-prediction/predict.py`); higher means more like the
sequences the model learnt from:

  wt-marginals      one pass on the wild type; the sum over mutated positions
                    of log p(mutant letter) - log p(wild-type letter).
  masked-marginals  the same sum, each mutated position read from a pass in
                    which that position alone is corrupted (below).
  pseudo-ppl        the pseudo-log-likelihood, the sum over residues of log
                    p(the residue) with that residue corrupted, of the mutant
                    minus that of the wild type (L corrupted copies each).

ProteinBERT has no mask token: pretraining replaced tokens by uniformly drawn
ones (`data.corruption`). A corrupted position is shown as `<OTHER>` and its
probabilities renormalised over the tokens other than `<OTHER>`, the
convention of `training.losses.denoising_metrics`. Why: a Bayes-optimal
denoiser given shown token s returns p(t | context) ((1 - rho)[t = s] + rho /
V) up to normalisation, so for every t other than s its output is
proportional to p(t | context), the marginal a mask token would give, and
renormalising over t != s recovers it exactly, whatever rho. Any shown token
other than the two letters compared would do; `<OTHER>` (an unknown residue)
is never one of them, is shown as a replacement as often as any token in
training, and rarely occurs otherwise, so it carries least meaning of its own.
The score is then deterministic: no replacement is drawn, so no seed.
Drawing replacements as in training would add noise only, and averaging over
all V of them would cost V passes per position and bring back the bet on
copying whenever the drawn token is one of the letters compared.

The same reasoning says what `wt-marginals` measures on a denoiser: the
wild-type letter is the shown one, so log p(mut) - log p(wt) is the
context's log-ratio minus log((1 - rho + rho / V) / (rho / V)), about 5 nats
at rho = 0.15, for every mutated position: a ranking of single mutants
equal to the context's, and of multi-mutants dominated by their counts.

Inputs (`read_variants`): a CSV with a `mutation` column of substitutions
such as `A23V` or `A23V:G45L` (1-based positions), or a `seq` column of
whole mutant sequences of the wild type's length, whose substitutions are
read off by comparison. Each row's wild type is the FASTA record named by its
`protein_id` column, else the record `wildtype_id` names, else the FASTA's
only record. Every row is checked before the model runs; an error names the
file, the line and what was expected.
"""

import collections
import csv
import re
from typing import Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from proteinbert import batching
from proteinbert import compiled
from proteinbert import fasta as fasta_lib
from proteinbert import inference
from proteinbert import residues
from proteinbert import tables
from proteinbert import tokenization

STRATEGIES = ('wt-marginals', 'masked-marginals', 'pseudo-ppl')

# Any character outside the vocabulary tokenizes to <OTHER>; `detokenize`
# writes <OTHER> as '?'.
_CORRUPTED = '?'
_SUBSTITUTION = re.compile(r'([A-Z])([0-9]+)([A-Z])')
_LETTERS = frozenset(tokenization.AMINO_ACIDS)


class Substitution(NamedTuple):
  """One substitution, as in `A23V`.

  Attributes:
    wt: the wild-type letter.
    position: 1-based position in the wild type.
    mt: the mutant letter.
  """
  wt: str
  position: int
  mt: str

  def __str__(self) -> str:
    return f'{self.wt}{self.position}{self.mt}'


class Variant(NamedTuple):
  """A mutant of a wild type.

  Attributes:
    protein_id: the wild type's FASTA ID.
    substitutions: in increasing position; empty for the wild type itself.
  """
  protein_id: str
  substitutions: tuple[Substitution, ...]

  @property
  def mutation(self) -> str:
    """The substitutions as `A23V:G45L` ('' for none)."""
    return ':'.join(map(str, self.substitutions))


def parse_mutation(text: str, wildtype: str, where: str
                   ) -> tuple[Substitution, ...]:
  """The substitutions of `A23V:G45L`, checked against the wild type.

  Args:
    text: substitutions joined by ':'.
    wildtype: the wild-type sequence (upper case).
    where: names the file, line and protein in errors.

  Returns:
    The substitutions in increasing position.

  Raises:
    ValueError: a malformed token, a position outside the wild type, a
      wild-type letter the wild type does not have, or a position twice.
  """
  substitutions = []
  for token in text.strip().split(':'):
    match = _SUBSTITUTION.fullmatch(token.strip())
    if not match or match.group(3) not in _LETTERS:
      raise ValueError(
          f'{where}: {token!r} in {text!r} is not a substitution; expected '
          'wild-type letter, 1-based position, mutant letter (one of '
          f'{tokenization.AMINO_ACIDS}) as in A23V, several joined by ":".')
    wt, position, mt = match.group(1), int(match.group(2)), match.group(3)
    if not 1 <= position <= len(wildtype):
      raise ValueError(f'{where}: {token!r}: position {position} is outside '
                       f'the wild type (1..{len(wildtype)}).')
    if wildtype[position - 1] != wt:
      raise ValueError(f'{where}: {token!r}: the wild type has '
                       f'{wildtype[position - 1]} at {position}, not {wt}.')
    substitutions.append(Substitution(wt, position, mt))
  positions = collections.Counter(s.position for s in substitutions)
  repeated = sorted(p for p, count in positions.items() if count > 1)
  if repeated:
    raise ValueError(f'{where}: {text!r} changes position(s) {repeated} more '
                     'than once; expected each position at most once.')
  return tuple(sorted(substitutions, key=lambda s: s.position))


def substitutions_between(wildtype: str, mutant: str, where: str
                          ) -> tuple[Substitution, ...]:
  """The substitutions that turn `wildtype` into `mutant` (same length).

  Args:
    wildtype: the wild type (upper case).
    mutant: the mutant (`residues.normalize`d).
    where: names the file, line and protein in errors.

  Raises:
    ValueError: the lengths differ, or a mutant letter is not in the
      vocabulary.
  """
  if len(mutant) != len(wildtype):
    raise ValueError(
        f'{where}: the sequence has {len(mutant)} residues, the wild type '
        f'{len(wildtype)}; only substitutions can be scored, so expected '
        'equal lengths.')
  substitutions = tuple(Substitution(w, i + 1, m) for i, (w, m)
                        in enumerate(zip(wildtype, mutant)) if w != m)
  for substitution in substitutions:
    if substitution.mt not in _LETTERS:
      raise ValueError(
          f'{where}: {substitution} puts {substitution.mt}, which the model '
          f'reads as <OTHER>; mutant letters must be one of '
          f'{tokenization.AMINO_ACIDS}.')
  return substitutions


def mutant_sequence(wildtype: str, variant: Variant) -> str:
  """The wild type with the variant's substitutions made."""
  letters = list(wildtype)
  for substitution in variant.substitutions:
    letters[substitution.position - 1] = substitution.mt
  return ''.join(letters)


def read_wildtypes(fasta_path: str) -> dict[str, str]:
  """FASTA ID -> sequence (upper case); ValueError on a repeated ID."""
  wildtypes = {}
  for record in fasta_lib.read_fasta(fasta_path):
    if record.id in wildtypes:
      raise ValueError(f'{fasta_path}: ID {record.id!r} appears twice.')
    wildtypes[record.id] = record.seq
  return wildtypes


def _default_wildtype(wildtypes: Mapping[str, str], fasta_path: str,
                      wildtype_id: Optional[str]) -> Optional[str]:
  """The wild type of rows without a protein_id column, if one is named."""
  if wildtype_id is not None:
    if wildtype_id not in wildtypes:
      raise ValueError(f'{fasta_path}: no record {wildtype_id!r} (the '
                       'requested wild type).')
    return wildtype_id
  return next(iter(wildtypes)) if len(wildtypes) == 1 else None


def read_variants(csv_path: str, fasta_path: str,
                  wildtype_id: Optional[str] = None
                  ) -> tuple[list[dict], list[Variant], dict[str, str]]:
  """Reads and checks every row of a mutations or mutant-sequences CSV.

  Args:
    csv_path: a CSV with a `mutation` or a `seq` column (see above) and,
      optionally, `protein_id`; other columns are kept.
    fasta_path: the wild types.
    wildtype_id: the wild type of every row, for a CSV without `protein_id`
      (default: the FASTA's only record).

  Returns:
    (the CSV's rows as dicts, their Variants, FASTA ID -> wild type).

  Raises:
    ValueError: a bad FASTA, a CSV without exactly one of `mutation` and
      `seq`, a wild type both named and in a `protein_id` column or not
      known, an unreadable CSV, or a bad row (the error names the file
      and line).
  """
  wildtypes = read_wildtypes(fasta_path)
  default = _default_wildtype(wildtypes, fasta_path, wildtype_id)
  try:
    with open(csv_path, newline='', encoding='utf-8-sig') as f:
      reader = csv.DictReader(f)
      columns = reader.fieldnames or []
      kinds = [c for c in ('mutation', 'seq') if c in columns]
      if len(kinds) != 1:
        raise ValueError(f'{csv_path}: expected a "mutation" column (e.g. '
                         'A23V:G45L) or a "seq" column of mutant sequences, '
                         f'exactly one of them; the columns are {columns}.')
      has_ids = 'protein_id' in columns
      if has_ids and wildtype_id is not None:
        raise ValueError(f'{csv_path}: has a protein_id column and a wild '
                         f'type was named ({wildtype_id!r}); expected one or '
                         'the other.')
      if not has_ids and default is None:
        raise ValueError(f'{csv_path}: no protein_id column, and '
                         f'{fasta_path} has {len(wildtypes)} records; name '
                         'the wild type.')
      rows, variants = [], []
      for row in reader:
        where = f'{csv_path}:{reader.line_num}'
        protein_id = row['protein_id'] if has_ids else default
        if protein_id not in wildtypes:
          raise ValueError(f'{where}: protein_id {protein_id!r} is not in '
                           f'{fasta_path} (IDs: {sorted(wildtypes)[:10]}).')
        wildtype = wildtypes[protein_id]
        where = f'{where} ({protein_id})'
        if kinds == ['mutation']:
          substitutions = parse_mutation(row['mutation'] or '', wildtype,
                                         where)
        else:
          substitutions = substitutions_between(
              wildtype, residues.check(row['seq'] or '', where), where)
        rows.append(row)
        variants.append(Variant(protein_id, substitutions))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f'{csv_path}: cannot read as CSV: {e}') from e
  return rows, variants, wildtypes


def _residue_probs(model: inference.PretrainedModel, seqs: Sequence[str],
                   max_tokens: int, start_seq_len: int = 64
                   ) -> Iterator[tuple[int, np.ndarray]]:
  """Token probabilities at each residue, with no input annotations.

  Args:
    model: the pretrained model.
    seqs: [N] sequences (upper case; `_CORRUPTED` marks corrupted residues).
    max_tokens: about how many tokens go into one call.
    start_seq_len: length of the shortest length bucket.

  Yields:
    (index into seqs, float32 [n, V]), grouped by length bucket.
  """
  predict = compiled.build(inference.prediction_fn, model.config, False).apply

  def token_probs(tokens):
    annotations = np.zeros((tokens.shape[0], model.config.num_annotations),
                           np.float32)
    return predict(model.params, None, tokens, annotations).token_probs

  for index, probs in batching.run_bucketed(
      token_probs, seqs, start_seq_len,
      batching.batch_size_for_tokens(max_tokens, start_seq_len)):
    yield index, probs[1:len(seqs[index]) + 1]


def corrupted_log_probs(model: inference.PretrainedModel,
                        requests: Sequence[tuple[str, Sequence[int]]],
                        max_tokens: int = 16384) -> list[np.ndarray]:
  """Log-probabilities at positions corrupted one at a time (see above).

  All requests' corrupted copies run together, in length buckets.

  Args:
    model: the pretrained model.
    requests: (sequence, 0-based positions P) pairs.
    max_tokens: about how many tokens go into one model call.

  Returns:
    Per request, float64 [P, V]: row k is log p(token) at position P[k] of
    the copy with that position shown as `<OTHER>`, renormalised over the
    tokens other than `<OTHER>` (whose entry is meaningless).
  """
  copies, owners = [], []
  for r, (seq, positions) in enumerate(requests):
    for k, position in enumerate(positions):
      copies.append(seq[:position] + _CORRUPTED + seq[position + 1:])
      owners.append((r, k, position))
  results = [np.empty((len(positions), tokenization.VOCAB_SIZE))
             for _, positions in requests]
  for index, probs in _residue_probs(model, copies, max_tokens):
    r, k, position = owners[index]
    row = probs[position].astype(np.float64)
    results[r][k] = np.log(row) - np.log(row.sum() - row[tokenization.OTHER])
  return results


def pseudo_log_likelihoods(model: inference.PretrainedModel,
                           seqs: Sequence[str],
                           max_tokens: int = 16384) -> np.ndarray:
  """float64 [N]: each sequence's sum over residues of log p(the residue),
  that residue corrupted (`corrupted_log_probs`)."""
  log_probs = corrupted_log_probs(
      model, [(seq, range(len(seq))) for seq in seqs], max_tokens)
  return np.array([
      lp[np.arange(len(seq)), tokenization.tokenize(seq)[0, 1:-1]].sum()
      for seq, lp in zip(seqs, log_probs)])


def _marginal_sums(variants: Sequence[Variant],
                   log_probs: Mapping[str, np.ndarray],
                   rows: Mapping[str, Mapping[int, int]]) -> np.ndarray:
  """Sum of log p(mt) - log p(wt) over each variant's substitutions.

  Args:
    variants: [N] variants.
    log_probs: protein ID -> float [P, V] log-probabilities.
    rows: protein ID -> {1-based position: its row in log_probs}.
  """
  scores = np.zeros(len(variants))
  for i, variant in enumerate(variants):
    lp, row = log_probs[variant.protein_id], rows[variant.protein_id]
    for s in variant.substitutions:
      scores[i] += (lp[row[s.position], tokenization.VOCAB.index(s.mt)]
                    - lp[row[s.position], tokenization.VOCAB.index(s.wt)])
  return scores


def score(model: inference.PretrainedModel, variants: Sequence[Variant],
          wildtypes: Mapping[str, str], strategy: str,
          max_tokens: int = 16384) -> np.ndarray:
  """Zero-shot scores of variants (higher: more like natural proteins).

  Args:
    model: the pretrained model.
    variants: [N] checked variants (`read_variants`).
    wildtypes: protein ID -> upper-case wild-type sequence.
    strategy: one of STRATEGIES.
    max_tokens: about how many tokens go into one model call.

  Returns:
    float64 [N] scores; 0 for a variant without substitutions.
  """
  ids = sorted({v.protein_id for v in variants})
  if strategy == 'wt-marginals':
    probs = dict(_residue_probs(model, [wildtypes[i] for i in ids],
                                max_tokens))
    log_probs = {i: np.log(probs[k].astype(np.float64))
                 for k, i in enumerate(ids)}
    rows = {i: {p + 1: p for p in range(len(wildtypes[i]))} for i in ids}
    return _marginal_sums(variants, log_probs, rows)
  if strategy == 'masked-marginals':
    mutated = collections.defaultdict(set)
    for v in variants:
      mutated[v.protein_id].update(s.position for s in v.substitutions)
    positions = {i: sorted(mutated[i]) for i in ids}
    computed = corrupted_log_probs(
        model, [(wildtypes[i], [p - 1 for p in positions[i]]) for i in ids],
        max_tokens)
    rows = {i: {p: k for k, p in enumerate(positions[i])} for i in ids}
    return _marginal_sums(variants, dict(zip(ids, computed)), rows)
  if strategy == 'pseudo-ppl':
    # Each distinct sequence (wild types included) is scored once.
    seqs = {(v.protein_id, v.substitutions):
            mutant_sequence(wildtypes[v.protein_id], v) for v in variants}
    seqs.update({(i, ()): wildtypes[i] for i in ids})
    unique = sorted(set(seqs.values()))
    pll = dict(zip(unique, pseudo_log_likelihoods(model, unique, max_tokens)))
    return np.array([pll[seqs[v.protein_id, v.substitutions]]
                     - pll[wildtypes[v.protein_id]] for v in variants])
  raise ValueError(f'Unknown strategy {strategy!r}; expected one of '
                   f'{STRATEGIES}.')


def score_file(model: inference.PretrainedModel, csv_path: str,
               fasta_path: str, output_path: str,
               strategies: Sequence[str] = STRATEGIES,
               wildtype_id: Optional[str] = None,
               max_tokens: int = 16384) -> list[dict]:
  """Scores the variants of a CSV and writes them with their scores.

  Everything is read and checked before the model runs; the output is
  written atomically, so an error leaves no partial file.

  Args:
    model: the pretrained model.
    csv_path: mutations or mutant sequences (`read_variants`).
    fasta_path: the wild types.
    output_path: the CSV to write: the input's columns, then protein_id and
      mutation (the substitutions, as A23V:G45L, '' for the wild type), then
      one column per strategy.
    strategies: some of STRATEGIES.
    wildtype_id: see `read_variants`.
    max_tokens: about how many tokens go into one model call.

  Returns:
    The rows written.
  """
  unknown = [s for s in strategies if s not in STRATEGIES]
  if unknown or not strategies:
    raise ValueError(f'Strategies {list(strategies)}: expected some of '
                     f'{STRATEGIES}.')
  rows, variants, wildtypes = read_variants(csv_path, fasta_path, wildtype_id)
  clash = [c for c in strategies if rows and c in rows[0]]
  if clash:
    raise ValueError(f'{csv_path}: already has column(s) {clash}, which the '
                     'scores would overwrite.')
  scored = [dict(row, protein_id=v.protein_id, mutation=v.mutation)
            for row, v in zip(rows, variants)]
  for strategy in strategies:
    for row, value in zip(scored, score(model, variants, wildtypes, strategy,
                                        max_tokens)):
      row[strategy] = float(value)
  columns = [*(rows[0] if rows else ()), 'protein_id', 'mutation',
             *strategies]
  tables.write_csv(output_path, scored, list(dict.fromkeys(columns)))
  return scored
