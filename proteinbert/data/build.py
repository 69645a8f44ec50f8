"""Builds a pretraining dataset from UniRef XML, or FASTA and a GO table.

Two routes (`sources`): a UniRef XML release, whose entries carry their GO
IDs, or a FASTA file with an optional annotation table (TSV or GAF; none
for a sequence-only dataset). `build_dataset` reads the XML or FASTA once,
streaming, and keeps memory bounded whatever the number of entries (the
per-term counts, the vocabulary, a test-ID list and an annotation table
aside):

1. Stage. The main process decompresses the input (on a thread of its
   own) and cuts it into blocks of whole entries; worker processes parse
   them.
   Each entry's GO IDs are resolved (`ontology.Resolution`: alternative IDs
   to their term, obsolete terms to their `replaced_by`, the rest counted
   and dropped) and extended by their `is_a` ancestors. Kept proteins go to
   scratch files, annotated with ontology term indices, and each term counts
   the proteins carrying it. Each protein's sort key is a hash of the seed
   and its position in the XML (FASTA route: its ID, so that duplicate IDs
   meet in step 3 and fail), so proteins are staged by key range, about
   `_RANGES_PER_BUCKET` ranges per bucket of `bucket_size` (`_Ranges`; the
   number of proteins is extrapolated from the first block).
2. Vocabulary. Terms carried by at least `min_annotation_count` proteins,
   sorted by GO ID.
3. Shuffle and write. Consecutive key ranges make a bucket; workers sort
   each bucket by key and map its annotations to the vocabulary, while the
   main process draws test flags and appends bucket after bucket to the
   output. A range with more than `bucket_size` proteins (the estimate was
   low, or compatibility mode, whose keys are known only at the end) is
   first split into buckets by key. The output order is a pseudo-random
   permutation that depends only on the seed and the release (not on
   workers, ranges or buckets), and any contiguous shard of it (one per
   host) is a uniform sample.
4. The output is written under a temporary name and renamed when complete.

Scratch space: the staged proteins (residues, IDs and term indices,
uncompressed: about twice the output's size) beside the output or in
`scratch_dir`, freed as the output is written.

Kept proteins are all entries with a sequence, annotated or not, as in the
paper: unannotated proteins still train the language-model task.

Compatibility mode (`compat='original'`) reproduces protein-bert 1.0.1's
`create_uniref_db` + `create_uniref_h5_dataset` + `set_h5_testset`:

* annotations are the entry's direct GO IDs only (its ancestor closure was
  computed but never used), looked up by primary ID: alternative IDs count as
  unknown, obsolete terms are kept as themselves;
* the term at index 0 (the first `[Term]` in the OBO file) is dropped, as the
  original's `filter(None, ...)` does;
* term counts include every XML entry, kept or not;
* a protein is kept only if 'UniRef90_' + the part of its representative's
  ID before '_' is its cluster ID, the original's FASTA join: representatives
  with Swiss-Prot names ('TITIN_HUMAN') are lost, and a UniRef50 or UniRef100
  release yields nothing. With `fasta`, the sequence comes from the FASTA,
  as in the original; without, from the XML. (The original would also take
  another cluster's sequence if the name happened to be that cluster's
  accession; no real release has such a name.)
* the output order is the original's: `RandomState(seed).permutation` of all
  entries (pandas' `sample(frac=1, random_state=0)`), and `test_fraction`
  draws `RandomState(seed).choice([True, False], N, p=[f, 1 - f])` in that
  order, as `set_h5_testset` does; test IDs match representative IDs only.
  This needs one int64 per entry in memory, unlike the default mode.
"""

import collections
import dataclasses
import datetime
import hashlib
import itertools
import math
import multiprocessing
import os
import pickle
import resource
import sys
import tempfile
import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, NamedTuple,
                    Optional, Sequence, Tuple)

from absl import logging
import numpy as np

from proteinbert import io_utils
from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import sources as sources_lib
from proteinbert.data import uniref

COMPAT_MODES = (None, 'original')

# Entries per staged block of FASTA-supplied sequences: big enough that
# per-block numpy work amortizes, small enough to be a negligible memory.
_BLOCK = 4096
# Individual skips logged before the rest are only counted.
_MAX_LOGGED = 10
# An entry's source: its block's index above these bits, its position in
# the block below.
_SOURCE_BITS = 32
# Proteins sorted in memory at once: about 70 MB per bucket (three can be in
# memory: one being written, two prepared).
DEFAULT_BUCKET_SIZE = 100_000
# A part size no block file reaches.
_NO_SPLIT = 1 << 62
# Key ranges that pass 1 stages into at most (see `_Ranges`): more would cut
# blocks into pieces too small to pickle efficiently.
_MAX_RANGES = 256
# Staged key ranges per bucket, about: enough that buckets of whole ranges
# come close to `bucket_size`.
_RANGES_PER_BUCKET = 4
# Bits of the hashed sort keys ('position' and 'id' order); collisions are
# negligible and break by staging order.
_KEY_BITS = 62
_KEY_SPACE = 1 << _KEY_BITS


@dataclasses.dataclass
class BuildSummary:
  """What a build read, kept and dropped; logged and stored in the output.

  Attributes:
    entries: UniRef entries or FASTA records read.
    proteins: proteins written.
    with_annotations: written proteins with at least one vocabulary term.
    test_proteins: written proteins in the test set.
    dropped: reason -> entries not written ('no_sequence',
      'invalid_sequence', 'compat_id_join').
    go_references: `Resolution` value (or 'index_0' in compatibility mode)
      -> GO references so resolved, over all entries.
    unknown_go_ids: GO ID -> references to it that the ontology lacks.
    annotation_table: the FASTA route's `AnnotationTable.counts()` (rows
      read, proteins and references absent from the FASTA, ...); {} for XML
      or without a table.
    vocabulary_size: A.
    unmatched_test_ids: IDs in the test-ID file that named no protein.
    output_bytes: size of the output file.
    seconds: wall-clock time of the build, up to the output complete under
      its name and the scratch space freed (in the output's metadata: up to
      the output's data being written, before the metadata itself).
    cpu_seconds: CPU time of the build over the same span, its threads and
      worker processes included.
  """
  entries: int = 0
  proteins: int = 0
  with_annotations: int = 0
  test_proteins: int = 0
  dropped: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  go_references: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  unknown_go_ids: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  annotation_table: Dict[str, int] = dataclasses.field(default_factory=dict)
  vocabulary_size: int = 0
  unmatched_test_ids: int = 0
  output_bytes: int = 0
  seconds: float = 0.0
  cpu_seconds: float = 0.0

  def as_dict(self, most_unknown: int = 20) -> Dict[str, Any]:
    """JSON-able form; only the `most_unknown` commonest unknown GO IDs."""
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    fields['dropped'] = dict(self.dropped)
    fields['go_references'] = dict(self.go_references)
    fields['unknown_go_ids'] = dict(self.unknown_go_ids.most_common(
        most_unknown))
    fields['distinct_unknown_go_ids'] = len(self.unknown_go_ids)
    return fields

  def report(self) -> str:
    """A human-readable multi-line summary."""
    rate = self.entries / self.seconds if self.seconds else 0.0
    dropped = ', '.join(f'{k}: {v:,}' for k, v in sorted(self.dropped.items()))
    references = ', '.join(
        f'{k}: {v:,}' for k, v in sorted(self.go_references.items()))
    unknown = ', '.join(f'{k} ({v:,})'
                        for k, v in self.unknown_go_ids.most_common(10))
    table = self.annotation_table
    return '\n'.join([
        f'entries read:          {self.entries:,} ({rate:,.0f} entries/s, '
        f'{self.seconds:,.1f} s, {self.cpu_seconds:,.1f} CPU-s)',
        f'proteins written:      {self.proteins:,} '
        f'({self.with_annotations:,} with annotations, '
        f'{self.proteins - self.with_annotations:,} without)',
        f'entries dropped:       {sum(self.dropped.values()):,} '
        f'({dropped or "none"})',
        f'GO references:         {references or "none"}',
        f'unknown GO IDs:        {len(self.unknown_go_ids):,} distinct'
        + (f'; commonest: {unknown}' if unknown else ''),
    ] + ([
        f'annotation table:      {table["rows"]:,} rows'
        + (f' ({table["not_rows"]:,} NOT rows left out)'
           if table['not_rows'] else '')
        + f', {table["proteins"]:,} proteins: {table["proteins_taken"]:,} in '
        f'the FASTA, {table["proteins_absent"]:,} not '
        f'({table["references_absent"]:,} GO references)',
    ] if table else []) + [
        f'vocabulary:            {self.vocabulary_size:,} terms',
        f'test-set proteins:     {self.test_proteins:,}'
        + (f' ({self.unmatched_test_ids:,} test IDs matched nothing)'
           if self.unmatched_test_ids else ''),
        f'output:                {self.output_bytes:,} bytes '
        f'({self.output_bytes / max(self.proteins, 1):,.0f} per protein)',
    ])


class _Progress:
  """A text progress bar with a rate, on stderr."""

  def __init__(self, what: str, enabled: bool):
    self._what = what
    self._enabled = enabled
    self._tty = sys.stderr.isatty()
    self._start = self._last = time.monotonic()
    self._shown = False

  def update(self, count: int, fraction: float, force: bool = False) -> None:
    now = time.monotonic()
    if not self._enabled or (now - self._last < (1 if self._tty else 30)
                             and not force):
      return
    self._last = now
    elapsed = max(now - self._start, 1e-9)
    bar = '#' * int(30 * fraction)
    eta = (elapsed / fraction - elapsed) if fraction > 0 else 0.0
    line = (f'{self._what} [{bar:<30}] {100 * fraction:5.1f}% {count:,} '
            f'({count / elapsed:,.0f}/s, '
            f'ETA {datetime.timedelta(seconds=round(eta))})')
    sys.stderr.write('\r' + line if self._tty else line + '\n')
    sys.stderr.flush()
    self._shown = True

  def finish(self, count: int) -> None:
    self.update(count, 1.0, force=True)
    if self._shown and self._tty:
      sys.stderr.write('\n')


class _BlockFile:
  """Scratch space for pickled blocks: appended, then drained in order.

  Blocks go to part files of about `part_bytes` each; `_drain` deletes each
  part once read, so copying staged proteins into buckets needs little more
  disk than one copy of them, and parts can be drained by different workers.

  Attributes:
    parts: the part files, in order.
    size: proteins appended.
  """

  def __init__(self, path: str, part_bytes: int = 1 << 26):
    self._path = path
    self._part_bytes = part_bytes
    self._part_size = 0
    self.parts = []
    self.size = 0

  def append(self, records: dataset_lib.Records, keys: np.ndarray) -> None:
    self.append_pickled(_pickle(records, keys), len(records))

  def append_pickled(self, block: bytes, size: int) -> None:
    """Appends a `_pickle`d block of `size` proteins."""
    if not self.parts or self._part_size >= self._part_bytes:
      self.parts.append(_part_path(self._path, len(self.parts)))
      self._part_size = 0
    with open(self.parts[-1], 'ab') as f:
      f.write(block)
    self._part_size += len(block)
    self.size += size


def _part_path(path: str, index: int) -> str:
  return f'{path}.{index}'


def _drain(
    parts: List[str]) -> Iterator[Tuple[dataset_lib.Records, np.ndarray]]:
  """The (records, keys) blocks of `parts` in order; deletes each part read.

  Parts that were never written (empty buckets) are skipped.
  """
  for part in parts:
    if not os.path.exists(part):
      continue
    with open(part, 'rb') as f:
      while f.peek(1):
        yield pickle.load(f)
    os.remove(part)


def _pickle(records: dataset_lib.Records, keys: np.ndarray) -> bytes:
  return pickle.dumps((records, keys), protocol=pickle.HIGHEST_PROTOCOL)


def _read_test_ids(path: str) -> Dict[str, int]:
  """ID -> line number, one ID per line ('#' comments and blanks skipped)."""
  ids = {}
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, start=1):
      line = line.split('#', 1)[0].strip()
      if not line:
        continue
      if len(line.split()) > 1 or ',' in line:
        raise ValueError(f'{path}:{number}: expected one protein ID per line, '
                         f'got {line[:80]!r}.')
      ids.setdefault(line, number)
  return ids


def _check_test_ids(path: str, ids: Dict[str, int], matched: set,
                    hint: str) -> int:
  """Logs the test IDs that named no protein; returns their number.

  Raises:
    ValueError: no ID matched at all (most likely a file of the wrong IDs).
  """
  unmatched = sorted((line, i) for i, line in ids.items() if i not in matched)
  if ids and len(unmatched) == len(ids):
    raise ValueError(
        f'{path}: none of its {len(ids):,} IDs names a protein of the '
        f'input; expected {hint}, one per line.')
  if unmatched:
    logging.warning(
        '%s: %d of %d test IDs name no protein of the input (skipped); '
        'first: %s', path, len(unmatched), len(ids),
        ', '.join(f'{i} (line {line})' for line, i in unmatched[:_MAX_LOGGED]))
  return len(unmatched)


class _Annotator:
  """Entries' GO IDs -> sorted term indices, counting how each resolved."""

  def __init__(self, ontology: ontology_lib.Ontology, propagate: bool,
               compat: bool):
    self._ontology = ontology
    self._propagate = propagate
    # GO ID -> (how it resolves, term indices); absent IDs are unknown.
    if compat:
      # Primary IDs only (obsolete terms as themselves), and the original's
      # `filter(None, ...)` drops the term at index 0.
      self._lookup = {go_id: ('primary', (i,)) if i else ('index_0', ())
                      for go_id, i in ontology.index.items()}
    else:
      self._lookup = {go_id: (how.value, found) for go_id, (how, found)
                      in ontology.resolutions().items()}

  def __call__(self, go_ids: Sequence[Tuple[str, ...]],
               references: collections.Counter,
               unknown: collections.Counter) -> Tuple[List[int], np.ndarray]:
    """Annotates a block of entries at once.

    Args:
      go_ids: N entries' GO IDs.
      references: counts how GO references resolved; updated.
      unknown: counts references to IDs the ontology lacks; updated.

    Returns:
      (offsets, indices): entry i's term indices, sorted and without
      repeats, are int32 indices[offsets[i]:offsets[i + 1]]; offsets is a
      list of N + 1 ints (cheap to index from Python).
    """
    lookup = self._lookup.get
    rows, terms, hows = [], [], []
    for row, ids in enumerate(go_ids):
      for go_id in ids:
        how, found = lookup(go_id, _UNKNOWN)
        hows.append(how)
        if found:
          terms += found
          rows += [row] * len(found)
        elif how is _UNKNOWN[0]:
          unknown[go_id] += 1
    references.update(hows)
    rows, terms = np.array(rows, np.int64), np.array(terms, np.int64)
    if self._propagate:
      rows, terms = self._ontology.closure_pairs(rows, terms)
    # One sort orders each entry's terms and finds its repeats (10x faster
    # than np.unique, which hashes first).
    num_terms = len(self._ontology)
    keys = np.sort(rows * num_terms + terms)
    keys = keys[np.diff(keys, prepend=-1) != 0]
    counts = np.bincount(keys // num_terms, minlength=len(go_ids))
    return ([0] + np.cumsum(counts).tolist(),
            (keys % num_terms).astype(np.int32))


_UNKNOWN = (ontology_lib.Resolution.UNKNOWN.value, ())


def _check_sequence(seq: Optional[str]) -> Tuple[Optional[str], str]:
  if not seq:
    return None, 'no_sequence'
  if not seq.isascii():
    return None, 'invalid_sequence'
  return seq, ''


class _BlockBuilder:
  """Accumulates kept entries into `Records` blocks."""

  def __init__(self):
    self.clear()

  def clear(self) -> None:
    self.seqs, self.terms, self.protein_ids, self.entry_ids = [], [], [], []
    self.taxonomy_ids, self.in_test, self.sources = [], [], []

  def add(self, entry: uniref.UniRefEntry, seq: str, terms: np.ndarray,
          in_test: bool, source: int) -> None:
    self.seqs.append(seq.encode('ascii'))
    self.terms.append(terms)
    self.protein_ids.append(entry.protein_id)
    self.entry_ids.append(entry.entry_id)
    self.taxonomy_ids.append(entry.taxonomy_id)
    self.in_test.append(in_test)
    self.sources.append(source)

  def take(self) -> Tuple[dataset_lib.Records, np.ndarray]:
    """(the block's records, their int64 sources); then empties."""
    lengths = [len(t) for t in self.terms]
    proteins = chunk_lib.ProteinChunk(
        seqs=self.seqs,
        annotation_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(
            np.int64),
        annotation_indices=np.concatenate(
            [np.zeros(0, np.int32)] + self.terms).astype(np.int32),
        is_test=np.array(self.in_test, bool))
    block = (dataset_lib.Records(proteins, self.protein_ids, self.entry_ids,
                                 np.array(self.taxonomy_ids, np.int32)),
             np.array(self.sources, np.int64))
    self.clear()
    return block


class _BlockResult(NamedTuple):
  """One parsed block, ready to stage.

  Attributes:
    staged: (key range, block, size) per key range (see `_Ranges`): the
      kept entries in it, annotated with term indices, and their int64
      sources (see `_SOURCE_BITS`), `_pickle`d in the worker so that the
      main process only copies them to the range's staging file.
    pending: (entry, terms, in_test, source) of entries whose sequence must
      come from the FASTA, which only the main process reads.
    num_entries: entries in the block.
    counted: int32 [K] term lists (concatenated) of the entries that count
      towards the vocabulary.
    references: how GO references resolved.
    unknown: GO ID -> references the ontology lacks.
    dropped: (reason, entry) of dropped entries.
    matched_test_ids: test IDs that named an entry of the block.
  """
  staged: List[Tuple[int, bytes, int]]
  pending: list
  num_entries: int
  counted: np.ndarray
  references: collections.Counter
  unknown: collections.Counter
  dropped: list
  matched_test_ids: set


class _BlockProcessor:
  """Parses and annotates one block; runs in worker processes."""

  def __init__(self, source: sources_lib.Source, annotate: _Annotator,
               ranges: '_Ranges', compat: bool, use_fasta: bool,
               test_ids: Dict[str, int]):
    self._source = source
    self._annotate = annotate
    self._ranges = ranges
    self._compat = compat
    self._use_fasta = use_fasta
    self._test_ids = test_ids

  def __call__(self, numbered: Tuple[int, Any]) -> _BlockResult:
    """Processes the `index`-th block, given as (index, block)."""
    index, block = numbered
    built = _BlockBuilder()
    pending, dropped, matched = [], [], set()
    references, unknown = collections.Counter(), collections.Counter()
    entries = self._source.parse(block)
    offsets, annotations = self._annotate([e.go_ids for e in entries],
                                          references, unknown)
    for i, entry in enumerate(entries):
      terms = annotations[offsets[i]:offsets[i + 1]]
      source = (index << _SOURCE_BITS) + i
      hits = ([n for n in self._source.test_names(entry)
               if n in self._test_ids]
              if self._test_ids else [])
      matched.update(hits)
      if self._compat:
        # The original joined to the FASTA on 'UniRef90_' + the name's prefix.
        if 'UniRef90_' + entry.protein_id.split('_')[0] != entry.entry_id:
          dropped.append(('compat_id_join', entry))
          continue
        # ...and took every sequence from the FASTA.
        wants_fasta = self._use_fasta
      else:
        wants_fasta = self._use_fasta and entry.sequence is None
      if wants_fasta:
        pending.append((entry, terms, bool(hits), source))
        continue
      seq, reason = _check_sequence(entry.sequence)
      if seq is None:
        dropped.append((reason, entry))
        continue
      built.add(entry, seq, terms, bool(hits), source)
    staged, sources = built.take()
    # The original counted every entry's terms; we count the kept proteins'
    # (those waiting for the FASTA once they have a sequence).
    counted = annotations if self._compat else (
        staged.proteins.annotation_indices)
    return _BlockResult(
        self._ranges.pickled(staged, sources), pending, len(entries),
        counted, references, unknown, dropped, matched)


# What worker processes run, set when their pool starts.
_worker_function = None


def _start_worker(function: Callable) -> None:
  global _worker_function
  _worker_function = function


def _in_worker(item):
  return _worker_function(item)


def _ordered_map(function: Callable, items: Iterable, num_workers: int,
                 in_flight: Optional[int] = None) -> Iterator:
  """`function` over `items`, in order, on `num_workers` processes (0: here).

  At most `in_flight` (default: two per worker) items are being processed
  or waiting to be consumed, so a fast producer never queues up everything
  in memory (as `Pool.imap` would).
  """
  if not num_workers:
    yield from map(function, items)
    return
  methods = multiprocessing.get_all_start_methods()
  # Fork shares the ontology and lookup tables without pickling them.
  context = multiprocessing.get_context('fork' if 'fork' in methods else None)
  limit = in_flight or 2 * num_workers
  with context.Pool(num_workers, _start_worker, (function,)) as pool:
    pending = collections.deque()
    for item in items:
      pending.append(pool.apply_async(_in_worker, (item,)))
      if len(pending) >= limit:
        yield pending.popleft().get()
    while pending:
      yield pending.popleft().get()


class _Stager:
  """Pass 1 in the main process: merges block results into staging files.

  Attributes:
    staged: per key range (see `_Ranges`), the file of its proteins.
    counts: int64 [T] proteins (in compatibility mode: entries) per term.
    entries_before: entries before each block, in block order.
    matched_test_ids: test IDs that named an entry.
  """

  def __init__(self, scratch: str, ranges: '_Ranges', num_terms: int,
               fasta: Optional[str], compat: bool, summary: BuildSummary):
    self.staged = [_BlockFile(os.path.join(scratch, f'range{r}'))
                   for r in range(ranges.count)]
    self._ranges = ranges
    self.counts = np.zeros(num_terms, np.int64)
    # Entries before each block, to turn sources into entry indices.
    self.entries_before = []
    self.matched_test_ids = set()
    self._fasta = uniref.FastaJoin(fasta) if fasta else None
    self._compat = compat
    self._summary = summary
    self._from_fasta = _BlockBuilder()

  def add(self, result: _BlockResult, path: str) -> None:
    summary = self._summary
    self.entries_before.append(summary.entries)
    summary.entries += result.num_entries
    summary.go_references.update(result.references)
    summary.unknown_go_ids.update(result.unknown)
    self.matched_test_ids.update(result.matched_test_ids)
    self._count(result.counted)
    self._append(result.staged)
    for reason, entry in result.dropped:
      self._drop(reason, entry, path)
    counted = []
    for entry, terms, in_test, source in result.pending:
      seq, reason = _check_sequence(self._fasta.lookup(entry.entry_id))
      if seq is None:
        self._drop(reason, entry, path)
        continue
      if not self._compat:
        counted.append(terms)
      self._from_fasta.add(entry, seq, terms, in_test, source)
      if len(self._from_fasta.seqs) >= _BLOCK:
        self._append(self._ranges.pickled(*self._from_fasta.take()))
    if counted:
      self._count(np.concatenate(counted))

  def finish(self) -> None:
    if self._from_fasta.seqs:
      self._append(self._ranges.pickled(*self._from_fasta.take()))

  @property
  def size(self) -> int:
    """Proteins staged."""
    return sum(f.size for f in self.staged)

  def _append(self, pieces: List[Tuple[int, bytes, int]]) -> None:
    for r, block, size in pieces:
      self.staged[r].append_pickled(block, size)

  def _count(self, terms: np.ndarray) -> None:
    if len(terms):
      self.counts += np.bincount(terms, minlength=len(self.counts))

  def _drop(self, reason: str, entry: uniref.UniRefEntry, path: str) -> None:
    dropped = self._summary.dropped
    dropped[reason] += 1
    if sum(dropped.values()) <= _MAX_LOGGED:
      logging.warning('%s:%d: entry %s skipped (%s)%s', path, entry.line,
                      entry.entry_id, reason,
                      '; further skips are only counted' if
                      sum(dropped.values()) == _MAX_LOGGED else '')


def _vocabulary(ontology: ontology_lib.Ontology, counts: np.ndarray,
                min_count: int) -> Tuple[dataset_lib.Vocabulary, np.ndarray]:
  """(vocabulary, int32 [T] term index -> vocabulary index or -1)."""
  chosen = sorted(np.flatnonzero(counts >= min_count).tolist(),
                  key=lambda i: ontology.terms[i].id)
  terms = [ontology.terms[i] for i in chosen]
  vocabulary = dataset_lib.Vocabulary(
      ids=np.array([t.id for t in terms], dtype=str),
      names=np.array([t.name for t in terms], dtype=str),
      namespaces=np.array([t.namespace for t in terms], dtype=str),
      counts=counts[chosen].astype(np.int64))
  lookup = np.full(len(ontology), -1, np.int32)
  lookup[chosen] = np.arange(len(chosen), dtype=np.int32)
  return vocabulary, lookup


def _to_vocabulary(proteins: chunk_lib.ProteinChunk,
                   lookup: np.ndarray) -> chunk_lib.ProteinChunk:
  """Maps staged term indices through `lookup` (int32 [T]), dropping -1.

  The result's indices are sorted within each protein.
  """
  n = len(proteins)
  rows = np.repeat(np.arange(n), np.diff(proteins.annotation_offsets))
  mapped = lookup[proteins.annotation_indices]
  keep = mapped >= 0
  rows, mapped = rows[keep], mapped[keep]
  kept = lookup[lookup >= 0]
  if np.any(kept[1:] < kept[:-1]):
    # The OBO file is not in ID order, so neither is a protein's row.
    order = np.lexsort((mapped, rows))
    rows, mapped = rows[order], mapped[order]
  counts = np.bincount(rows, minlength=n)
  return chunk_lib.ProteinChunk(
      seqs=proteins.seqs,
      annotation_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(
          np.int64),
      annotation_indices=mapped.astype(np.int32),
      is_test=proteins.is_test)


def _splitmix64(x: np.ndarray) -> np.ndarray:
  """A bijective mix of uint64 [K] values (Steele et al.'s SplitMix64)."""
  x = x + np.uint64(0x9E3779B97F4A7C15)
  x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


class _SortKeys:
  """The output order: a sort key in [0, space) per staged protein.

  A pure function of the protein's source (its position: 'position' and
  'compat' order) or ID ('id' order), so workers can compute keys in any
  order and the output order depends only on the seed and the input.
  """

  def __init__(self, order: str, seed: int, num_entries: int = 0,
               entries_before: Sequence[int] = ()):
    self._order = order
    if order == 'compat':
      # pandas' sample(frac=1, random_state=seed) puts entry perm[j] at j.
      permutation = np.random.RandomState(seed).permutation(num_entries)
      self._rank = np.empty(num_entries, np.int64)
      self._rank[permutation] = np.arange(num_entries)
      self._entries_before = np.array(entries_before, np.int64)
      self.space = max(num_entries, 1)
    elif order == 'id':
      self._hash = hashlib.blake2b(digest_size=8,
                                   key=seed.to_bytes(4, 'little'))
      self.space = _KEY_SPACE
    else:
      self._salt = _splitmix64(np.array([seed], np.uint64))[0]
      self.space = _KEY_SPACE

  def __call__(self, records: dataset_lib.Records,
               sources: np.ndarray) -> np.ndarray:
    """int64 [N] keys of N staged `records` with int64 [N] `sources`."""
    if self._order == 'position':
      mixed = _splitmix64(sources.astype(np.uint64) ^ self._salt)
    elif self._order == 'id':
      mixed = np.frombuffer(b''.join(map(self._digest, records.entry_ids)),
                            np.uint64)
    else:
      entries = (self._entries_before[sources >> _SOURCE_BITS] +
                 (sources & ((1 << _SOURCE_BITS) - 1)))
      return self._rank[entries]
    return (mixed >> np.uint64(64 - _KEY_BITS)).astype(np.int64)

  def _digest(self, entry_id: str) -> bytes:
    digest = self._hash.copy()
    digest.update(entry_id.encode())
    return digest.digest()


def _check_unique(entry_ids: List[str], keys: np.ndarray,
                  error: Callable[[str], Exception]) -> None:
  """Raises `error(ID)` for an ID of two proteins sorted by 'id' keys.

  Equal IDs have equal keys, so they are neighbours.
  """
  for i in np.flatnonzero(keys[1:] == keys[:-1]).tolist():
    if entry_ids[i] == entry_ids[i + 1]:
      raise error(entry_ids[i])


class _TestDraws:
  """Random test-set flags, drawn in output order."""

  def __init__(self, compat: bool, seed: int, fraction: float):
    if not 0 <= fraction <= 1:
      raise ValueError(f'test_fraction {fraction} is not in [0, 1].')
    self._fraction = fraction
    self._compat = compat
    self._rng = (np.random.RandomState(seed) if compat else
                 np.random.default_rng([seed, 2]))

  def __call__(self, n: int) -> np.ndarray:
    if not self._fraction:
      return np.zeros(n, bool)
    if self._compat:
      return self._rng.choice([True, False], n,
                              p=[self._fraction, 1 - self._fraction])
    return self._rng.random(n) < self._fraction


def _split(records: dataset_lib.Records, sources: np.ndarray,
           which: np.ndarray) -> Iterator[Tuple[int, dataset_lib.Records,
                                                np.ndarray]]:
  """(w, the records and sources where `which` is w), for each w, ascending.

  Args:
    records: N proteins.
    sources: int64 [N] their sources.
    which: int [N] where each protein goes, >= 0.
  """
  if not len(which):
    return
  if np.all(which == which[0]):
    yield int(which[0]), records, sources
    return
  # One reordering, then a slice per value: cheaper than a `take` each.
  order = np.argsort(which, kind='stable')
  records, sources, which = records.take(order), sources[order], which[order]
  starts = np.flatnonzero(np.diff(which, prepend=-1)).tolist()
  for start, stop in zip(starts, starts[1:] + [len(which)]):
    yield (int(which[start]), _slice(records, start, stop),
           sources[start:stop])


def _slice(records: dataset_lib.Records, start: int,
           stop: int) -> dataset_lib.Records:
  """Records [start, stop) of `records`."""
  proteins = records.proteins
  offsets = proteins.annotation_offsets[start:stop + 1]
  return dataset_lib.Records(
      chunk_lib.ProteinChunk(
          seqs=proteins.seqs[start:stop],
          annotation_offsets=offsets - offsets[0],
          annotation_indices=proteins.annotation_indices[
              offsets[0]:offsets[-1]],
          is_test=proteins.is_test[start:stop]),
      records.protein_ids[start:stop], records.entry_ids[start:stop],
      records.taxonomy_ids[start:stop])


def _range_width(space: int, count: int) -> int:
  """The width of `count` equal ranges that together cover [0, space)."""
  return -(-space // count)


class _Ranges:
  """Pass 1's split of the sort-key space into `count` equal ranges.

  In the default mode a protein's sort key is known as soon as it is staged,
  so each key range is staged in files of its own and the shuffle makes
  buckets of whole ranges: the staged proteins are written and read once.
  In compatibility mode the keys need the number of entries, known only at
  the end: everything is staged as one range, which the shuffle first
  splits into buckets.

  Attributes:
    count: the number of ranges.
  """

  def __init__(self, keys: Optional[_SortKeys], count: int):
    self._keys = keys
    self.count = count if keys else 1
    if keys:
      self._width = _range_width(keys.space, count)

  def pickled(self, records: dataset_lib.Records,
              sources: np.ndarray) -> List[Tuple[int, bytes, int]]:
    """(range, `_pickle`d records and sources, size) per range present."""
    which = (self._keys(records, sources) // self._width if self._keys
             else np.zeros(len(records), np.int64))
    return [(r, _pickle(part, part_sources), len(part))
            for r, part, part_sources in _split(records, sources, which)]


def _range_count(estimate: float, bucket_size: int) -> int:
  """Key ranges to stage `estimate` proteins in (see `_Ranges`).

  About `_RANGES_PER_BUCKET` per bucket, so that buckets of whole ranges
  come near `bucket_size`; one when everything fits in a bucket. A poor
  estimate costs time only: a range with more than `bucket_size` proteins
  is split into buckets of its own.
  """
  if estimate <= bucket_size:
    return 1
  return min(_MAX_RANGES, math.ceil(_RANGES_PER_BUCKET * estimate /
                                    bucket_size))


class _Shuffler:
  """Pass 2, on workers: puts staged proteins in key order, bucket by bucket.

  `distribute` splits a key range with more proteins than a bucket holds
  (from a group of its staging parts) into per-bucket files by key; then
  `prepare` merges one bucket's files, sorts the bucket by key and maps its
  annotations to the vocabulary.

  Attributes:
    keys: the sort keys.
  """

  def __init__(self, keys: _SortKeys, lookup: np.ndarray,
               duplicate_error: Optional[Callable[[str], Exception]]):
    """Shuffles by `keys`; with `duplicate_error`, IDs must be unique.

    Args:
      keys: the sort keys.
      lookup: int32 [T] term index -> vocabulary index or -1.
      duplicate_error: for 'id' keys: makes the error that an ID of two
        proteins raises.
    """
    self.keys = keys
    self._lookup = lookup
    self._duplicate_error = duplicate_error

  def distribute(self, task: Tuple[str, List[str], int, int, int]) -> None:
    """Splits staging parts into buckets by key.

    Args:
      task: (prefix, parts, low, width, count): the proteins of `parts` with
        keys in [low + b * width, low + (b + 1) * width) go to the file
        `bucket_path(prefix, b)`, for b < count.
    """
    prefix, parts, low, width, count = task
    files = [_BlockFile(f'{prefix}.{b}', part_bytes=_NO_SPLIT)
             for b in range(count)]
    for records, sources in _drain(parts):
      for b, part, part_sources in _split(
          records, sources, (self.keys(records, sources) - low) // width):
        files[b].append(part, part_sources)

  @staticmethod
  def bucket_path(prefix: str, bucket: int) -> str:
    """The file of `bucket` that `distribute` wrote for `prefix`."""
    # A bucket file never splits, so its one part is part 0.
    return _part_path(f'{prefix}.{bucket}', 0)

  def prepare(self, parts: List[str]) -> dataset_lib.Records:
    """The proteins of `parts` in key order, with vocabulary annotations."""
    blocks = list(_drain(parts))
    records = dataset_lib.Records.concatenate([r for r, _ in blocks])
    keys = self.keys(records, np.concatenate([np.zeros(0, np.int64)] +
                                             [s for _, s in blocks]))
    order = np.argsort(keys, kind='stable')
    records = records.take(order)
    if self._duplicate_error:
      _check_unique(records.entry_ids, keys[order], self._duplicate_error)
    return dataset_lib.Records(_to_vocabulary(records.proteins, self._lookup),
                               *records[1:])


def _shuffled(staged: List[_BlockFile], shuffler: _Shuffler, bucket_size: int,
              scratch: str, num_workers: int) -> Iterator[dataset_lib.Records]:
  """The staged key ranges' proteins as buckets in output order.

  Consecutive ranges that together hold at most `bucket_size` proteins make
  a bucket; a range holding more is first split into buckets of its own
  (`_Shuffler.distribute`, a task per group of its parts).
  """
  width = _range_width(shuffler.keys.space, len(staged))  # As `_Ranges`.
  buckets, splits = [], []  # Bucket -> its files; distribute tasks.
  group, size = [], 0
  for r, ranged in enumerate(staged):
    if group and size + ranged.size > bucket_size:
      buckets.append(group)
      group, size = [], 0
    if ranged.size <= bucket_size:
      group += ranged.parts
      size += ranged.size
      continue
    count = math.ceil(ranged.size / bucket_size)
    groups = np.array_split(ranged.parts, min(max(num_workers, 1),
                                              len(ranged.parts)))
    prefixes = [os.path.join(scratch, f'range{r}.group{g}')
                for g in range(len(groups))]
    splits += [(prefix, list(parts), r * width, _range_width(width, count),
                count)
               for prefix, parts in zip(prefixes, groups)]
    buckets += [[shuffler.bucket_path(prefix, b) for prefix in prefixes]
                for b in range(count)]
  if group or not buckets:
    buckets.append(group)
  for _ in _ordered_map(shuffler.distribute, splits, num_workers):
    pass
  # Prepared buckets wait in memory for the writer: two at most.
  yield from _ordered_map(shuffler.prepare, buckets, num_workers, in_flight=2)


def _idle_cpus() -> int:
  """CPUs that other processes leave idle; 0 when fewer than two.

  Workers cost CPU time of their own (copying blocks between processes), so
  they pay only where they get CPUs to themselves.
  """
  idle = int((os.cpu_count() or 1) - os.getloadavg()[0])
  return idle if idle >= 2 else 0


def _cpu_seconds() -> float:
  """CPU time of this process and its finished children."""
  return sum(usage.ru_utime + usage.ru_stime for usage in (
      resource.getrusage(resource.RUSAGE_SELF),
      resource.getrusage(resource.RUSAGE_CHILDREN)))


def _file_info(path: Optional[str]) -> Optional[Dict[str, Any]]:
  if not path:
    return None
  return {'name': os.path.basename(path), 'bytes': os.path.getsize(path)}


def build_dataset(uniref_xml: Optional[str],
                  go_obo: Optional[str],
                  output: str,
                  *,
                  fasta: Optional[str] = None,
                  annotations: Optional[str] = None,
                  min_annotation_count: int = 100,
                  propagate: Optional[bool] = None,
                  test_ids: Optional[str] = None,
                  test_fraction: float = 0.0,
                  seed: int = 0,
                  compat: Optional[str] = None,
                  layout: str = 'sparse',
                  compression: Optional[str] = 'gzip',
                  bucket_size: int = DEFAULT_BUCKET_SIZE,
                  num_workers: Optional[int] = None,
                  scratch_dir: Optional[str] = None,
                  overwrite: bool = False,
                  show_progress: bool = True) -> BuildSummary:
  """Builds a pretraining dataset file (see the module docstring).

  The inputs choose the route (`sources.choose`): `uniref_xml` (with
  `go_obo`, and optionally `fasta`), or `fasta` alone (sequence-only: no
  annotations, an empty vocabulary) or with `annotations` and `go_obo`.

  Args:
    uniref_xml: `uniref90.xml.gz` (or any UniRef XML, gzip or plain); None
      for the FASTA route.
    go_obo: the GO in OBO format (`go-basic.obo`, CAFA `go.txt`); needed
      with `uniref_xml` or `annotations`.
    output: the dataset file to write.
    fasta: with `uniref_xml`: optional `uniref90.fasta[.gz]`, for entries
      without an XML sequence (and, in compatibility mode, for every
      sequence). Without: the proteins, any FASTA (gzip or plain; see
      `sources.FastaSource` for the IDs taken from headers).
    annotations: FASTA route: optional annotation table, TSV or GAF, gzip or
      plain (see `annotation_table`), joined on the FASTA IDs.
    min_annotation_count: a term enters the vocabulary when at least this
      many proteins carry it (in the default mode, at least 1).
    propagate: annotate every protein with the `is_a` ancestors of its terms;
      None: yes, except in compatibility mode, which never propagates.
    test_ids: optional file of protein IDs (one per line) for the test set.
    test_fraction: additionally put each protein in the test set with this
      probability.
    seed: seeds the output order and the random test set.
    compat: None, or 'original' to reproduce protein-bert 1.0.1.
    layout: 'sparse' (ours) or 'original' (the dense layout).
    compression: 'gzip' or None, for the output's datasets.
    bucket_size: proteins sorted in memory at once; bounds memory (about
      0.7 KB per protein, three buckets at a time) and sets how many scratch
      buckets the shuffle uses.
    num_workers: worker processes that parse the XML and prepare buckets; 0
      does everything in this process; None uses one per idle CPU (see
      `_idle_cpus`). The output does not depend on it.
    scratch_dir: where scratch files go (about twice the output's size);
      defaults to the output's directory.
    overwrite: replace an existing output.
    show_progress: draw progress bars on stderr.

  Returns:
    The build's summary, also logged and stored in the output's metadata.

  Raises:
    FileExistsError: `output` exists and not `overwrite`.
    ValueError: bad settings or inputs, or a bad test-ID file.
    ontology.OboError, uniref.UniRefFormatError,
    annotation_table.AnnotationTableError: bad input files, a FASTA ID
      shared by two records among them (the message names the file and
      position). No output is left behind.
  """
  route = sources_lib.choose(uniref_xml, fasta, annotations, go_obo, compat)
  if compat not in COMPAT_MODES:
    raise ValueError(f'Unknown compat mode {compat!r}; expected one of '
                     f'{COMPAT_MODES}.')
  is_compat = compat == 'original'
  if propagate is None:
    propagate = not is_compat
  if is_compat and propagate:
    raise ValueError("compat='original' reproduces the original, which does "
                     'not propagate annotations.')
  if layout not in dataset_lib.LAYOUTS:
    raise ValueError(f'Unknown layout {layout!r}; expected one of '
                     f'{dataset_lib.LAYOUTS}.')
  if not 0 <= seed < 2**32:
    raise ValueError(f'seed {seed} is not in [0, 2**32).')
  if os.path.exists(output) and not overwrite:
    raise FileExistsError(f'{output} exists; pass overwrite=True to replace '
                          'it.')
  start, start_cpu = time.monotonic(), _cpu_seconds()
  summary = BuildSummary()
  test_draws = _TestDraws(is_compat, seed, test_fraction)
  ontology = (ontology_lib.Ontology.from_obo(go_obo) if go_obo else
              ontology_lib.Ontology([]))
  if go_obo:
    logging.info('%s: %d terms (%s).', go_obo, len(ontology),
                 ontology.header.get('data-version', 'no data-version'))
  if route == 'xml':
    source = sources_lib.XmlSource(uniref_xml, is_compat)
    join_fasta = fasta
  else:
    source = sources_lib.FastaSource(fasta, annotations)
    join_fasta = None
    if not annotations:
      logging.info('No annotation table: a sequence-only dataset (no '
                   'annotations, an empty vocabulary).')
  test_id_lines = _read_test_ids(test_ids) if test_ids else {}
  if num_workers is None:
    num_workers = _idle_cpus()
    logging.info('Using %d worker processes.', num_workers)
  # With workers, the main process decompresses beside their parsing;
  # without, a thread does (threads do not survive the fork that starts
  # workers).
  blocks = source.blocks(read_ahead=not num_workers)
  first = next(blocks, None)
  ranges = _Ranges(
      None if is_compat else _SortKeys(source.order, seed),
      _range_count(source.estimate_entries(first), bucket_size))
  processor = _BlockProcessor(
      source, _Annotator(ontology, propagate, is_compat), ranges, is_compat,
      bool(join_fasta), test_id_lines)
  with tempfile.TemporaryDirectory(
      prefix='.build_dataset.',
      dir=scratch_dir or os.path.dirname(os.path.abspath(output))) as scratch:
    stager = _Stager(scratch, ranges, len(ontology), join_fasta, is_compat,
                     summary)
    progress = _Progress(f'reading {source.kind}', show_progress)
    blocks = itertools.chain([first] if first else [], blocks)
    for result in _ordered_map(processor, enumerate(blocks), num_workers):
      stager.add(result, source.path)
      progress.update(summary.entries, source.fraction_read)
    stager.finish()
    progress.finish(summary.entries)
    summary.annotation_table = source.annotation_counts()
    if test_ids:
      summary.unmatched_test_ids = _check_test_ids(
          test_ids, test_id_lines, stager.matched_test_ids,
          source.test_id_hint)
    vocabulary, lookup = _vocabulary(
        ontology, stager.counts,
        min_annotation_count if is_compat else max(min_annotation_count, 1))
    summary.vocabulary_size = len(vocabulary.ids)
    logging.info('Vocabulary: %d terms with >= %d proteins; writing %d '
                 'proteins.', summary.vocabulary_size, min_annotation_count,
                 stager.size)
    with io_utils.atomic_path(output) as tmp:
      writer = dataset_lib.create_writer(tmp, layout, vocabulary, compression)
      shuffler = _Shuffler(
          _SortKeys('compat' if is_compat else source.order, seed,
                    summary.entries, stager.entries_before),
          lookup, source.duplicate_error)
      progress = _Progress('writing', show_progress)
      for records in _shuffled(stager.staged, shuffler, bucket_size, scratch,
                               num_workers):
        staged = records.proteins
        proteins = chunk_lib.ProteinChunk(
            seqs=staged.seqs, annotation_offsets=staged.annotation_offsets,
            annotation_indices=staged.annotation_indices,
            is_test=staged.is_test | test_draws(len(records)))
        writer.append(dataset_lib.Records(proteins, *records[1:]))
        summary.proteins += len(proteins)
        summary.with_annotations += int(
            np.count_nonzero(np.diff(proteins.annotation_offsets)))
        summary.test_proteins += int(np.count_nonzero(proteins.is_test))
        progress.update(summary.proteins,
                        summary.proteins / max(stager.size, 1))
      progress.finish(summary.proteins)
      writer.flush()
      # The metadata records the time so far; the returned summary's also
      # counts closing the file and renaming it (milliseconds).
      summary.seconds = time.monotonic() - start
      summary.cpu_seconds = _cpu_seconds() - start_cpu
      writer.close(_metadata(
          source, ontology, summary,
          inputs={name: _file_info(path) for name, path in (
              ('uniref_xml', uniref_xml), ('go_obo', go_obo),
              ('fasta', fasta), ('annotations', annotations),
              ('test_ids', test_ids))},
          settings=dict(min_annotation_count=min_annotation_count,
                        propagate=propagate, test_fraction=test_fraction,
                        seed=seed, compat=compat, layout=layout)))
      summary.output_bytes = os.path.getsize(tmp)
  summary.seconds = time.monotonic() - start
  summary.cpu_seconds = _cpu_seconds() - start_cpu
  logging.info('Built %s:\n%s', output, summary.report())
  return summary


def _metadata(source, ontology, summary, inputs, settings) -> Dict[str, Any]:
  return {
      'builder': __name__,
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'inputs': inputs,
      **source.metadata(),
      'ontology_header': {k: ontology.header[k] for k in
                          ('format-version', 'data-version', 'date')
                          if k in ontology.header},
      'settings': settings,
      'summary': summary.as_dict(),
  }
