"""The Gene Ontology: OBO parsing, ID resolution and the `is_a` closure.

Reads the OBO 1.2/1.4 files GO publishes (`go-basic.obo`) and the CAFA
`go.txt` (the same format). Only `[Term]` stanzas matter; of their tags we use
`id`, `name`, `namespace`, `is_a`, `alt_id`, `is_obsolete` and `replaced_by`,
and of `relationship` the `part_of` targets (kept in `Term.part_of`; the
closure here follows `is_a` only, while `proteinbert.go_eval` follows both,
as CAFA does).
Terms keep the order of the file: a term's index is its stanza's position,
which is also how the original package numbered terms (its compatibility mode
depends on that).

Annotations in UniRef name GO IDs that may be alternative IDs of a merged term
or obsolete terms. `Ontology.resolve` maps each ID to current terms and says
how (`Resolution`), so the builder can count every case. A broken ontology (a
parent that is never defined, an `is_a` cycle, an ID defined twice) is an
`OboError` naming the file and line, never a silently wrong closure. The
closure takes about four bytes per (term, ancestor) pair, and an ontology
with far more pairs than GO's (a deep `is_a` chain has the square of its
depth) is an `OboError` too; `replaced_by` chains of any length are followed
without recursion.
"""

import enum
from typing import (Dict, Iterable, List, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

import numpy as np


class OboError(ValueError):
  """A malformed or inconsistent OBO file; the message names file and line."""


class Term(NamedTuple):
  """One `[Term]` stanza.

  Attributes:
    id: the primary ID, e.g. 'GO:0005524'.
    name: human-readable name.
    namespace: 'molecular_function', 'biological_process' or
      'cellular_component' for GO.
    parents: IDs of the direct `is_a` parents.
    alt_ids: alternative IDs (of terms merged into this one).
    is_obsolete: whether the term is obsolete.
    replaced_by: for obsolete terms, the IDs that replace it.
    line: 1-based line of the stanza header, for error messages.
    part_of: IDs of the direct `relationship: part_of` targets.
  """
  id: str
  name: str = ''
  namespace: str = ''
  parents: Tuple[str, ...] = ()
  alt_ids: Tuple[str, ...] = ()
  is_obsolete: bool = False
  replaced_by: Tuple[str, ...] = ()
  line: int = 0
  part_of: Tuple[str, ...] = ()


class Resolution(enum.Enum):
  """How an annotated GO ID maps onto current terms."""
  PRIMARY = 'primary'  # A current term's own ID.
  ALT_ID = 'alt_id'  # An alternative ID of a current term.
  REPLACED = 'replaced'  # Obsolete, mapped to its `replaced_by` terms.
  OBSOLETE = 'obsolete'  # Obsolete with no replacement: dropped.
  UNKNOWN = 'unknown'  # Not in the ontology: dropped.


def _id_value(value: str) -> str:
  """The ID in an `is_a`-style value: 'GO:1 {src="x"} ! name' -> 'GO:1'."""
  return value.split(maxsplit=1)[0] if value.strip() else ''


def parse_obo(path: str) -> Tuple[List[Term], Dict[str, str]]:
  """Reads the `[Term]` stanzas of an OBO file, in file order.

  Args:
    path: an OBO file (`go-basic.obo`, CAFA `go.txt`).

  Returns:
    (terms, header): the terms, and the header's tag-value pairs (e.g.
    'format-version', 'data-version').

  Raises:
    OboError: unreadable text (not UTF-8, or with a NUL character), a line
      in a stanza that is not 'tag: value', a `[Term]` without `id`, or no
      `[Term]` at all.
  """
  with open(path, 'rb') as f:
    data = f.read()
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError as e:
    line = data.count(b'\n', 0, e.start) + 1
    raise OboError(f'{path}:{line}: not UTF-8 text; expected an OBO '
                   'file.') from None
  if '\x00' in text:
    # No string the dataset stores (term names, IDs) may hold one.
    line = text.count('\n', 0, text.index('\x00')) + 1
    raise OboError(f'{path}:{line}: a NUL character; expected OBO text.')
  terms = []
  header = {}
  stanza = None  # Tag -> values of the current stanza; None in the header.
  stanza_kind = stanza_line = None

  def finish():
    if stanza_kind != 'Term':
      return
    if 'id' not in stanza:
      raise OboError(f'{path}:{stanza_line}: [Term] stanza has no id: tag.')
    get = stanza.get
    terms.append(Term(
        id=_id_value(stanza['id'][0]),
        name=get('name', ('',))[0],
        namespace=get('namespace', (default_namespace,))[0],
        parents=tuple(_id_value(v) for v in get('is_a', ())),
        alt_ids=tuple(_id_value(v) for v in get('alt_id', ())),
        is_obsolete=get('is_obsolete', ('false',))[0] == 'true',
        replaced_by=tuple(_id_value(v) for v in get('replaced_by', ())),
        line=stanza_line,
        part_of=tuple(_id_value(v[len('part_of'):])
                      for v in get('relationship', ())
                      if v.split()[:1] == ['part_of'])))

  # Lines end at '\n' alone (as the line numbers of every reader count),
  # not at the other line breaks `str.splitlines` knows: a form feed in a
  # name is part of it.
  for line_number, line in enumerate(text.split('\n'), start=1):
    line = line.strip()
    if not line or line[0] == '!':
      continue
    if line[0] == '[' and line[-1] == ']':
      if stanza is None:
        default_namespace = header.get('default-namespace', '')
      else:
        finish()
      stanza, stanza_kind, stanza_line = {}, line[1:-1], line_number
      continue
    tag, colon, value = line.partition(':')
    if not colon or not tag or ' ' in tag:
      raise OboError(f'{path}:{line_number}: expected "tag: value", got '
                     f'{line[:80]!r}.')
    if stanza is None:
      header.setdefault(tag, value.strip())
    else:
      stanza.setdefault(tag, []).append(value.strip())
  if stanza is not None:
    finish()
  if not terms:
    raise OboError(f'{path}: no [Term] stanzas; expected an OBO ontology such '
                   'as go-basic.obo.')
  return terms, header


class Ontology:
  """Terms indexed in file order, with ID resolution and `is_a` ancestors.

  Attributes:
    terms: the terms; `terms[i]` has index i.
    index: primary ID -> term index (obsolete terms included).
    header: the OBO header's tags (e.g. 'data-version').
  """

  def __init__(self, terms: Sequence[Term], path: str = '<ontology>',
               header: Optional[Mapping[str, str]] = None):
    """Checks the ontology and precomputes ancestor sets.

    Args:
      terms: the terms in file order.
      path: where they came from, for error messages.
      header: the OBO header's tags.

    Raises:
      OboError: an ID defined twice (as primary or alternative ID), an
        `is_a` or `replaced_by` target that is not defined, an `is_a` cycle,
        a `replaced_by` cycle, or an `is_a` closure over `_max_pairs`.
    """
    self.terms = list(terms)
    self.header = dict(header or {})
    self._path = path
    self.index = {}
    for i, term in enumerate(self.terms):
      if term.id in self.index:
        first = self.terms[self.index[term.id]]
        raise OboError(f'{path}:{term.line}: {term.id} is defined again '
                       f'(first at line {first.line}).')
      self.index[term.id] = i
    self._check_targets('is_a', 'parents')
    self._check_targets('replaced_by', 'replaced_by')
    self._resolved = self._resolve_all()
    # CSR: term i's ancestors (itself included), in no order, are
    # _ancestor_indices[_ancestor_offsets[i]:_ancestor_offsets[i + 1]].
    self._ancestor_offsets, self._ancestor_indices = self._ancestor_csr()

  @classmethod
  def from_obo(cls, path: str) -> 'Ontology':
    """Parses and checks an OBO file (see `parse_obo`, `__init__`)."""
    terms, header = parse_obo(path)
    return cls(terms, path, header)

  def __len__(self) -> int:
    return len(self.terms)

  def _check_targets(self, tag: str, field: str) -> None:
    for term in self.terms:
      for target in getattr(term, field):
        if target not in self.index:
          raise OboError(
              f'{self._path}:{term.line}: {term.id} has "{tag}: {target}", '
              f'but {target} is not defined in this file (a dangling '
              'reference; is the ontology file complete?).')

  def _resolve_all(self) -> Dict[str, Tuple[Resolution, Tuple[int, ...]]]:
    """ID -> (how, term indices) for every primary and alternative ID."""
    resolved = {}
    replacements = {}  # Obsolete term -> the current terms replacing it.
    for i, term in enumerate(self.terms):
      if term.is_obsolete:
        current = self._replacements(i, replacements)
        how = Resolution.REPLACED if current else Resolution.OBSOLETE
      else:
        how, current = Resolution.PRIMARY, (i,)
      resolved[term.id] = (how, current)
    for i, term in enumerate(self.terms):
      for alt_id in term.alt_ids:
        if alt_id in resolved:
          raise OboError(f'{self._path}:{term.line}: alt_id {alt_id} of '
                         f'{term.id} is already defined as a term or alt_id.')
        how, current = resolved[term.id]
        resolved[alt_id] = (
            Resolution.ALT_ID if how == Resolution.PRIMARY else how, current)
    return resolved

  def _replacements(self, start: int,
                    done: Dict[int, Tuple[int, ...]]) -> Tuple[int, ...]:
    """Current terms replacing obsolete term `start`, following chains.

    Iterative (a depth-first walk with an explicit stack), so a chain of any
    length costs no recursion; each obsolete term is resolved once, into
    `done`.

    Raises:
      OboError: a `replaced_by` cycle.
    """
    on_path = {}  # Obsolete terms being resolved -> their stack positions.
    stack = [start]
    while stack:
      i = stack[-1]
      if i in done:
        stack.pop()
        continue
      on_path.setdefault(i, len(stack) - 1)
      waiting = [j for j in map(self.index.get, self.terms[i].replaced_by)
                 if self.terms[j].is_obsolete and j not in done]
      for j in waiting:
        if j in on_path:
          chain = [self.terms[k].id for p, k in sorted(
              (p, k) for k, p in on_path.items() if p >= on_path[j])]
          raise OboError(f'{self._path}:{self.terms[i].line}: replaced_by '
                         f'cycle: {_chain(chain + [self.terms[j].id], "->")}.')
      if waiting:
        stack += waiting
        continue
      current = set()
      for j in map(self.index.get, self.terms[i].replaced_by):
        if self.terms[j].is_obsolete:
          current.update(done[j])
        else:
          current.add(j)
      done[i] = tuple(sorted(current))
      del on_path[i]
      stack.pop()
    return done[start]

  def _ancestor_csr(self) -> Tuple[np.ndarray, np.ndarray]:
    """int64 CSR offsets and members of each term's `is_a` ancestors.

    A term's ancestors (itself included, in no order) are an int32 array
    built from its parents' once they are done (Kahn's algorithm), so memory
    is about four bytes per (term, ancestor) pair. Real GO has about 13 per
    term (go.obo 2014-01: 540k pairs for 40k terms, at most 145 for one);
    an ontology with far more (a deep `is_a` chain holds the square of its
    depth) is refused before it can take gigabytes.

    Raises:
      OboError: an `is_a` cycle, or more pairs than `_max_pairs` allows.
    """
    parents = [[self.index[p] for p in t.parents] for t in self.terms]
    children = [[] for _ in self.terms]
    pending = [len(p) for p in parents]
    for i, ps in enumerate(parents):
      for p in ps:
        children[p].append(i)
    limit = _max_pairs(len(self.terms))
    total = 0
    ready = [i for i, n in enumerate(pending) if n == 0]
    ancestors = [None] * len(self.terms)
    while ready:
      i = ready.pop()
      ps = parents[i]
      if len(ps) == 1:  # Most terms: no repeats to remove.
        ancestors[i] = np.append(ancestors[ps[0]], np.int32(i))
      else:
        ancestors[i] = np.unique(np.concatenate(
            [ancestors[p] for p in ps] + [np.array([i], np.int32)]))
      total += len(ancestors[i])
      if total > limit:
        raise OboError(
            f'{self._path}: the is_a closure holds more than {limit:,} '
            f'(term, ancestor) pairs for {len(self.terms):,} terms (real GO: '
            f'about 13 per term); is_a chains this deep are not an ontology '
            f'to annotate with (term {self.terms[i].id}, line '
            f'{self.terms[i].line}, has {len(ancestors[i]):,} ancestors).')
      for c in children[i]:
        pending[c] -= 1
        if pending[c] == 0:
          ready.append(c)
    if any(a is None for a in ancestors):
      raise OboError(self._describe_cycle(parents, ancestors))
    sizes = np.fromiter(map(len, ancestors), np.int64, len(ancestors))
    return (np.concatenate([[0], np.cumsum(sizes)]),
            np.concatenate([np.zeros(0, np.int32)] + ancestors).astype(
                np.int64))

  def _describe_cycle(self, parents, ancestors) -> str:
    # Every unfinished term has an unfinished parent, so walking up from one
    # must revisit a term: that stretch of the walk is a cycle.
    i = next(i for i, a in enumerate(ancestors) if a is None)
    walk = {}  # Term -> its step in the walk; dicts keep insertion order.
    while i not in walk:
      walk[i] = len(walk)
      i = next(p for p in parents[i] if ancestors[p] is None)
    cycle = list(walk)[walk[i]:] + [i]
    return (f'{self._path}:{self.terms[cycle[0]].line}: is_a cycle: '
            f'{_chain([self.terms[j].id for j in cycle], "is_a")}.')

  def resolve(self, go_id: str) -> Tuple[Resolution, Tuple[int, ...]]:
    """How `go_id` maps onto current terms, and their indices."""
    return self._resolved.get(go_id, (Resolution.UNKNOWN, ()))

  def resolutions(self) -> Mapping[str, Tuple[Resolution, Tuple[int, ...]]]:
    """`resolve` of every ID the ontology defines (primary and alternative)."""
    return self._resolved

  def ancestors(self, index: int) -> frozenset:
    """Term indices of term `index` and all its `is_a` ancestors."""
    return frozenset(self._ancestor_indices[
        self._ancestor_offsets[index]:self._ancestor_offsets[index + 1]
    ].tolist())

  def closure(self, indices: Iterable[int]) -> np.ndarray:
    """int32 [K] sorted indices of `indices` and all their ancestors."""
    indices = np.fromiter(indices, np.int64)
    _, closed = self.closure_pairs(np.zeros(len(indices), np.int64), indices)
    return np.unique(closed).astype(np.int32)

  def closure_pairs(self, rows: np.ndarray,
                    indices: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Each (row, term) pair with the term replaced by its ancestors.

    Vectorised, so the builder closes a block of proteins' terms at once.

    Args:
      rows: int64 [K] any labels, e.g. the protein carrying each term.
      indices: int [K] term indices.

    Returns:
      (rows, indices), int64 [K'] each: (row, a) for every ancestor a of
      every pair's term (the term included), in input order; a term two
      pairs of a row share appears twice.
    """
    starts = self._ancestor_offsets[indices]
    counts = self._ancestor_offsets[indices + 1] - starts
    ends = np.cumsum(counts)
    within = np.arange(ends[-1] if len(ends) else 0) - np.repeat(
        ends - counts, counts)
    return (np.repeat(rows, counts),
            self._ancestor_indices[np.repeat(starts, counts) + within])


def _chain(ids: List[str], link: str, most: int = 12) -> str:
  """`ids` joined by `link`; a long chain by its ends and its length."""
  if len(ids) > most:
    ids = ids[:most // 2] + [f'... ({len(ids) - most} more) ...'] + ids[
        -(most // 2):]
  return f' {link} '.join(ids)


def _max_pairs(num_terms: int) -> int:
  """The most (term, ancestor) pairs an ontology of `num_terms` may have.

  15 times real GO's average per term, and at least 4M (32 MB as int64),
  so any small ontology passes; a crafted one costs at most a few bytes per
  byte of its file.
  """
  return max(200 * num_terms, 1 << 22)
