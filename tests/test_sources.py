"""Tests for proteinbert/data/sources.py (builds: test_build_dataset.py)."""

import pytest

from proteinbert.data import sources
from proteinbert.data import fasta_reader


@pytest.mark.parametrize('first_word, description, ids', [
    ('sp|P12345|NAME_HUMAN', 'Desc OS=Homo sapiens OX=9606 GN=ABC',
     ('P12345', 'NAME_HUMAN', 9606)),
    ('tr|A0A023GPI8|A0A023GPI8_9ABAC', 'X OS=Virus OX=10000',
     ('A0A023GPI8', 'A0A023GPI8_9ABAC', 10000)),
    ('sp|Q30Z06|', '', ('Q30Z06', 'Q30Z06', -1)),  # No entry name.
    ('heavy_chain_7', 'IGHV3-23 OX=9606', ('heavy_chain_7', 'heavy_chain_7',
                                           9606)),
    ('UniRef90_P1', 'n=1 TaxID=9606 BOX=12', ('UniRef90_P1', 'UniRef90_P1',
                                              -1)),
])
def test_header_ids(first_word, description, ids):
  record = fasta_reader.FastaRecord(first_word, description, 'MKV', 1)
  assert sources.header_ids(record) == ids


@pytest.mark.parametrize('inputs, route', [
    (dict(uniref_xml='u.xml', go_obo='go.obo'), 'xml'),
    (dict(uniref_xml='u.xml', go_obo='go.obo', fasta='u.fasta'), 'xml'),
    (dict(fasta='f.fa'), 'fasta'),
    (dict(fasta='f.fa', go_obo='go.obo'), 'fasta'),
    (dict(fasta='f.fa', annotations='a.gaf', go_obo='go.obo'), 'fasta'),
])
def test_choose(inputs, route):
  arguments = dict(uniref_xml=None, fasta=None, annotations=None, go_obo=None,
                   compat=None)
  assert sources.choose(**{**arguments, **inputs}) == route


@pytest.mark.parametrize('inputs, message', [
    (dict(), 'No input'),
    (dict(go_obo='go.obo'), 'No input'),
    (dict(uniref_xml='u.xml'), 'uniref_xml needs go_obo'),
    (dict(uniref_xml='u.xml', go_obo='go.obo', annotations='a.tsv'),
     'annotations goes with the FASTA route'),
    (dict(fasta='f.fa', annotations='a.tsv'), 'annotations needs go_obo'),
    (dict(fasta='f.fa', compat='original'), 'it needs uniref_xml'),
])
def test_choose_refuses(inputs, message):
  arguments = dict(uniref_xml=None, fasta=None, annotations=None, go_obo=None,
                   compat=None)
  with pytest.raises(ValueError, match=message):
    sources.choose(**{**arguments, **inputs})
