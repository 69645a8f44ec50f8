"""The build mode: ours, or protein-bert 1.0.1's (`compat='original'`).

Every choice in which compatibility mode differs from ours is a method of
the mode object, chosen once by `choose`; the stages ask it rather than
testing a flag.

`OriginalMode` reproduces the original's `create_uniref_db` +
`create_uniref_h5_dataset` + `set_h5_testset`:

* annotations are the entry's direct GO IDs only (its ancestor closure was
  computed but never used), looked up by primary ID: alternative IDs count as
  unknown, obsolete terms are kept as themselves;
* the term at index 0 (the first `[Term]` in the OBO file) is dropped, as the
  original's `filter(None, ...)` does;
* term counts include every XML entry, kept or not;
* a protein is kept only if 'UniRef90_' + the part of its representative's
  ID before '_' is its cluster ID, the original's FASTA join: representatives
  with Swiss-Prot names ('TITIN_HUMAN') are lost, and a UniRef50 or UniRef100
  release yields nothing. With a FASTA, the sequence comes from the FASTA,
  as in the original; without, from the XML. (The original would also take
  another cluster's sequence if the name happened to be that cluster's
  accession; no real release has such a name.)
* the output order is the original's: `RandomState(seed).permutation` of all
  entries (pandas' `sample(frac=1, random_state=0)`), and the test fraction
  draws `RandomState(seed).choice([True, False], N, p=[f, 1 - f])` in that
  order, as `set_h5_testset` does; test IDs match representative IDs only.
  This needs one int64 per entry in memory, unlike our mode.
"""

from typing import List, Optional, Sequence

import numpy as np

from proteinbert.data import dataset as dataset_lib
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import sources as sources_lib
from proteinbert.data import uniref
from proteinbert.data.builder import annotate
from proteinbert.data.builder import held_out
from proteinbert.data.builder import order

COMPAT_MODES = (None, 'original')


class Mode:
  """Our build: see `proteinbert.data.build`.

  Attributes:
    counts_every_entry: whether every entry's terms count towards the
      vocabulary, kept or not (ours: only the kept proteins').
  """
  counts_every_entry = False

  def propagate(self, propagate: Optional[bool]) -> bool:
    """Whether to propagate, given the caller's choice (None: default)."""
    return True if propagate is None else propagate

  def min_count(self, min_annotation_count: int) -> int:
    """The vocabulary's threshold: at least one protein."""
    return max(min_annotation_count, 1)

  def go_lookup(self, ontology: ontology_lib.Ontology) -> annotate.Lookup:
    """Every ID the ontology defines, resolved (`Ontology.resolutions`)."""
    return {go_id: (how.value, found) for go_id, (how, found)
            in ontology.resolutions().items()}

  def drop_reason(self, entry: uniref.UniRefEntry) -> Optional[str]:
    """Why `entry` is dropped whatever its sequence; None: it is not."""
    del entry
    return None

  def wants_fasta(self, entry: uniref.UniRefEntry, have_fasta: bool) -> bool:
    """Whether `entry`'s sequence comes from the FASTA (if `have_fasta`)."""
    return have_fasta and entry.sequence is None

  def test_names(self, source: sources_lib.Source,
                 entry: uniref.UniRefEntry) -> List[str]:
    """The names under which `entry` may appear in the test-ID file."""
    return source.test_names(entry)

  def staging_keys(self, source_order: str,
                   seed: int) -> Optional[order.SortKeys]:
    """Keys known as proteins are staged (see `order.Ranges`)."""
    return order.SortKeys(source_order, seed)

  def output_keys(self, source_order: str, seed: int, num_entries: int,
                  entries_before: Sequence[int]):
    """The output order's keys, once every entry is read.

    Args:
      source_order: the source's 'position' or 'id'.
      seed: the build's seed.
      num_entries: entries read.
      entries_before: entries before each block, in block order.

    Returns:
      A callable from (records, int64 sources) to int64 keys, with a `space`
      that the keys are below (as `order.SortKeys`).
    """
    del num_entries, entries_before
    return order.SortKeys(source_order, seed)

  def test_draws(self, seed: int, fraction: float) -> held_out.TestDraws:
    return held_out.TestDraws(seed, fraction)


class OriginalMode(Mode):
  """protein-bert 1.0.1's build (see the module docstring)."""
  counts_every_entry = True

  def propagate(self, propagate: Optional[bool]) -> bool:
    """False; the original never propagates.

    Raises:
      ValueError: propagation asked for.
    """
    if propagate:
      raise ValueError("compat='original' reproduces the original, which "
                       'does not propagate annotations.')
    return False

  def min_count(self, min_annotation_count: int) -> int:
    return min_annotation_count

  def go_lookup(self, ontology: ontology_lib.Ontology) -> annotate.Lookup:
    """Primary IDs only, obsolete terms as themselves, index 0 dropped.

    The original's `filter(None, ...)` drops the term at index 0.
    """
    return {go_id: ('primary', (i,)) if i else ('index_0', ())
            for go_id, i in ontology.index.items()}

  def drop_reason(self, entry: uniref.UniRefEntry) -> Optional[str]:
    """'compat_id_join' unless the original's FASTA join finds `entry`.

    It joined on 'UniRef90_' + the part of the name before '_'.
    """
    if 'UniRef90_' + entry.protein_id.split('_')[0] != entry.entry_id:
      return 'compat_id_join'
    return None

  def wants_fasta(self, entry: uniref.UniRefEntry, have_fasta: bool) -> bool:
    """The original took every sequence from the FASTA."""
    del entry
    return have_fasta

  def test_names(self, source: sources_lib.Source,
                 entry: uniref.UniRefEntry) -> List[str]:
    """The representative's ID only, as the original matched."""
    del source
    return [entry.protein_id]

  def staging_keys(self, source_order: str, seed: int) -> None:
    """None: the keys need the number of entries, known only at the end."""
    del source_order, seed
    return None

  def output_keys(self, source_order: str, seed: int, num_entries: int,
                  entries_before: Sequence[int]) -> '_OriginalKeys':
    del source_order
    return _OriginalKeys(seed, num_entries, entries_before)

  def test_draws(self, seed: int, fraction: float) -> held_out.TestDraws:
    return _OriginalTestDraws(seed, fraction)


class _OriginalKeys:
  """The original's order: pandas' `sample(frac=1, random_state=seed)`.

  Attributes:
    space: keys are below this.
  """

  def __init__(self, seed: int, num_entries: int,
               entries_before: Sequence[int]):
    # sample(frac=1, random_state=seed) puts entry permutation[j] at j.
    permutation = np.random.RandomState(seed).permutation(num_entries)
    self._rank = np.empty(num_entries, np.int64)
    self._rank[permutation] = np.arange(num_entries)
    self._entries_before = np.array(entries_before, np.int64)
    self.space = max(num_entries, 1)

  def __call__(self, records: dataset_lib.Records,
               sources: np.ndarray) -> np.ndarray:
    """int64 [N] keys: each protein's entry's rank in the permutation."""
    del records
    entries = (self._entries_before[sources >> order.SOURCE_BITS] +
               (sources & ((1 << order.SOURCE_BITS) - 1)))
    return self._rank[entries]


class _OriginalTestDraws(held_out.TestDraws):
  """`set_h5_testset`'s draws."""

  @staticmethod
  def _generator(seed: int):
    return np.random.RandomState(seed)

  def _draw(self, n: int) -> np.ndarray:
    return self._rng.choice([True, False], n,
                            p=[self._fraction, 1 - self._fraction])


def choose(compat: Optional[str]) -> Mode:
  """The mode of `compat`: None for ours, 'original' for protein-bert 1.0.1.

  Raises:
    ValueError: an unknown mode.
  """
  if compat not in COMPAT_MODES:
    raise ValueError(f'Unknown compat mode {compat!r}; expected one of '
                     f'{COMPAT_MODES}.')
  return OriginalMode() if compat else Mode()
