"""Pass 1: parse blocks of entries and stage the kept proteins.

Worker processes parse blocks (`BlockProcessor`): each entry's GO IDs become
term indices (`annotate.Annotator`), entries without a usable sequence are
dropped, and kept proteins are split by sort-key range (`order.Ranges`) and
pickled. The main process (`Stager`) appends them to each range's scratch
file, supplies sequences from a FASTA for entries that need one, and counts
each term's proteins for the vocabulary.
"""

import collections
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from absl import logging
import numpy as np

from proteinbert import residues
from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import fasta_reader
from proteinbert.data import sources as sources_lib
from proteinbert.data import uniref
from proteinbert.data.builder import annotate
from proteinbert.data.builder import modes
from proteinbert.data.builder import order
from proteinbert.data.builder import scratch
from proteinbert.data.builder import unique_ids
from proteinbert.data.builder import summary as summary_lib

# Entries per staged block of FASTA-supplied sequences: big enough that
# per-block numpy work amortizes, small enough to be a negligible memory.
_BLOCK = 4096


def _check_sequence(seq: Optional[str]) -> Tuple[Optional[bytes], str]:
  """(the sequence under `residues`' rule, '') if usable, else (None, why).

  The same rule in both modes: the original stored characters other than
  letters verbatim (pretraining then read them as <OTHER>), but real UniRef
  releases hold none, so its outputs are reproduced all the same.
  """
  if not seq:
    return None, 'no_sequence'
  if len(seq) > uniref.MAX_RESIDUES:
    return None, 'too_long'
  if not seq.isascii():
    return None, 'invalid_sequence'
  seq = residues.normalize_bytes(seq.encode('ascii'))
  if seq is None:
    return None, 'invalid_sequence'
  return (seq, '') if seq else (None, 'no_sequence')


class _BlockBuilder:
  """Accumulates kept entries into `Records` blocks."""

  def __init__(self):
    self.clear()

  def clear(self) -> None:
    self.seqs, self.terms, self.protein_ids, self.entry_ids = [], [], [], []
    self.taxonomy_ids, self.in_test, self.sources = [], [], []

  def add(self, entry: uniref.UniRefEntry, seq: bytes, terms: np.ndarray,
          in_test: bool, source: int) -> None:
    self.seqs.append(seq)
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


class BlockResult(NamedTuple):
  """One parsed block, ready to stage.

  Attributes:
    staged: (key range, block, size) per key range (see `order.Ranges`): the
      kept entries in it, annotated with term indices, and their int64
      sources (see `order.SOURCE_BITS`), pickled in the worker so that the
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
    ids: the block's (entry ID, line) pairs by part, for
      `unique_ids.IdParts` ({} when IDs are not checked that way).
  """
  staged: List[Tuple[int, bytes, int]]
  pending: list
  num_entries: int
  counted: np.ndarray
  references: collections.Counter
  unknown: collections.Counter
  dropped: list
  matched_test_ids: set
  ids: Dict[int, bytes]


class BlockProcessor:
  """Parses and annotates one block; runs in worker processes."""

  def __init__(self, source: sources_lib.Source, annotator: annotate.Annotator,
               ranges: order.Ranges, mode: modes.Mode, use_fasta: bool,
               test_ids: Dict[str, int], id_parts: int):
    """Processes blocks of `source`.

    Args:
      source: where the blocks come from.
      annotator: annotates entries with term indices.
      ranges: splits kept proteins by key range.
      mode: the build mode.
      use_fasta: whether a FASTA supplies sequences (see
        `modes.Mode.wants_fasta`).
      test_ids: test-set IDs (-> line numbers).
      id_parts: the parts of `unique_ids` that entry IDs are split into; 0
        for none.
    """
    self._source = source
    self._annotate = annotator
    self._ranges = ranges
    self._mode = mode
    self._use_fasta = use_fasta
    self._test_ids = test_ids
    self._id_parts = id_parts

  def __call__(self, numbered: Tuple[int, Any]) -> BlockResult:
    """Processes the `index`-th block, given as (index, block)."""
    index, block = numbered
    built = _BlockBuilder()
    pending, dropped, matched = [], [], set()
    references, unknown = collections.Counter(), collections.Counter()
    mode = self._mode
    entries = self._source.parse(block)
    offsets, annotations = self._annotate([e.go_ids for e in entries],
                                          references, unknown)
    for i, entry in enumerate(entries):
      terms = annotations[offsets[i]:offsets[i + 1]]
      source = (index << order.SOURCE_BITS) + i
      hits = ([n for n in mode.test_names(self._source, entry)
               if n in self._test_ids]
              if self._test_ids else [])
      matched.update(hits)
      reason = mode.drop_reason(entry)
      if reason:
        dropped.append((reason, entry))
        continue
      if mode.wants_fasta(entry, self._use_fasta):
        pending.append((entry, terms, bool(hits), source))
        continue
      seq, reason = _check_sequence(entry.sequence)
      if seq is None:
        dropped.append((reason, entry))
        continue
      built.add(entry, seq, terms, bool(hits), source)
    staged, sources = built.take()
    # Those waiting for the FASTA count once they have a sequence.
    counted = (annotations if mode.counts_every_entry else
               staged.proteins.annotation_indices)
    return BlockResult(
        self._ranges.pickled(staged, sources), pending, len(entries),
        counted, references, unknown, dropped, matched,
        unique_ids.split(entries, self._id_parts) if self._id_parts else {})


class Stager:
  """Pass 1 in the main process: merges block results into staging files.

  Attributes:
    staged: per key range (see `order.Ranges`), the file of its proteins.
    counts: int64 [T] proteins (or, in `counts_every_entry` modes, entries)
      per term.
    entries_before: entries before each block, in block order.
    matched_test_ids: test IDs that named an entry.
  """

  def __init__(self, directory: str, ranges: order.Ranges, num_terms: int,
               fasta: Optional[str], mode: modes.Mode,
               summary: summary_lib.BuildSummary):
    """Stages into `directory`.

    Args:
      directory: the scratch directory.
      ranges: the key ranges.
      num_terms: T, the ontology's terms.
      fasta: the FASTA that supplies pending entries' sequences, if any.
      mode: the build mode.
      summary: the build's summary; updated.
    """
    self.staged = [scratch.BlockFile(os.path.join(directory, f'range{r}'))
                   for r in range(ranges.count)]
    self._ranges = ranges
    self.counts = np.zeros(num_terms, np.int64)
    # Entries before each block, to turn sources into entry indices.
    self.entries_before = []
    self.matched_test_ids = set()
    self._fasta = (fasta_reader.FastaJoin(fasta, uniref.MAX_RESIDUES)
                   if fasta else None)
    self._mode = mode
    self._summary = summary
    self._from_fasta = _BlockBuilder()
    self._num_skipped = 0

  def add(self, result: BlockResult, path: str) -> None:
    """Stages a processed block of the input `path`."""
    summary = self._summary
    self.entries_before.append(summary.entries)
    summary.entries += result.num_entries
    summary.go_references.update(result.references)
    summary.unknown_go_ids.update(result.unknown)
    self.matched_test_ids.update(result.matched_test_ids)
    self._count(result.counted)
    self._append(result.staged)
    for reason, entry in result.dropped:
      self._drop(reason, entry.entry_id, entry.line, path)
    counted = []
    for entry, terms, in_test, source in result.pending:
      seq, reason = _check_sequence(self._fasta.lookup(entry.entry_id))
      if seq is None:
        self._drop(reason, entry.entry_id, entry.line, path)
        continue
      if not self._mode.counts_every_entry:
        counted.append(terms)
      self._from_fasta.add(entry, seq, terms, in_test, source)
      if len(self._from_fasta.seqs) >= _BLOCK:
        self._append(self._ranges.pickled(*self._from_fasta.take()))
    if counted:
      self._count(np.concatenate(counted))

  def add_skipped(self, skipped: List[Tuple[str, int]], path: str) -> None:
    """Counts the entries of `path` that its reader left out as too long.

    Args:
      skipped: (entry ID, line) of every entry the reader left out so far
        (`UniRefReader.skipped`, `FastaReader.skipped`); those not yet
        counted are.
      path: the input.
    """
    for entry_id, line in skipped[self._num_skipped:]:
      self._drop('too_long', entry_id, line, path)
    self._num_skipped = len(skipped)

  def finish(self) -> None:
    """Stages what waits for a full block; call after the last `add`."""
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

  def _drop(self, reason: str, entry_id: str, line: int, path: str) -> None:
    dropped = self._summary.dropped
    dropped[reason] += 1
    if sum(dropped.values()) <= summary_lib.MAX_LOGGED:
      logging.warning('%s:%d: entry %s skipped (%s)%s', path, line, entry_id,
                      reason,
                      '; further skips are only counted' if
                      sum(dropped.values()) == summary_lib.MAX_LOGGED else '')
