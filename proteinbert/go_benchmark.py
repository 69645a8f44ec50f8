"""The CAFA-style GO benchmark around `go_eval`: inputs, baselines and report.

Predictions (gzip or plain), in either of two formats told apart by the first
non-blank line:

* TSV: the header `protein<TAB>go_id<TAB>score`, then a line per scored
  (protein, GO term) pair. Further columns (named in the header, such as
  experiments/predict_go.py's namespace and name) are allowed and ignored.
* CAFA submission: whitespace-separated `protein GO:0005524 0.54` lines,
  with optional AUTHOR, MODEL, KEYWORDS and ACCURACY lines and a closing END
  line, which are skipped.

A score lies in [0, 1]; a pair given twice keeps its higher score. Terms
need not be propagated (`go_eval` does that).

Truth and training annotations come from an annotation table (TSV
`accession<TAB>go_ids` or GAF 2.x, read by `annotation_table.AnnotationTable`)
or from a dataset file built by experiments/build_dataset.py: its test
proteins as truth, its other proteins for training. A dataset also serves as
the split: the truth table is cut to its test proteins and the training
table to the others (the split is `split` if given, else the truth's or the
training annotations' dataset). Dataset proteins go by their entry IDs (for
a FASTA-route build, the accession: the key of the annotation tables;
protein IDs in the original layout, which has no entry IDs). GO IDs resolve
through the ontology (alternative IDs to their term, obsolete IDs to their
replacements); what does not resolve is dropped and counted. Benchmark
proteins never count as training proteins.

Baselines, from the training annotations propagated (CAFA's, Jiang et al.
2016):

* naive: each term scored by the fraction of the training proteins annotated
  in its namespace that carry it; the same scores for every protein.
* homology: DIAMOND (`diamond blastp --more-sensitive`, e-value <= 1e-3, at
  most `_MAX_TARGETS` targets per query) aligns each benchmark protein to the
  annotated training proteins; a term scores the highest identity (as a
  fraction) of a hit carrying it. Skipped, with a warning, where DIAMOND or
  the sequences are missing.
"""

import array
import collections
import datetime
import itertools
import math
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from proteinbert import fasta as fasta_lib
from proteinbert import go_eval
from proteinbert import io_utils
from proteinbert.data import annotation_table
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import sources
from proteinbert.data import text_files

PREDICTIONS_HEADER = 'protein\tgo_id\tscore'
BASELINES = ('naive', 'homology')
_CAFA_KEYWORDS = frozenset([b'AUTHOR', b'MODEL', b'KEYWORDS', b'ACCURACY',
                            b'END'])
_GO_ID = re.compile(rb'GO:[0-9]+')
_HDF5_MAGIC = b'\x89HDF\r\n\x1a\n'
# DIAMOND settings of the homology baseline: CAFA's BLAST baseline keeps hits
# up to e-value 1e-3; 100 targets per query reach well past the best few
# (DIAMOND's default keeps 25).
_MAX_TARGETS = 100
_EVALUE = 1e-3


class Proteins(NamedTuple):
  """Proteins read from a table or a dataset.

  Attributes:
    annotations: protein ID -> GO IDs (() for none).
    sequences: protein ID -> sequence (a dataset's proteins), or None.
  """
  annotations: Dict[str, Tuple[str, ...]]
  sequences: Optional[Dict[str, str]] = None


class Side(NamedTuple):
  """The benchmark or the training proteins, resolved.

  Attributes:
    index: protein ID -> index, over the proteins with GO terms.
    proteins: int64 [K] protein indices of the (protein, term) pairs.
    terms: int64 [K] their terms (closed under ancestors for training).
    go_ids: how their GO IDs resolved (see `resolve`).
    sequences: protein ID -> sequence, or None where none came with them.
  """
  index: Dict[str, int]
  proteins: np.ndarray
  terms: np.ndarray
  go_ids: Dict[str, int]
  sequences: Optional[Dict[str, str]]


def is_dataset(path: str) -> bool:
  """Whether `path` is an HDF5 file (a dataset) rather than a table."""
  return io_utils.starts_with(path, _HDF5_MAGIC)


def read_table(path: str) -> Proteins:
  """Every protein of an annotation table (TSV or GAF) and its GO IDs."""
  table = annotation_table.AnnotationTable(path)
  accessions = table.absent(table.counts()['proteins_absent'])
  return Proteins({a: table.take(a) for a in accessions})


def read_dataset(path: str, test: bool) -> Proteins:
  """A dataset's test (or other) proteins, GO IDs and sequences."""
  with dataset_lib.open_dataset(path) as dataset:
    ids = (dataset.entry_ids if isinstance(dataset, dataset_lib.SparseDataset)
           else dataset.protein_ids)(0, dataset.num_proteins)
    chosen = np.flatnonzero(dataset.is_test == test)
    chunk = dataset.read_indices(chosen)
  go_ids = dataset.vocabulary.ids
  offsets = chunk.annotation_offsets
  return Proteins(
      {ids[i]: tuple(go_ids[chunk.annotation_indices[a:b]].tolist())
       for i, a, b in zip(chosen.tolist(), offsets[:-1], offsets[1:])},
      {ids[i]: s.decode('ascii') for i, s in zip(chosen.tolist(), chunk.seqs)})


def read_fasta(path: str) -> Dict[str, str]:
  """Sequences by ID ('sp|P12345|...' headers give the accession), read as
  the model's inputs are (`proteinbert.fasta`)."""
  return {sources.header_ids(r)[0]: r.seq for r in fasta_lib.read_fasta(path)}


def resolve(ontology: ontology_lib.Ontology,
            annotations: Mapping[str, Sequence[str]],
            index: Mapping[str, int]):
  """(protein, term) index pairs of annotations, and how GO IDs resolved.

  Args:
    ontology: the GO.
    annotations: protein ID -> GO IDs.
    index: protein ID -> protein index; other proteins are left out.

  Returns:
    (proteins, terms, counts): int64 [K] each; counts maps a
    `Resolution` value ('primary', 'alt_id', ...) to the GO IDs that
    resolved that way.
  """
  go_ids, proteins = [], array.array('q')
  for protein, ids in annotations.items():
    if protein in index:
      go_ids.extend(ids)
      proteins.extend([index[protein]] * len(ids))
  # Resolving each distinct ID once keeps the work per reference small.
  references = collections.Counter(go_ids)
  resolved = {go_id: ontology.resolve(go_id) for go_id in references}
  counts = collections.Counter()
  for go_id, n in references.items():
    counts[resolved[go_id][0].value] += n
  sizes = np.fromiter((len(resolved[g][1]) for g in go_ids), np.int64,
                      len(go_ids))
  terms = np.fromiter(itertools.chain.from_iterable(
      resolved[g][1] for g in go_ids), np.int64, int(sizes.sum()))
  return np.repeat(np.array(proteins, np.int64), sizes), terms, dict(counts)


def read_predictions(path: str, ontology: ontology_lib.Ontology,
                     index: Mapping[str, int]):
  """Reads predictions (either format, see the module doc).

  Args:
    path: the file.
    ontology: the GO, to resolve IDs.
    index: benchmark protein ID -> index; other proteins are left out.

  Returns:
    (predictions, counts): `go_eval.Predictions`, and a dict of 'format',
    'pairs' (lines scored), 'other_proteins' (pairs of proteins outside the
    benchmark) and 'go_ids' (resolutions, as `resolve` counts them).

  Raises:
    ValueError: a malformed line (file and line named).
  """
  proteins, terms = array.array('q'), array.array('q')
  scores = array.array('f')
  resolved = {}
  pairs = others = 0
  how_counts = collections.Counter()
  form = None
  columns = 3  # Of a TSV, from its header.
  for number, line in enumerate(text_files.read_lines(path), start=1):
    line = line.rstrip(b'\r')
    if not line.strip():
      continue
    if form is None:
      header = line.split(b'\t')
      form = 'tsv' if b'\t'.join(header[:3]) == (
          PREDICTIONS_HEADER.encode()) else 'cafa'
      if form == 'tsv':
        columns = len(header)
        continue
    fields = line.split(b'\t') if form == 'tsv' else line.split()
    if form == 'cafa' and fields[0] in _CAFA_KEYWORDS:
      continue
    if len(fields) != columns or not _GO_ID.fullmatch(fields[1]):
      raise ValueError(
          f'{path}:{number}: expected "protein GO:ID score" (TSV after the '
          f'header {PREDICTIONS_HEADER!r}, as many fields as the header, or '
          f'a CAFA submission), found '
          f'{line[:80].decode("utf-8", "replace")!r}.')
    try:
      score = float(fields[2])
    except ValueError:
      score = math.nan
    if not 0 <= score <= 1:
      raise ValueError(f'{path}:{number}: score {fields[2][:20].decode()!r} '
                       'is not a number in [0, 1].')
    pairs += 1
    protein = index.get(fields[0].decode('utf-8', 'replace'))
    if protein is None:
      others += 1
      continue
    go_id = fields[1].decode()
    if go_id not in resolved:
      resolved[go_id] = ontology.resolve(go_id)
    how, term_indices = resolved[go_id]
    how_counts[how.value] += 1
    for term in term_indices:
      proteins.append(protein)
      terms.append(term)
      scores.append(score)
  predictions = go_eval.Predictions(np.array(proteins, np.int64),
                                    np.array(terms, np.int64),
                                    np.array(scores, np.float32))
  return predictions, dict(format=form or 'empty', pairs=pairs,
                           other_proteins=others, go_ids=dict(how_counts))


def naive_baseline(graph: go_eval.GoGraph, proteins: np.ndarray,
                   terms: np.ndarray) -> go_eval.Predictions:
  """Term frequencies among the training proteins annotated in a namespace.

  Args:
    graph: the GO.
    proteins: int64 [K] training proteins, closed under ancestors.
    terms: int64 [K] their terms.
  """
  counts = np.bincount(terms, minlength=len(graph))
  background = np.full(len(graph), -np.inf, np.float32)
  for namespace in go_eval.NAMESPACES:
    annotated = len(np.unique(proteins[graph.namespaces[terms] == namespace]))
    scored = (graph.namespaces == namespace) & (counts > 0)
    background[scored] = counts[scored] / annotated
  empty = np.zeros(0, np.int64)
  return go_eval.Predictions(empty, empty, np.zeros(0, np.float32),
                             background)


def homology_baseline(hits: Tuple[np.ndarray, np.ndarray, np.ndarray],
                      proteins: np.ndarray,
                      terms: np.ndarray) -> go_eval.Predictions:
  """Each query's terms from its hits, scored by the best hit's identity.

  Args:
    hits: (queries int64 [H] benchmark protein indices, targets int64 [H]
      training protein indices, identities float32 [H] in [0, 1]).
    proteins: int64 [K] training proteins, closed under ancestors and sorted.
    terms: int64 [K] their terms.
  """
  queries, targets, identities = hits
  offsets = np.searchsorted(proteins, np.arange(
      max(proteins.max(initial=-1), targets.max(initial=-1)) + 2))
  starts = offsets[targets]
  counts = offsets[targets + 1] - starts
  ends = np.cumsum(counts)
  within = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts,
                                                               counts)
  return go_eval.Predictions(np.repeat(queries, counts),
                             terms[np.repeat(starts, counts) + within],
                             np.repeat(identities, counts))


def align(queries: Mapping[str, str], targets: Mapping[str, str],
          diamond: str = 'diamond', threads: int = 1):
  """DIAMOND hits of `queries` against `targets` (settings in the module doc).

  Args:
    queries: ID -> sequence.
    targets: ID -> sequence.
    diamond: the DIAMOND executable.
    threads: its threads.

  Returns:
    A list of (query ID, target ID, identity in [0, 1]).

  Raises:
    RuntimeError: DIAMOND failed (its error output is quoted).
  """
  with tempfile.TemporaryDirectory() as scratch:
    paths = {name: os.path.join(scratch, name)
             for name in ('queries.fasta', 'targets.fasta', 'targets.dmnd',
                          'hits.tsv')}
    for name, sequences in (('queries.fasta', queries),
                            ('targets.fasta', targets)):
      with open(paths[name], 'w') as f:
        f.writelines(f'>{i}\n{s}\n' for i, s in sequences.items() if s)
    for command in (
        ['makedb', '--in', paths['targets.fasta'], '--db',
         paths['targets.dmnd']],
        ['blastp', '--query', paths['queries.fasta'], '--db',
         paths['targets.dmnd'], '--out', paths['hits.tsv'], '--outfmt', '6',
         'qseqid', 'sseqid', 'pident', '--evalue', str(_EVALUE),
         '--max-target-seqs', str(_MAX_TARGETS), '--more-sensitive',
         '--tmpdir', scratch]):
      done = subprocess.run(
          [diamond] + command + ['--threads', str(threads), '--quiet'],
          capture_output=True, text=True, check=False)
      if done.returncode:
        raise RuntimeError(f'diamond {command[0]} failed (exit status '
                           f'{done.returncode}): {done.stderr[-2000:]}')
    with open(paths['hits.tsv']) as f:
      rows = [line.rstrip('\n').split('\t') for line in f if line.strip()]
  return [(q, t, float(identity) / 100) for q, t, identity in rows]


def run(go_obo: str, truth: str, predictions: Optional[str] = None,
        train_annotations: Optional[str] = None, split: Optional[str] = None,
        train_fasta: Optional[str] = None, query_fasta: Optional[str] = None,
        baselines: Sequence[str] = BASELINES, diamond: str = 'diamond',
        threads: int = 1) -> Dict[str, Any]:
  """Scores predictions and baselines; returns the report (see `table`).

  Args:
    go_obo: the GO (OBO).
    truth: annotation table or dataset (see the module doc).
    predictions: predictions file, or None for baselines only.
    train_annotations: annotation table or dataset, for IA (Smin) and the
      baselines; None leaves both out.
    split: a dataset whose test proteins are the benchmark (module doc).
    train_fasta: training sequences for the homology baseline (default: the
      split's).
    query_fasta: benchmark sequences (default: the split's).
    baselines: which of `BASELINES` to run.
    diamond: the DIAMOND executable.
    threads: DIAMOND's threads.

  Returns:
    The report, a JSON-able dict: 'created', 'inputs', 'settings', 'truth',
    'training' and 'methods' (name -> {'namespaces': namespace -> the fields
    of `go_eval.NamespaceScores`, 'input': what the method read} or
    {'skipped': why}).
  """
  unknown = set(baselines) - set(BASELINES)
  if unknown:
    raise ValueError(f'Unknown baselines {sorted(unknown)}; expected some of '
                     f'{BASELINES}.')
  ontology = ontology_lib.Ontology.from_obo(go_obo)
  graph = go_eval.GoGraph(ontology)
  if split is None:
    split = next((p for p in (truth, train_annotations)
                  if p and is_dataset(p)), None)
  benchmark = _resolve_side(ontology, _read_side(truth, True, split), {})
  report = dict(
      created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
      inputs=dict(go_obo=go_obo, ontology=ontology.header.get(
          'data-version', ''), truth=truth, predictions=predictions,
                  train_annotations=train_annotations, split=split,
                  train_fasta=train_fasta, query_fasta=query_fasta),
      settings=dict(relations=['is_a', 'part_of'],
                    thresholds=[0.0, 1.0, 0.01], baselines=list(baselines),
                    aligner=f'{diamond} blastp --more-sensitive --evalue '
                    f'{_EVALUE} --max-target-seqs {_MAX_TARGETS}'),
      truth=dict(proteins=len(benchmark.index), go_ids=benchmark.go_ids),
      methods={})

  def score(predictions, ia):
    # JSON has no NaN: an undefined measure is null.
    return {namespace: {k: None if isinstance(v, float) and math.isnan(v)
                        else v for k, v in s._asdict().items()}
            for namespace, s in go_eval.evaluate(
                graph, benchmark.proteins, benchmark.terms, predictions,
                ia).items()}

  training = ia = None
  if train_annotations:
    proteins = _read_side(train_annotations, False, split)
    overlap = sum(p in benchmark.index for p in proteins.annotations)
    if overlap:
      logging.warning('%d benchmark proteins are in the training annotations; '
                      'they are left out of training.', overlap)
    training = _resolve_side(ontology, proteins, benchmark.index)
    propagated = go_eval.propagate_annotations(graph, training.proteins,
                                               training.terms)
    training = training._replace(proteins=propagated[0], terms=propagated[1])
    ia = go_eval.information_accretion(graph, *propagated)
    report['training'] = dict(proteins=len(training.index),
                              go_ids=training.go_ids,
                              benchmark_proteins_left_out=overlap)
  methods = report['methods']
  if predictions:
    model, counts = read_predictions(predictions, ontology, benchmark.index)
    methods['model'] = dict(input=counts, namespaces=score(model, ia))
  if training and 'naive' in baselines:
    methods['naive'] = dict(namespaces=score(
        naive_baseline(graph, training.proteins, training.terms), ia))
  if training and 'homology' in baselines:
    hits = _homology_hits(benchmark, training, query_fasta, train_fasta,
                          diamond, threads)
    methods['homology'] = hits if 'skipped' in hits else dict(
        input=hits['input'], namespaces=score(homology_baseline(
            hits['hits'], training.proteins, training.terms), ia))
  return report


def _read_side(path: str, test: bool, split: Optional[str]) -> Proteins:
  """Truth (test) or training proteins from a dataset or a table."""
  if is_dataset(path):
    return read_dataset(path, test)
  proteins = read_table(path)
  if split is None:
    return proteins
  chosen = read_dataset(split, test)
  return Proteins({p: go_ids for p, go_ids in proteins.annotations.items()
                   if p in chosen.annotations}, chosen.sequences)


def _resolve_side(ontology, proteins: Proteins,
                  leave_out: Mapping[str, int]) -> Side:
  """Indexes the proteins with GO IDs, save those in `leave_out`."""
  ids = sorted(p for p, go_ids in proteins.annotations.items()
               if go_ids and p not in leave_out)
  index = {p: i for i, p in enumerate(ids)}
  return Side(index, *resolve(ontology, proteins.annotations, index),
              proteins.sequences)


def _homology_hits(benchmark: Side, training: Side, query_fasta, train_fasta,
                   diamond, threads) -> Dict[str, Any]:
  """{'hits': index arrays for `homology_baseline`, 'input': counts}, or
  {'skipped': why}."""
  def skipped(why):
    logging.warning('Homology baseline skipped: %s.', why)
    return dict(skipped=why)

  if shutil.which(diamond) is None:
    return skipped(f'the aligner {diamond!r} is not installed (Debian: '
                   'apt-get install diamond-aligner)')
  queries = read_fasta(query_fasta) if query_fasta else benchmark.sequences
  targets = read_fasta(train_fasta) if train_fasta else training.sequences
  if queries is None or targets is None:
    return skipped('no sequences: give --query_fasta and --train_fasta, or a '
                   'dataset as the split')
  queries = {p: s for p, s in queries.items() if p in benchmark.index}
  targets = {p: s for p, s in targets.items() if p in training.index}
  logging.info('Aligning %d benchmark proteins to %d training proteins with '
               'DIAMOND.', len(queries), len(targets))
  hits = align(queries, targets, diamond, threads)
  arrays = (np.array([benchmark.index[q] for q, _, _ in hits], np.int64),
            np.array([training.index[t] for _, t, _ in hits], np.int64),
            np.array([i for _, _, i in hits], np.float32))
  return dict(hits=arrays, input=dict(
      queries=len(queries), targets=len(targets), hits=len(hits),
      queries_with_hits=len(np.unique(arrays[0]))))


def table(report: Mapping[str, Any]) -> str:
  """The report's measures as a text table (a row per method and namespace)."""
  columns = ('proteins', 'fmax', 'fmax_threshold', 'coverage', 'smin',
             'smin_threshold', 'micro_aupr', 'macro_aupr')
  header = ('method', 'namespace', 'proteins', 'Fmax', 't', 'coverage',
            'Smin', 't', 'microAUPR', 'macroAUPR')
  rows = [header]
  for method, entry in report['methods'].items():
    if 'skipped' in entry:
      rows.append((method, f'skipped: {entry["skipped"]}'))
      continue
    for namespace, scores in entry['namespaces'].items():
      rows.append((method, namespace) + tuple(
          _cell(c, scores[c]) for c in columns))
  widths = [max(len(r[i]) for r in rows if len(r) == len(header))
            for i in range(len(header))]
  return '\n'.join(
      '  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
      if len(row) == len(header) else '  '.join(row) for row in rows)


def _cell(name: str, value) -> str:
  """A table cell: counts whole, thresholds to 0.01, measures to 0.001."""
  if value is None:  # Undefined (NaN).
    return '-'
  if isinstance(value, int):
    return str(value)
  return f'{value:.2f}' if name.endswith('threshold') else f'{value:.3f}'
