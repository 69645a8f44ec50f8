"""Synthetic releases in the real file formats, for tests and benchmarks.

`write_obo`, `write_uniref_xml` and `write_fasta` write given terms and
entries as `go-basic.obo`, `uniref90.xml[.gz]` and `uniref90.fasta[.gz]` do
(the XML with the attributes, properties and `<member>` elements of a real
release, so parsing costs what it costs on the real file). `random_release`
makes a GO-like ontology and UniRef90-like entries: TrEMBL, Swiss-Prot and
UniParc representatives, log-normal lengths, Zipf-distributed annotations
with a few alternative, obsolete and unknown GO IDs.
"""

import gzip
import string
from typing import Iterable, Iterator, List, Mapping, Sequence
from xml.sax import saxutils

import numpy as np

from proteinbert.data import ontology as ontology_lib
from proteinbert.data import uniref

_PROPERTY_TYPES = {
    'molecular_function': 'GO Molecular Function',
    'biological_process': 'GO Biological Process',
    'cellular_component': 'GO Cellular Component',
}
_ROOTS = (('GO:0003674', 'molecular_function'),
          ('GO:0008150', 'biological_process'),
          ('GO:0005575', 'cellular_component'))
_AMINO_ACIDS = np.frombuffer(b'ACDEFGHIKLMNPQRSTVWY', np.uint8)
# Approximate UniProtKB residue frequencies, in the order above.
_AA_FREQUENCIES = np.array([8.3, 1.4, 5.5, 6.8, 3.9, 7.1, 2.3, 5.9, 5.8, 9.7,
                            2.4, 4.1, 4.7, 3.9, 5.5, 6.6, 5.3, 6.9, 1.1, 2.9])


def _open_text(path: str):
  return (gzip.open(path, 'wt', encoding='utf-8', compresslevel=1)
          if path.endswith('.gz') else open(path, 'w', encoding='utf-8'))


def write_obo(path: str, terms: Iterable[ontology_lib.Term],
              data_version: str = 'synthetic') -> None:
  """Writes `terms` as an OBO 1.2 file, with one [Typedef] as GO has."""
  terms = list(terms)
  names = {t.id: t.name for t in terms}
  with _open_text(path) as f:
    f.write(f'format-version: 1.2\ndata-version: {data_version}\n'
            'default-namespace: gene_ontology\n\n')
    for t in terms:
      f.write(f'[Term]\nid: {t.id}\nname: {t.name}\n')
      if t.namespace:
        f.write(f'namespace: {t.namespace}\n')
      f.writelines(f'alt_id: {a}\n' for a in t.alt_ids)
      f.write(f'def: "{t.name}." [GOC:synthetic]\n')
      f.writelines(f'is_a: {p} ! {names.get(p, "")}\n' for p in t.parents)
      if t.is_obsolete:
        f.write('is_obsolete: true\n')
      f.writelines(f'replaced_by: {r}\n' for r in t.replaced_by)
      f.write('\n')
    f.write('[Typedef]\nid: part_of\nname: part of\nis_transitive: true\n')


def write_uniref_xml(path: str, entries: Iterable[uniref.UniRefEntry],
                     namespaces: Mapping[str, str] = None,
                     members: int = 1, release: str = 'UniRef90') -> int:
  """Writes `entries` as a UniRef XML release; gzip when `path` ends in .gz.

  Args:
    path: the file to write.
    entries: the clusters; an entry whose `sequence` is None gets no
      `<sequence>` element.
    namespaces: GO ID -> namespace, for each GO property's `type` (IDs not in
      it are written as molecular function).
    members: non-representative `<member>`s written per entry.
    release: the root element, e.g. 'UniRef90' or 'UniRef50'.

  Returns:
    The number of entries written.
  """
  namespaces = namespaces or {}
  attr = saxutils.quoteattr
  count = 0
  with _open_text(path) as f:
    f.write('<?xml version="1.0" encoding="UTF-8" ?>\n'
            f'<{release} xmlns="http://uniprot.org/uniref" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:schemaLocation="http://uniprot.org/uniref '
            'http://www.uniprot.org/support/docs/uniref.xsd" '
            'releaseDate="2026-01-01" version="2026_01">\n')
    for e in entries:
      count += 1
      seq_len = len(e.sequence or '')
      accession = e.entry_id.partition('_')[2]
      tax = (f'<property type="NCBI taxonomy" value="{e.taxonomy_id}"/>\n'
             if e.taxonomy_id >= 0 else '')
      f.write(f'<entry id={attr(e.entry_id)} updated="2026-01-01">\n'
              f'<name>Cluster: protein {count}</name>\n'
              f'<property type="member count" value="{members + 1}"/>\n'
              '<property type="common taxon" value="cellular organisms"/>\n'
              '<property type="common taxon ID" value="131567"/>\n')
      for go_id in e.go_ids:
        kind = _PROPERTY_TYPES.get(namespaces.get(go_id), 'GO Molecular '
                                   'Function')
        f.write(f'<property type="{kind}" value={attr(go_id)}/>\n')
      id_type = 'UniParc ID' if e.protein_id.startswith('UPI') else (
          'UniProtKB ID')
      f.write(f'<representativeMember>\n<dbReference type="{id_type}" '
              f'id={attr(e.protein_id)}>\n'
              '<property type="UniProtKB accession" '
              f'value={attr(accession)}/>\n'
              f'<property type="UniParc ID" value="UPI{count:010X}"/>\n'
              f'<property type="UniRef100 ID" value="UniRef100_{accession}"/>\n'
              f'<property type="UniRef50 ID" value="UniRef50_{accession}"/>\n'
              f'<property type="protein name" value="protein {count}"/>\n'
              f'{tax}<property type="source organism" value="organism"/>\n'
              f'<property type="length" value="{seq_len}"/>\n'
              '<property type="isSeed" value="true"/>\n</dbReference>\n')
      if e.sequence is not None:
        f.write(f'<sequence length="{seq_len}" checksum="0123456789ABCDEF">'
                f'{e.sequence}</sequence>\n')
      f.write('</representativeMember>\n')
      for m in range(members):
        member = f'M{count:07d}{m}'
        f.write(f'<member>\n<dbReference type="UniProtKB ID" '
                f'id="{member}_SYNTH">\n'
                f'<property type="UniProtKB accession" value="{member}"/>\n'
                f'<property type="UniRef100 ID" value="UniRef100_{member}"/>\n'
                f'<property type="protein name" value="protein {count}"/>\n'
                f'{tax}<property type="length" value="{seq_len}"/>\n'
                '</dbReference>\n</member>\n')
      f.write('</entry>\n')
    f.write(f'</{release}>\n')
  return count


def write_fasta(path: str, entries: Iterable[uniref.UniRefEntry],
                width: int = 60) -> None:
  """Writes `entries`' sequences as `uniref90.fasta` does (60 per line)."""
  with _open_text(path) as f:
    for e in entries:
      if e.sequence is None:
        continue
      f.write(f'>{e.entry_id} protein n=1 Tax=organism '
              f'TaxID={e.taxonomy_id} RepID={e.protein_id}\n')
      f.writelines(e.sequence[i:i + width] + '\n'
                   for i in range(0, len(e.sequence), width))


def random_ontology(rng: np.random.Generator,
                    num_terms: int) -> List[ontology_lib.Term]:
  """A GO-like DAG: three rooted namespaces, 1-2 `is_a` parents per term.

  About 2% of terms are obsolete (most with a `replaced_by`) and 3% have an
  `alt_id`. Terms are written in ID order, not topological order, as in GO.
  """
  ids = ['GO:%07d' % i for i in sorted(
      rng.choice(np.arange(10_000, 9_999_999), num_terms, replace=False))]
  ids[:3] = [r for r, _ in _ROOTS]
  namespace = {r: ns for r, ns in _ROOTS}
  parents = {r: () for r, _ in _ROOTS}
  order = [r for r, _ in _ROOTS]
  by_namespace = {ns: [r] for r, ns in _ROOTS}
  for go_id in ids[3:]:
    ns = _ROOTS[rng.integers(3)][1]
    pool = by_namespace[ns]
    # Uniform earlier parents give GO-like depths (~10) and ancestor counts.
    picks = rng.integers(len(pool), size=1 + int(rng.random() < 0.4))
    parents[go_id] = tuple(sorted({pool[i] for i in picks}))
    namespace[go_id] = ns
    pool.append(go_id)
    order.append(go_id)
  alt_numbers = iter(rng.choice(np.arange(10_000, 9_999_999), num_terms,
                                replace=False))
  terms = []
  for go_id in sorted(order):
    obsolete = go_id not in dict(_ROOTS) and rng.random() < 0.02
    alt = ('GO:%07d' % next(alt_numbers),) if rng.random() < 0.03 else ()
    terms.append(ontology_lib.Term(
        id=go_id, name=f'synthetic term {go_id[3:]}',
        namespace=namespace[go_id],
        parents=() if obsolete else parents[go_id],
        alt_ids=tuple(a for a in alt if a not in namespace),
        is_obsolete=obsolete))
  current = [t.id for t in terms if not t.is_obsolete]
  # Most obsolete GO terms name their replacement.
  return [t._replace(replaced_by=(current[rng.integers(len(current))],))
          if t.is_obsolete and rng.random() < 0.8 else t for t in terms]


def _base36(number: int, width: int) -> str:
  digits = []
  for _ in range(width):
    number, digit = divmod(number, 36)
    digits.append((string.digits + string.ascii_uppercase)[digit])
  return ''.join(reversed(digits))


def _name(rng: np.random.Generator, letters: str, length: int) -> str:
  return ''.join(rng.choice(list(letters), length))


def random_entries(rng: np.random.Generator,
                   terms: Sequence[ontology_lib.Term], num_entries: int,
                   annotated_fraction: float = 0.45,
                   mean_annotations: float = 6.0,
                   zipf_exponent: float = 1.1) -> Iterator[uniref.UniRefEntry]:
  """UniRef90-like entries annotated with `terms`, generated lazily.

  Representatives are 75% TrEMBL ('A0A0B4J2F0_9BACT'), 10% Swiss-Prot
  ('ABCD1_HUMAN') and 15% UniParc ('UPI...'). Lengths are log-normal (median
  ~260, mean ~330, clipped to [10, 35000]). Annotated entries carry a Poisson
  number of GO IDs drawn Zipf-like over the terms; 1% of references use an
  alternative ID, obsolete term or an ID the ontology lacks.
  """
  current = [t.id for t in terms if not t.is_obsolete]
  odd = ([a for t in terms for a in t.alt_ids] +
         [t.id for t in terms if t.is_obsolete] + ['GO:0000000', 'GO:9999999'])
  # Zipf-like popularity over a random order of the current terms.
  popularity = rng.permutation(len(current))
  weights = 1.0 / (1.0 + popularity) ** zipf_exponent
  weights /= weights.sum()
  aa_p = _AA_FREQUENCIES / _AA_FREQUENCIES.sum()
  for i in range(num_entries):
    # IDs embed i, so they are unique as in a real release.
    kind = rng.random()
    if kind < 0.75:
      accession = 'A0A' + _base36(i, 7)
      protein_id = accession + '_9' + _name(rng, string.ascii_uppercase, 4)
    elif kind < 0.85:
      accession = f'P{i % 10}{_base36(i // 10, 3)}{i // 466_560 % 10}'
      protein_id = _base36(i, 5) + '_' + _name(rng, string.ascii_uppercase, 5)
    else:
      accession = protein_id = 'UPI%010X' % (i * 7919 + 1)
    length = int(np.clip(rng.lognormal(np.log(260), 0.7), 10, 35_000))
    sequence = _AMINO_ACIDS[rng.choice(20, length, p=aa_p)].tobytes().decode()
    go_ids = ()
    if rng.random() < annotated_fraction:
      k = max(1, rng.poisson(mean_annotations))
      chosen = rng.choice(len(current), k, p=weights)
      go_ids = tuple(dict.fromkeys(
          odd[rng.integers(len(odd))] if rng.random() < 0.01 else current[c]
          for c in chosen))
    yield uniref.UniRefEntry(
        entry_id='UniRef90_' + accession, protein_id=protein_id,
        taxonomy_id=int(rng.integers(1, 3_000_000)), sequence=sequence,
        go_ids=go_ids, line=0)


def namespaces(terms: Iterable[ontology_lib.Term]) -> dict:
  """GO ID (primary and alternative) -> namespace, for `write_uniref_xml`."""
  return {i: t.namespace for t in terms for i in (t.id,) + t.alt_ids}
