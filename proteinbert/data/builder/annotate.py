"""GO IDs to term indices, the vocabulary, and term to vocabulary indices.

Pass 1 annotates each entry with ontology term indices (`Annotator`: its GO
IDs resolved by the build mode's lookup and, when propagating, extended by
their `is_a` ancestors); once every term is counted, `vocabulary` keeps the
terms carried by enough proteins, and pass 2 maps staged term indices to
vocabulary indices (`to_vocabulary`).
"""

import collections
from typing import List, Mapping, Sequence, Tuple

import numpy as np

from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import ontology as ontology_lib

# GO ID -> (how it resolves, term indices); see `modes.Mode.go_lookup`.
Lookup = Mapping[str, Tuple[str, Tuple[int, ...]]]

_UNKNOWN = (ontology_lib.Resolution.UNKNOWN.value, ())


class Annotator:
  """Entries' GO IDs -> sorted term indices, counting how each resolved."""

  def __init__(self, ontology: ontology_lib.Ontology, propagate: bool,
               lookup: Lookup):
    """Annotates with the terms of `ontology`.

    Args:
      ontology: the ontology.
      propagate: extend each entry's terms by their `is_a` ancestors.
      lookup: how each GO ID resolves; absent IDs are unknown.
    """
    self._ontology = ontology
    self._propagate = propagate
    self._lookup = lookup

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


def vocabulary(ontology: ontology_lib.Ontology, counts: np.ndarray,
               min_count: int) -> Tuple[dataset_lib.Vocabulary, np.ndarray]:
  """The terms of at least `min_count` proteins, sorted by GO ID.

  Args:
    ontology: the ontology.
    counts: int64 [T] proteins (or entries) per term.
    min_count: the threshold.

  Returns:
    (vocabulary, int32 [T] term index -> vocabulary index or -1).
  """
  chosen = sorted(np.flatnonzero(counts >= min_count).tolist(),
                  key=lambda i: ontology.terms[i].id)
  terms = [ontology.terms[i] for i in chosen]
  words = dataset_lib.Vocabulary(
      ids=np.array([t.id for t in terms], dtype=str),
      names=np.array([t.name for t in terms], dtype=str),
      namespaces=np.array([t.namespace for t in terms], dtype=str),
      counts=counts[chosen].astype(np.int64))
  lookup = np.full(len(ontology), -1, np.int32)
  lookup[chosen] = np.arange(len(chosen), dtype=np.int32)
  return words, lookup


def to_vocabulary(proteins: chunk_lib.ProteinChunk,
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
