"""One rule for residues (issue 14, item 7): the rule itself, and the builder,
the fine-tuning CSVs and the model's FASTA inputs applying it alike."""

import pytest

from proteinbert import fasta
from proteinbert import residues
from proteinbert.data import dataset as dataset_lib
from proteinbert.finetuning import data as finetuning_data
from tests import synthetic_release
from tests import test_build_dataset

entry = synthetic_release.entry


@pytest.mark.parametrize('seq, expected', [
    ('MKV', 'MKV'),
    ('mkVla', 'MKVLA'),  # Soft-masked.
    ('MKV*', 'MKV'),  # A stop codon.
    ('MK VL\tA\n', 'MKVLA'),
    ('BJOZX', 'BJOZX'),  # Kept; tokenized as <OTHER>.
    ('', ''),
    ('*', ''),
    ('MK*V', None),
    ('MKV**', None),
    ('MK1V', None),
    ('MK-V', None),
    ('MK.V', None),
    ('MK<V', None),
    ('MK\x1cV', None),  # Python's str.split() would call this whitespace.
    ('MK\u00e9V', None),
])
def test_the_rule(seq, expected):
  assert residues.normalize(seq) == expected
  assert residues.normalize_bytes(seq.encode()) == (
      None if expected is None else expected.encode())
  if expected is None:
    with pytest.raises(ValueError, match=r'^f\.csv:3: invalid character'):
      residues.check(seq, 'f.csv:3')
  else:
    assert residues.first_invalid(seq) is None


def test_odd_letters_and_check_all():
  assert residues.odd_letters('ACBZ') == {'B', 'Z'}
  assert residues.check_all(['acd', b'mkv*']) == ['ACD', 'MKV']
  with pytest.raises(ValueError, match=r"sequence 1: invalid character '-' "
                     r'\(character 3 of the sequence\)'):
    residues.check_all(['MKV', 'MK-V'])
  with pytest.raises(TypeError, match='Sequence 0 has type int'):
    residues.check_all([5])


# Sequences breaking the rule, each in an entry of its own, and those it
# normalises: the builder drops the first as counted skips and keeps the
# second normalised, in both modes.
_INVALID = {'A0A011': 'MK1V', 'A0A012': 'MK*V', 'A0A013': 'MK-V',
            'A0A014': 'MK;V', 'A0A015': '<![CDATA[MK<&>V]]>'}
_NORMALISED = {'A0A016': ('mkvLA', b'MKVLA'), 'A0A017': ('MKW*', b'MKW')}


def _stored_seqs(output):
  with dataset_lib.open_dataset(output) as data:
    return dict(zip(data.entry_ids(0, data.num_proteins),
                    data.read(0, data.num_proteins).seqs))


@pytest.mark.parametrize('compat', [None, 'original'])
@pytest.mark.parametrize('fasta_supplies', [False, True])
def test_builder_xml_route(tmp_path, compat, fasta_supplies):
  # With fasta_supplies in compatibility mode, every sequence comes from the
  # FASTA (the FASTA join); otherwise from the XML.
  entries = (entry('A0A010', ['GO:0005524']),) + tuple(
      entry(a, sequence=s) for a, s in _INVALID.items()) + tuple(
          entry(a, sequence=s) for a, (s, _) in _NORMALISED.items())
  summary, output = test_build_dataset._build(
      tmp_path, entries, compat=compat, fasta=fasta_supplies)
  assert summary.dropped == {'invalid_sequence': len(_INVALID)}
  stored = _stored_seqs(output)
  for accession, (_, kept) in _NORMALISED.items():
    assert stored['UniRef90_' + accession] == kept
  assert not any('UniRef90_' + a in stored for a in _INVALID)


def test_builder_fasta_route(tmp_path):
  text = ''.join(f'>{a}\n{s}\n' for a, s in _INVALID.items()
                 if 'CDATA' not in s)
  text += '>P1\nmkv la\nMKW*\n>P2\nACDE\n>P3\n*\n'
  summary, output = test_build_dataset._fasta_build(tmp_path, fasta=text)
  assert summary.dropped == {'invalid_sequence': len(_INVALID) - 1,
                             'no_sequence': 1}
  assert _stored_seqs(output) == {'P1': b'MKVLAMKW', 'P2': b'ACDE'}
  # The model's FASTA reader gives the builder's sequences, and the
  # characters the builder skips are errors naming the line.
  with pytest.raises(ValueError, match=r"proteins.fasta:2: invalid "
                     r"character '1' in record 'A0A011'"):
    fasta.read_fasta(str(tmp_path / 'inputs' / 'proteins.fasta'))
  valid = tmp_path / 'valid.fasta'
  valid.write_text(text[text.index('>P1'):])
  assert {r.id: r.seq.encode() for r in fasta.read_fasta(str(valid))
          if r.seq} == {'P1': b'MKVLAMKW', 'P2': b'ACDE'}


def test_finetuning_csv(tmp_path):
  path = tmp_path / 'task.train.csv'
  path.write_text('seq,label\nmkvla,1\n"MKW\nVLA*",0\nMKQ,1\n')
  data = finetuning_data.read_csv(str(path))
  assert data.seqs == ['MKVLA', 'MKWVLA', 'MKQ'] and data.lines == [2, 4, 5]
  path.write_text('seq,label\nmkvla,1\nMKV,0\nMK2V,1\n')
  with pytest.raises(ValueError, match=r"task\.train\.csv:4: invalid "
                     r"character '2'"):
    finetuning_data.read_csv(str(path))
