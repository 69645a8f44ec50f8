"""GO function prediction from sequence: consistent scores, and files of them.

Axis letters: B batch, A annotation outputs (the model's GO vocabulary),
T terms of the ontology.

The annotation head scores each term of the model's GO vocabulary on its own
(a sigmoid per output), so raw scores can break GO's true-path rule: a
protein that binds ATP also binds nucleotides. `TruePath` makes them
consistent: score(t) = the maximum raw score over t and its descendants in
the vocabulary, descendants by `is_a` and same-namespace `part_of` (the
relations CAFA propagates over, `go_eval.GoGraph`), reached through terms
outside the vocabulary too. A term then scores at least as high as any of
its descendants, and evaluators that propagate scores upwards find nothing
to change.

Where the ontology comes from: our checkpoints carry their vocabulary's GO
IDs, names and namespaces (`PretrainedModel.go_vocabulary`) but not the
relations between the terms, and the official pickle carries no vocabulary
at all. The relations therefore always come from an OBO file, which should
be the GO release the model was trained on. A vocabulary ID that the OBO
lacks, or knows only as obsolete, keeps its own raw score (it is logged).
Names and namespaces come from the checkpoint; for a head without GO IDs,
from a vocabulary file (`read_vocabulary_file`: one GO ID per line, in head
order) and the OBO (`vocabulary_from_ids`).

Input annotations: the model reads known GO terms beside the sequence. By
default none are known (all zeros: prediction from sequence alone). An
annotation table (TSV `accession<TAB>go_ids` or GAF, `annotation_table`)
supplies known terms for some proteins, matched by entry ID
(`sources.header_ids`: the accession of `sp|P12345|...` headers, else the
FASTA ID). They are resolved (alternative and obsolete IDs) and closed under
their `is_a` ancestors, as the dataset builder annotates training proteins,
and those in the vocabulary are set to 1. Known terms are inputs only: their
scores are still the model's.

Which terms are written (`OutputOptions`): those scoring at least
`threshold`, at most `top_k` per protein (0: no limit), highest first; a tie
puts a term before its descendants, so what is written for a protein is
closed under ancestors within the vocabulary.

Output formats (`predict_fasta`), both read by `experiments/evaluate_go.py
--predictions`:
  tsv   the header `protein<TAB>go_id<TAB>score<TAB>namespace<TAB>name`, then
        a line per (protein, term), a protein's lines together:
          protein    the FASTA ID (the header's first word)
          go_id      the term's GO ID, as in the model's vocabulary
          score      its consistent score in [0, 1], to 4 decimals
          namespace  molecular_function, biological_process or
                     cellular_component ('' when unknown)
          name       the term's name ('' when unknown)
  cafa  a CAFA submission: AUTHOR, MODEL and KEYWORDS lines, then
        `target<TAB>GO:id<TAB>score` lines with scores to 2 decimals in
        (0, 1] (terms that round to 0.00 are left out), then END.

Resuming: `<output>.journal` records the run (`proteinbert.journal`): the
settings (format, model config, parameter fingerprint, vocabulary, true-path
structure, options: JSON), then each protein's output lines, keyed by its ID
with the SHA-1 of its sequence and known terms, fsynced one protein at a
time. A killed run loses at most the protein it was writing. Re-running
skips the proteins done; other settings, or an ID done for another sequence
or other known terms, are an error. The output is written atomically from
the journal once every protein is in, so it is never partial. The journal
stays beside it (about the output's size), so a re-run, or one with
proteins added to the FASTA, redoes nothing; delete both to start over.
"""

import hashlib
import json
import os
import re
from typing import Callable, Iterator, NamedTuple, Optional, Sequence

from absl import logging
import numpy as np

from proteinbert import batching
from proteinbert import compiled
from proteinbert import fasta as fasta_lib
from proteinbert import go_benchmark
from proteinbert import go_eval
from proteinbert import inference
from proteinbert import io_utils
from proteinbert import journal as journal_lib
from proteinbert import params_io
from proteinbert import residues
from proteinbert.data import annotation_table
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import sources

_FORMAT = 'proteinbert-go-predictions-2'
FORMATS = ('tsv', 'cafa')
TSV_COLUMNS = ('protein', 'go_id', 'score', 'namespace', 'name')
_GO_ID = re.compile(r'GO:[0-9]+')
# The shortest length bucket (as `embeddings.Embedder`).
_START_SEQ_LEN = 64


class OutputOptions(NamedTuple):
  """What `predict_fasta` writes.

  Attributes:
    threshold: write terms scoring at least this.
    top_k: write at most this many terms per protein, highest first; 0: all.
    format: one of `FORMATS` (see the module doc).
    author: CAFA's AUTHOR line (the team).
    model: CAFA's MODEL line (1, 2 or 3).
    keywords: CAFA's KEYWORDS line.
  """
  threshold: float = 0.01
  top_k: int = 0
  format: str = 'tsv'
  author: str = 'proteinbert-jax'
  model: int = 1
  keywords: str = 'machine learning.'


def check_options(options: OutputOptions) -> None:
  """Raises ValueError for options out of range."""
  if options.format not in FORMATS:
    raise ValueError(f'format {options.format!r}: expected one of {FORMATS}.')
  if not 0 <= options.threshold <= 1:
    raise ValueError(f'threshold {options.threshold}: expected a score in '
                     '[0, 1].')
  if options.top_k < 0:
    raise ValueError(f'top_k {options.top_k}: expected 0 (no limit) or more.')
  if options.model not in (1, 2, 3):
    raise ValueError(f'CAFA model {options.model}: expected 1, 2 or 3.')
  for field in ('author', 'keywords'):
    if not getattr(options, field).strip() or '\n' in getattr(options, field):
      raise ValueError(f'CAFA {field} must be one non-empty line.')


def read_vocabulary_file(path: str, num_annotations: int) -> list[str]:
  """The GO IDs of a head's outputs: one per line, in output order.

  Args:
    path: the file (blank lines at the end are ignored).
    num_annotations: the model's annotation outputs A.

  Returns:
    [A] GO IDs.

  Raises:
    ValueError: a line that is not one GO ID, an ID given twice, or not
      exactly A IDs; the message names the file and line.
  """
  with open(path, encoding='utf-8', errors='replace') as f:
    lines = f.read().rstrip('\n\r\t ').splitlines()
  first_line = {}
  for number, line in enumerate(lines, start=1):
    go_id = line.strip()
    if not _GO_ID.fullmatch(go_id):
      raise ValueError(f'{path}:{number}: expected one GO ID (GO: and digits) '
                       f'per line, found {line[:80]!r}.')
    if go_id in first_line:
      raise ValueError(f'{path}:{number}: {go_id} is repeated (first at line '
                       f'{first_line[go_id]}).')
    first_line[go_id] = number
  if len(lines) != num_annotations:
    raise ValueError(f'{path}: {len(lines)} GO IDs, but the model has '
                     f'{num_annotations} annotation outputs; the file needs '
                     'one ID per output, in order.')
  return [line.strip() for line in lines]


def _current_term(ontology: ontology_lib.Ontology, go_id: str) -> int:
  """The index of the current term `go_id` names (its own or alternative
  ID), or -1."""
  how, terms = ontology.resolve(go_id)
  current = (ontology_lib.Resolution.PRIMARY, ontology_lib.Resolution.ALT_ID)
  return terms[0] if how in current else -1


def vocabulary_from_ids(go_ids: Sequence[str],
                        ontology: ontology_lib.Ontology
                        ) -> dataset_lib.Vocabulary:
  """A vocabulary of `go_ids` with names and namespaces from the ontology
  ('' for IDs it does not know as current terms; counts unknown)."""
  terms = [_current_term(ontology, g) for g in go_ids]
  field = lambda name: np.array(
      [getattr(ontology.terms[t], name) if t >= 0 else '' for t in terms],
      dtype=str)
  return dataset_lib.Vocabulary(np.array(go_ids, dtype=str), field('name'),
                                field('namespace'),
                                np.full(len(go_ids), -1, np.int64))


class TruePath:
  """Scores made consistent with the true-path rule (see the module doc).

  Attributes:
    positions: int64 [T] the vocabulary position of each ontology term, -1
      for terms outside the vocabulary.
    num_ancestors: int64 [A] each term's ancestors in the vocabulary (itself
      included): fewer than any of its descendants have.
    unresolved: vocabulary IDs the ontology lacks or knows as obsolete.
  """

  def __init__(self, go_ids: Sequence[str], ontology: ontology_lib.Ontology):
    """Finds each vocabulary term's descendants in the vocabulary.

    Args:
      go_ids: [A] the vocabulary.
      ontology: the GO.

    Raises:
      ValueError: two vocabulary IDs naming one term.
      ontology_lib.OboError: see `go_eval.GoGraph`.
    """
    graph = go_eval.GoGraph(ontology)
    terms = np.array([_current_term(ontology, g) for g in go_ids], np.int64)
    self.unresolved = [g for g, t in zip(go_ids, terms) if t < 0]
    self.positions = np.full(len(ontology), -1, np.int64)
    known = np.flatnonzero(terms >= 0)
    for position in known:
      first = self.positions[terms[position]]
      if first >= 0:
        raise ValueError(f'Vocabulary entries {first} ({go_ids[first]}) and '
                         f'{position} ({go_ids[position]}) are one term of '
                         'the ontology.')
      self.positions[terms[position]] = position
    descendants, ancestors = graph.ontology.closure_pairs(known, terms[known])
    ancestors = self.positions[ancestors]
    isolated = np.flatnonzero(terms < 0)
    descendants = np.concatenate([descendants[ancestors >= 0], isolated])
    ancestors = np.concatenate([ancestors[ancestors >= 0], isolated])
    order = np.argsort(ancestors, kind='stable')
    self._descendants = descendants[order]
    # Every term is its own descendant, so no group is empty.
    self._starts = np.searchsorted(ancestors[order], np.arange(len(go_ids)))
    self.num_ancestors = np.bincount(descendants, minlength=len(go_ids))

  def __call__(self, scores: np.ndarray) -> np.ndarray:
    """[..., A] raw scores -> [..., A] consistent ones (same dtype)."""
    return np.maximum.reduceat(scores[..., self._descendants], self._starts,
                               axis=-1)

  def digest(self) -> str:
    """A short digest of the structure (what the scores depend on)."""
    return hashlib.sha256(self._descendants.tobytes()
                          + self._starts.tobytes()).hexdigest()[:16]


def _prediction_fn(model: inference.PretrainedModel
                   ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
  """(tokens [B, L], annotations [B, A]) -> annotation_probs [B, A]."""
  predict = compiled.build(inference.prediction_fn, model.config, False).apply
  return lambda tokens, annotations: predict(model.params, None, tokens,
                                             annotations).annotation_probs


class GoPredictor:
  """A model's GO scores for sequences, consistent with the true-path rule.

  Attributes:
    model: the model.
    ontology: the GO.
    vocabulary: the GO terms of its annotation outputs.
    true_path: the consistency step.
  """

  def __init__(self, model: inference.PretrainedModel,
               ontology: ontology_lib.Ontology):
    """Builds the true-path step for the model's GO vocabulary.

    Args:
      model: the model, with the GO vocabulary of its outputs (for a
        checkpoint without one: `PretrainedModel(params, config,
        vocabulary_from_ids(read_vocabulary_file(...), ontology))`).
      ontology: the GO (the relations; see the module doc).

    Raises:
      ValueError: the model has no GO vocabulary.
    """
    vocabulary = model.go_vocabulary
    if vocabulary is None:
      raise ValueError('The checkpoint carries no GO vocabulary (the official '
                       'pickle has none): give a file of its GO IDs, one per '
                       'output in order (--go_vocabulary).')
    self.model = model
    self.ontology = ontology
    self.vocabulary = vocabulary
    self.true_path = TruePath(vocabulary.ids.tolist(), ontology)
    if self.true_path.unresolved:
      logging.warning(
          '%d of the %d vocabulary terms are not current terms of the '
          'ontology; they keep their own scores: %s',
          len(self.true_path.unresolved), len(vocabulary.ids),
          self.true_path.unresolved[:10])

  def __call__(self, seqs: Sequence[str],
               known: Optional[Sequence[np.ndarray]] = None,
               max_tokens: int = 16384
               ) -> Iterator[tuple[int, np.ndarray]]:
    """Scores every sequence, yielding (index into seqs, scores).

    Args:
      seqs: [N] amino-acid sequences (non-empty).
      known: [N] int vocabulary positions of each sequence's known terms
        (the input annotations); None: none known.
      max_tokens: about how many tokens go into one call (batch size times
        bucket length, at least one protein per call).

    Yields:
      (index, float32 [A] consistent scores), grouped by length bucket.

    Raises:
      ValueError: a sequence breaks `proteinbert.residues`' rule.
    """
    seqs = residues.check_all(seqs)
    num_annotations = self.model.config.num_annotations

    def annotations(indices):
      dense = np.zeros((len(indices), num_annotations), np.float32)
      if known is not None:
        for row, i in enumerate(indices):
          dense[row, known[i]] = 1
      return [dense]

    for index, scores in batching.run_bucketed(
        _prediction_fn(self.model), seqs, _START_SEQ_LEN,
        batching.batch_size_for_tokens(max_tokens, _START_SEQ_LEN),
        annotations):
      yield index, self.true_path(scores)

  def selected(self, scores: np.ndarray, threshold: float,
               top_k: int = 0) -> np.ndarray:
    """int64 [K] positions of the terms to write, highest score first.

    Args:
      scores: float32 [A] consistent scores.
      threshold: the lowest score kept.
      top_k: at most this many; 0: no limit.
    """
    chosen = np.flatnonzero(scores >= threshold)
    # Ties (a term scores its best descendant's score) put ancestors first,
    # so a cut at top_k keeps the set closed under ancestors.
    chosen = chosen[np.lexsort((self.true_path.num_ancestors[chosen],
                                -scores[chosen]))]
    return chosen[:top_k] if top_k else chosen


def known_terms(path: str, records: Sequence[fasta_lib.FastaRecord],
                ontology: ontology_lib.Ontology,
                positions: np.ndarray) -> list[np.ndarray]:
  """Each record's known terms from an annotation table (module doc).

  Args:
    path: the table (TSV or GAF).
    records: [N] the FASTA records.
    ontology: the GO.
    positions: int64 [T] vocabulary position of each term (`TruePath`).

  Returns:
    [N] int64 sorted vocabulary positions.

  Raises:
    annotation_table.AnnotationTableError: a malformed table (file and line
      named).
  """
  table = annotation_table.AnnotationTable(path)
  keys = [sources.header_ids(r)[0] for r in records]
  annotations = {key: table.take(key) for key in keys}
  absent = table.counts()['proteins_absent']
  if absent:
    logging.warning('%s: %d proteins are not in the FASTA file (e.g. %s).',
                    path, absent, table.absent(5))
  rows, terms, resolutions = go_benchmark.resolve(
      ontology, annotations, {key: i for i, key in enumerate(keys)})
  rows, terms = ontology.closure_pairs(rows, terms)
  kept = positions[terms] >= 0
  rows, terms = rows[kept], positions[terms[kept]]
  order = np.lexsort((terms, rows))
  rows, terms = rows[order], terms[order]
  found = np.searchsorted(rows, np.arange(len(records) + 1))
  known = [np.unique(terms[a:b]) for a, b in zip(found[:-1], found[1:])]
  logging.info('%s: known terms for %d of %d proteins (GO IDs: %s).', path,
               sum(len(k) > 0 for k in known), len(records), resolutions)
  return known


def _digest(seq: str, known: np.ndarray) -> str:
  """What a protein's output depends on besides the settings."""
  text = seq + '\n' + ','.join(map(str, known.tolist()))
  return hashlib.sha1(text.encode()).hexdigest()


def _header(options: OutputOptions) -> str:
  if options.format == 'tsv':
    return '\t'.join(TSV_COLUMNS) + '\n'
  return (f'AUTHOR\t{options.author}\nMODEL\t{options.model}\n'
          f'KEYWORDS\t{options.keywords}\n')


def _block(protein: str, terms: np.ndarray, scores: np.ndarray,
           vocabulary: dataset_lib.Vocabulary, options: OutputOptions) -> str:
  """A protein's output lines (see the module doc)."""
  if options.format == 'tsv':
    return ''.join(
        f'{protein}\t{vocabulary.ids[t]}\t{scores[t]:.4f}\t'
        f'{vocabulary.namespaces[t]}\t{vocabulary.names[t]}\n' for t in terms)
  rounded = [(t, f'{scores[t]:.2f}') for t in terms]
  return ''.join(f'{protein}\t{vocabulary.ids[t]}\t{score}\n'
                 for t, score in rounded if score != '0.00')


def _write_output(journal: journal_lib.Journal, path: str,
                  proteins: Sequence[str], options: OutputOptions) -> None:
  """Writes the proteins' blocks, in order, as the output (atomically)."""
  with io_utils.atomic_path(path) as tmp, open(tmp, 'wb') as out:
    out.write(_header(options).encode())
    for protein in proteins:
      out.write(journal.read(protein))
    if options.format == 'cafa':
      out.write(b'END\n')


def _settings(predictor: GoPredictor, options: OutputOptions) -> str:
  vocabulary = hashlib.sha256('\n'.join(
      predictor.vocabulary.ids.tolist()).encode()).hexdigest()[:16]
  return io_utils.json_dumps(dict(
      format=_FORMAT, options=options._asdict(),
      model_config=json.loads(predictor.model.config.to_json()),
      params=params_io.fingerprint(predictor.model.params),
      vocabulary=vocabulary, true_path=predictor.true_path.digest()),
                    sort_keys=True)


def predict_fasta(fasta_path: str, predictor: GoPredictor, output_path: str,
                  options: OutputOptions = OutputOptions(),
                  annotations: Optional[str] = None, max_tokens: int = 16384,
                  progress: Optional[Callable[[int, int], None]] = None
                  ) -> fasta_lib.JobSummary:
  """Predicts GO terms for every record of a FASTA file (see the module doc).

  Every input (FASTA, annotation table, options, an existing journal's
  settings) is read and checked before anything is written.

  Args:
    fasta_path: input FASTA (plain or gzip).
    predictor: the model, vocabulary and true-path step.
    output_path: the predictions file; `<output_path>.journal` beside it.
    options: what to write.
    annotations: an annotation table of known terms, or None (none known).
    max_tokens: tokens per model call (see `GoPredictor`).
    progress: called with (proteins done, proteins to do) after each one.

  Returns:
    What was done (`fasta.JobSummary`).

  Raises:
    ValueError: bad options, a bad FASTA (no records, invalid characters,
      repeated IDs) or annotation table, an output without its journal, or
      a journal of other settings, sequences or known terms.
  """
  check_options(options)
  records, empty, odd = fasta_lib.read_keyed(fasta_path)
  known = (known_terms(annotations, records, predictor.ontology,
                       predictor.true_path.positions) if annotations
           else [np.zeros(0, np.int64)] * len(records))
  digests = {r.id: _digest(r.seq, k) for r, k in zip(records, known)}
  journal = journal_lib.open_job(
      output_path, _settings(predictor, options),
      'model, parameters, vocabulary, ontology or output options', digests)
  skipped = [r.id for r in records if r.id in journal]
  pending = [i for i, r in enumerate(records) if r.id not in journal]
  for done, (index, scores) in enumerate(predictor(
      [records[i].seq for i in pending], [known[i] for i in pending],
      max_tokens), start=1):
    record = records[pending[index]]
    terms = predictor.selected(scores, options.threshold, options.top_k)
    journal.append(record.id, digests[record.id], _block(
        record.id, terms, scores, predictor.vocabulary, options).encode())
    if progress is not None:
      progress(done, len(pending))
  if pending or not os.path.exists(output_path):
    _write_output(journal, output_path, [r.id for r in records], options)
  return fasta_lib.JobSummary([records[i].id for i in pending], skipped,
                              empty, odd)
