"""What a build read, kept and dropped, and its progress bars."""

import collections
import dataclasses
import datetime
import sys
import time
from typing import Any, Dict

# Individual skips logged before the rest are only counted.
MAX_LOGGED = 10


@dataclasses.dataclass
class BuildSummary:
  """What a build read, kept and dropped; logged and stored in the output.

  Attributes:
    entries: UniRef entries or FASTA records read (but not those the
      reader left out as too long, counted in `dropped['too_long']` only).
    proteins: proteins written.
    with_annotations: written proteins with at least one vocabulary term.
    test_proteins: written proteins in the test set.
    dropped: reason -> entries not written ('no_sequence',
      'invalid_sequence' (a character `proteinbert.residues` does not
      allow), 'too_long' (over `uniref.MAX_RESIDUES` residues,
      or an XML entry over `uniref.MAX_ENTRY_BYTES` outside its members),
      'compat_id_join').
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


# What most likely empties a build, by the reason its entries were dropped.
_DROP_HINTS = {
    'no_sequence': 'the entries carry no sequence: give the release\'s FASTA '
                   '(fasta=uniref90.fasta.gz) to supply them',
    'compat_id_join': 'compatibility mode joins entries as the original did '
                      '(UniRef90_ + the representative\'s accession), which '
                      'only a UniRef90 release matches',
    'too_long': 'every sequence is over the residue cap',
    'invalid_sequence': 'no sequence is valid protein text',
}


def refuse_no_proteins(summary: BuildSummary, kept: int, path: str,
                       kind: str) -> None:
  """Raises if the build kept no protein, saying what was probably wrong.

  Args:
    summary: the build's summary after reading the input.
    kept: proteins staged for writing.
    path: the input (`kind` file) the proteins come from.
    kind: what the input is ('UniRef XML', 'FASTA').

  Raises:
    ValueError: `kept` is 0.
  """
  if kept:
    return
  if not summary.entries and not summary.dropped:
    hint = ("UniRef XML: <entry> elements inside the root element, as "
            "UniProt writes them" if kind == 'UniRef XML' else
            "FASTA: '>ID description' header lines, each followed by its "
            "sequence")
    raise ValueError(f'{path}: no entries read; expected {hint}. Is it the '
                     'right file? No dataset written.')
  reason, _ = summary.dropped.most_common(1)[0]
  dropped = ', '.join(f'{k}: {v:,}' for k, v in summary.dropped.items())
  raise ValueError(
      f'{path}: none of its {summary.entries:,} entries was kept '
      f'(dropped: {dropped}); most likely {_DROP_HINTS.get(reason, reason)}. '
      'No dataset written.')


def refuse_empty_vocabulary(summary: BuildSummary, counts, min_count: int,
                            annotations: str, go_obo: str) -> None:
  """Raises if annotations were given but no term entered the vocabulary.

  Args:
    summary: the build's summary after reading the input and choosing the
      vocabulary.
    counts: int64 [T] proteins (or entries) per ontology term.
    min_count: the vocabulary's threshold.
    annotations: where the GO IDs come from, for the message.
    go_obo: the ontology, for the message.

  Raises:
    ValueError: an empty vocabulary, with what most likely emptied it.
  """
  if summary.vocabulary_size:
    return
  references = sum(summary.go_references.values())
  known = references - summary.go_references['unknown']
  if not references:
    table = summary.annotation_table
    why = ('the annotation table names none of the FASTA\'s IDs (it joins '
           'on UniProt accessions, or else the first word of a header)'
           if table and table['proteins'] else
           f'{annotations} holds no GO annotation (for a sequence-only '
           'dataset, build from a FASTA without an annotation table)')
  elif not known:
    unknown = ', '.join(k for k, _ in summary.unknown_go_ids.most_common(3))
    why = (f'none of the {references:,} GO references names a term of '
           f'{go_obo} (commonest: {unknown}); expected the ontology the '
           'annotations use')
  else:
    why = (f'no term is carried by min_annotation_count={min_count:,} '
           f'proteins (the most: {int(max(counts, default=0)):,}); lower '
           'the threshold')
  raise ValueError(f'Empty GO vocabulary: {why}. No dataset written.')


class Progress:
  """A text progress bar with a rate, on stderr."""

  def __init__(self, what: str, enabled: bool):
    self._what = what
    self._enabled = enabled
    self._tty = sys.stderr.isatty()
    self._start = self._last = time.monotonic()
    self._shown = False

  def update(self, count: int, fraction: float, force: bool = False) -> None:
    """Shows `count` done, `fraction` of the whole.

    At most once a second on a terminal, every 30 s otherwise, unless
    `force`.
    """
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
    """Shows the bar complete at `count` and ends its line."""
    self.update(count, 1.0, force=True)
    if self._shown and self._tty:
      sys.stderr.write('\n')
