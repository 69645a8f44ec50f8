"""Tests for proteinbert/data/ontology.py."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from experiments import synthetic
from proteinbert.data import ontology as ontology_lib
from tests import synthetic_release

Resolution = ontology_lib.Resolution
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(tmp_path, text):
  path = tmp_path / 'go.obo'
  path.write_text(text)
  return str(path)


@pytest.fixture(name='go')
def _go(tmp_path):
  path = str(tmp_path / 'go.obo')
  synthetic.write_obo(path, synthetic_release.TERMS)
  return ontology_lib.Ontology.from_obo(path)


def test_parses_terms_in_file_order(go):
  assert [t.id for t in go.terms] == [t.id for t in synthetic_release.TERMS]
  atp = go.terms[2]
  assert atp.name == 'ATP binding'
  assert atp.namespace == 'molecular_function'
  assert atp.parents == ('GO:0005488', 'GO:0016301')  # '! name' stripped.
  assert atp.alt_ids == ('GO:0000099',)
  assert go.terms[4].is_obsolete and go.terms[4].replaced_by == ('GO:0016301',)
  assert go.header['data-version'] == 'synthetic'
  assert go.index['GO:0007165'] == 7


def test_typedefs_comments_and_modifiers(tmp_path):
  path = _write(tmp_path, (
      'format-version: 1.2\n! a comment\n\n'
      '[Term]\nid: GO:1\nname: root\n\n'
      '[Typedef]\nid: part_of\nname: part of\nis_a: GO:404\n\n'
      '[Term]\nid: GO:2\nis_a: GO:1 {source="x"} ! root\n'))
  go = ontology_lib.Ontology.from_obo(path)
  assert [t.id for t in go.terms] == ['GO:1', 'GO:2']
  assert go.terms[1].parents == ('GO:1',)


def test_ancestor_closure_follows_every_parent(go):
  closure = go.closure([go.index['GO:0005524']])
  assert [go.terms[i].id for i in closure] == [
      'GO:0003674', 'GO:0005488', 'GO:0005524', 'GO:0016301']
  assert closure.dtype == np.int32
  assert go.ancestors(0) == frozenset([0])
  assert len(go.closure([])) == 0


@pytest.mark.parametrize('go_id, how, ids', [
    ('GO:0005524', Resolution.PRIMARY, ['GO:0005524']),
    ('GO:0000099', Resolution.ALT_ID, ['GO:0005524']),
    ('GO:0000013', Resolution.REPLACED, ['GO:0016301']),
    ('GO:0000014', Resolution.OBSOLETE, []),
    ('GO:7777777', Resolution.UNKNOWN, []),
])
def test_resolve(go, go_id, how, ids):
  found_how, found = go.resolve(go_id)
  assert found_how == how
  assert [go.terms[i].id for i in found] == ids


def test_replacement_chains_are_followed(tmp_path):
  path = _write(tmp_path, (
      '[Term]\nid: GO:1\n\n'
      '[Term]\nid: GO:2\nis_obsolete: true\nreplaced_by: GO:3\n\n'
      '[Term]\nid: GO:3\nis_obsolete: true\nreplaced_by: GO:1\n'))
  go = ontology_lib.Ontology.from_obo(path)
  assert go.resolve('GO:2') == (Resolution.REPLACED, (0,))


@pytest.mark.parametrize('text, message', [
    ('[Term]\nid: GO:1\nis_a: GO:3\n\n[Term]\nid: GO:2\nis_a: GO:1\n\n'
     '[Term]\nid: GO:3\nis_a: GO:2\n',
     'go.obo:1: is_a cycle: GO:1 is_a GO:3 is_a GO:2 is_a GO:1'),
    ('[Term]\nid: GO:1\n\n[Term]\nid: GO:2\nis_a: GO:9 ! gone\n',
     'go.obo:4: GO:2 has "is_a: GO:9", but GO:9 is not defined'),
    ('[Term]\nid: GO:1\nis_obsolete: true\nreplaced_by: GO:8\n',
     'GO:1 has "replaced_by: GO:8", but GO:8 is not defined'),
    ('[Term]\nid: GO:1\n\n[Term]\nid: GO:1\n',
     'go.obo:4: GO:1 is defined again (first at line 1)'),
    ('[Term]\nid: GO:1\nalt_id: GO:2\n\n[Term]\nid: GO:2\n',
     'alt_id GO:2 of GO:1 is already defined'),
    ('[Term]\nname: nameless\n', 'go.obo:1: [Term] stanza has no id'),
    ('[Term]\nid: GO:1\nthis line has no colon\n',
     'go.obo:3: expected "tag: value"'),
    ('format-version: 1.2\n', 'no [Term] stanzas'),
    ('[Term]\nid: GO:1\nis_obsolete: true\nreplaced_by: GO:2\n\n'
     '[Term]\nid: GO:2\nis_obsolete: true\nreplaced_by: GO:1\n',
     'replaced_by cycle: GO:1 -> GO:2 -> GO:1'),
])
def test_bad_ontologies_fail_clearly(tmp_path, text, message):
  with pytest.raises(ontology_lib.OboError, match=re.escape(message)):
    ontology_lib.Ontology.from_obo(_write(tmp_path, text))


def test_binary_file_fails_clearly(tmp_path):
  path = tmp_path / 'go.obo'
  path.write_bytes(b'\x1f\x8b\x08\x00\xff\xfe')
  with pytest.raises(ontology_lib.OboError, match='go.obo:1: not UTF-8'):
    ontology_lib.Ontology.from_obo(str(path))


def test_random_ontology_is_valid():
  terms = synthetic.random_ontology(np.random.default_rng(0), 500)
  go = ontology_lib.Ontology(terms)
  depths = [len(go.ancestors(i)) for i in range(len(go))]
  assert 3 < np.mean(depths) < 60


def _chain(n, stanza):
  """An OBO of n terms, term i's extra tags given by `stanza(i)`."""
  return ''.join(f'[Term]\nid: GO:{i:07d}\nname: t{i}\n{stanza(i)}\n'
                 for i in range(n))


def test_deep_is_a_chain_is_refused_in_bounded_memory(tmp_path):
  # A 6,000-deep chain (about 200 KB) has 18M (term, ancestor) pairs; kept
  # as a set per term they took 1.0 GB.
  path = _write(tmp_path, _chain(
      6000, lambda i: f'is_a: GO:{i - 1:07d}\n' if i else ''))
  script = textwrap.dedent('''
      import json, resource, sys
      from proteinbert.data import ontology
      before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
      try:
        ontology.Ontology.from_obo(sys.argv[1])
        error = None
      except ontology.OboError as e:
        error = str(e)
      grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
      print(json.dumps([error, grown / 1024]))
  ''')
  done = subprocess.run([sys.executable, '-c', script, path], cwd=ROOT,
                        capture_output=True, text=True, check=True)
  error, grown_mb = json.loads(done.stdout)
  assert 'the is_a closure holds more than 4,194,304 (term, ancestor) ' in (
      error)
  assert grown_mb < 200  # About 40 MB: the capped pairs, as int32.


def test_chains_below_the_cap_load(tmp_path):
  go = ontology_lib.Ontology.from_obo(_write(tmp_path, _chain(
      2000, lambda i: f'is_a: GO:{i - 1:07d}\n' if i else '')))
  assert go.ancestors(1999) == frozenset(range(2000))
  np.testing.assert_array_equal(go.closure([5]), np.arange(6))


def test_long_replaced_by_chain_needs_no_recursion(tmp_path):
  # Each term replaced by the next: a RecursionError past ~1,000 before.
  go = ontology_lib.Ontology.from_obo(_write(tmp_path, _chain(
      6000, lambda i: 'is_obsolete: true\nreplaced_by: '
      f'GO:{i + 1:07d}\n' if i < 5999 else '')))
  assert go.resolve('GO:0000000') == (Resolution.REPLACED, (5999,))


@pytest.mark.parametrize('relation, stanza', [
    ('is_a', lambda i: f'is_a: GO:{(i - 1) % 6000:07d}\n'),
    ('replaced_by', lambda i: 'is_obsolete: true\nreplaced_by: '
     f'GO:{(i + 1) % 6000:07d}\n'),
])
def test_long_cycles_fail_clearly(tmp_path, relation, stanza):
  with pytest.raises(ontology_lib.OboError) as raised:
    ontology_lib.Ontology.from_obo(_write(tmp_path, _chain(6000, stanza)))
  message = str(raised.value)
  assert f'{relation} cycle: GO:' in message
  assert '... (5989 more) ...' in message and len(message) < 500


def test_nul_and_other_line_breaks(tmp_path):
  # A NUL failed only when the vocabulary was written; a form feed in a name
  # split its line (str.splitlines), an error about a line past the end.
  with pytest.raises(ontology_lib.OboError, match='go.obo:3: a NUL character'):
    ontology_lib.Ontology.from_obo(
        _write(tmp_path, '[Term]\nid: GO:1\nname: a\0b\n'))
  (term,) = ontology_lib.Ontology.from_obo(
      _write(tmp_path, '[Term]\nid: GO:1\nname: a\x0cb\x1cc\u2028\n')).terms
  assert term.name == 'a\x0cb\x1cc'
