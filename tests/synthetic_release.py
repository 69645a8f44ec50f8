"""A tiny hand-made release (ontology + UniRef entries) shared by the tests.

The ontology, in file order (its index is the original's term index):

    0 GO:0003674 molecular_function (root)
    1 GO:0005488 binding             is_a 0
    2 GO:0005524 ATP binding         is_a 1, 3   alt_id GO:0000099
    3 GO:0016301 kinase activity     is_a 0
    4 GO:0000013 obsolete            replaced_by GO:0016301
    5 GO:0000014 obsolete, no replacement
    6 GO:0008150 biological_process (root)
    7 GO:0007165 signal transduction is_a 6
"""

import os
from typing import Dict, Sequence

from experiments import synthetic
from proteinbert.data import ontology
from proteinbert.data import uniref

Term = ontology.Term
MF, BP = 'molecular_function', 'biological_process'

TERMS = (
    Term('GO:0003674', 'molecular_function', MF),
    Term('GO:0005488', 'binding', MF, parents=('GO:0003674',)),
    Term('GO:0005524', 'ATP binding', MF,
         parents=('GO:0005488', 'GO:0016301'), alt_ids=('GO:0000099',)),
    Term('GO:0016301', 'kinase activity', MF, parents=('GO:0003674',)),
    Term('GO:0000013', 'old kinase', MF, is_obsolete=True,
         replaced_by=('GO:0016301',)),
    Term('GO:0000014', 'old thing', MF, is_obsolete=True),
    Term('GO:0008150', 'biological_process', BP),
    Term('GO:0007165', 'signal transduction', BP, parents=('GO:0008150',)),
)


def entry(accession: str, go_ids: Sequence[str] = (), protein_id: str = None,
          sequence: str = 'MKV', taxonomy_id: int = 9606,
          prefix: str = 'UniRef90_') -> uniref.UniRefEntry:
  """A cluster whose representative is, by default, a TrEMBL-style entry."""
  return uniref.UniRefEntry(
      entry_id=prefix + accession,
      protein_id=protein_id or accession + '_HUMAN',
      taxonomy_id=taxonomy_id, sequence=sequence, go_ids=tuple(go_ids),
      line=0)


def write(directory: str, entries: Sequence[uniref.UniRefEntry],
          terms: Sequence[Term] = TERMS, gz: bool = True, fasta: bool = False,
          release: str = 'UniRef90') -> Dict[str, str]:
  """Writes the release files; returns their paths by kind."""
  paths = {'xml': os.path.join(directory, 'uniref.xml' + ('.gz' if gz else '')),
           'obo': os.path.join(directory, 'go.obo')}
  synthetic.write_obo(paths['obo'], terms)
  synthetic.write_uniref_xml(paths['xml'], entries, synthetic.namespaces(terms),
                             release=release)
  if fasta:
    paths['fasta'] = os.path.join(directory, 'uniref.fasta')
    synthetic.write_fasta(paths['fasta'], entries)
  return paths
