"""Builds a pretraining dataset from UniRef XML, or FASTA and a GO table.

Two routes (`sources`): a UniRef XML release, whose entries carry their GO
IDs, or a FASTA file with an optional annotation table (TSV or GAF; none
for a sequence-only dataset). `build_dataset` reads the XML or FASTA once,
streaming, and keeps memory bounded whatever the number of entries (the
per-term counts, the vocabulary, a test-ID list and an annotation table
aside). Its stages live in `proteinbert.data.builder`:

1. Stage (`builder.stage`). The main process decompresses the input (on a
   thread of its own) and cuts it into blocks of whole entries; worker
   processes (`builder.workers`) parse them.
   Each entry's GO IDs are resolved (`ontology.Resolution`: alternative IDs
   to their term, obsolete terms to their `replaced_by`, the rest counted
   and dropped) and extended by their `is_a` ancestors (`builder.annotate`).
   Kept proteins go to scratch files (`builder.scratch`), annotated with
   ontology term indices, and each term counts the proteins carrying it.
   Each protein's sort key (`builder.order`) is a hash of the seed and its
   position in the XML (FASTA route: its ID, so that duplicate IDs meet in
   step 3 and fail), so proteins are staged by key range, about
   `order.RANGES_PER_BUCKET` ranges per bucket of `bucket_size` (the number
   of proteins is extrapolated from the first block).
   An XML entry ID that two entries share is an error once the input is
   read (`builder.unique_ids`; the FASTA route's shuffle finds them).
2. Vocabulary. Terms carried by at least `min_annotation_count` proteins,
   sorted by GO ID (`annotate.vocabulary`).
3. Shuffle and write (`builder.shuffle`). Consecutive key ranges make a
   bucket; workers sort each bucket by key and map its annotations to the
   vocabulary, while the main process draws test flags (`builder.held_out`)
   and appends bucket after bucket to the output. A range with more than
   `bucket_size` proteins (the estimate was low, or compatibility mode,
   whose keys are known only at the end) is first split into buckets by
   key. The output order is a pseudo-random permutation that depends only
   on the seed and the release (not on workers, ranges or buckets), and any
   contiguous shard of it (one per host) is a uniform sample.
4. The output is written under a temporary name and renamed when complete;
   what was read, kept and dropped is logged and stored in it
   (`builder.summary`).

Scratch space: the staged proteins (residues, IDs and term indices,
uncompressed: about twice the output's size) beside the output or in
`scratch_dir`, freed as the output is written. A build that is killed
leaves its scratch space and unfinished output behind; the next build with
the same scratch directory removes them, and logs it (`builder.scratch`).
A worker process that dies ends the build with `workers.WorkerDied`.

Bad inputs cost bounded memory: a sequence over `uniref.MAX_RESIDUES`
residues is skipped and counted ('too_long'; see `uniref` for the byte
caps), and the ontology's closure is capped (`ontology`).

Kept proteins are all entries with a sequence, annotated or not, as in the
paper: unannotated proteins still train the language-model task.

Compatibility mode (`compat='original'`) reproduces protein-bert 1.0.1's
`create_uniref_db` + `create_uniref_h5_dataset` + `set_h5_testset`: its
annotations, vocabulary, ID join, order and test draws. Every difference is
a method of the mode object (`builder.modes`, which lists them), chosen once.
"""

import datetime
import itertools
import os
import resource
import time
from typing import Any, Dict, Iterable, Optional, Union

from absl import logging
import numpy as np

from proteinbert import io_utils
from proteinbert.data import chunk as chunk_lib
from proteinbert.data import dataset as dataset_lib
from proteinbert.data import dataset_writer
from proteinbert.data import ontology as ontology_lib
from proteinbert.data import sources as sources_lib
from proteinbert.data.builder import annotate
from proteinbert.data.builder import held_out
from proteinbert.data.builder import modes
from proteinbert.data.builder import order
from proteinbert.data.builder import scratch as scratch_lib
from proteinbert.data.builder import shuffle
from proteinbert.data.builder import stage
from proteinbert.data.builder import summary as summary_lib
from proteinbert.data.builder import unique_ids
from proteinbert.data.builder import workers

# Proteins sorted in memory at once: about 70 MB per bucket (three can be in
# memory: one being written, two prepared).
DEFAULT_BUCKET_SIZE = 100_000

def _cpu_seconds() -> float:
  """CPU time of this process and its finished children."""
  return sum(usage.ru_utime + usage.ru_stime for usage in (
      resource.getrusage(resource.RUSAGE_SELF),
      resource.getrusage(resource.RUSAGE_CHILDREN)))


def _file_info(path: Optional[str]) -> Optional[Dict[str, Any]]:
  if not path:
    return None
  return {'name': os.path.basename(path), 'bytes': os.path.getsize(path)}


def build_dataset(uniref_xml: Optional[str],
                  go_obo: Optional[str],
                  output: str,
                  *,
                  fasta: Optional[str] = None,
                  annotations: Optional[str] = None,
                  min_annotation_count: int = 100,
                  propagate: Optional[bool] = None,
                  test_ids: Optional[str] = None,
                  test_fraction: float = 0.0,
                  seed: int = 0,
                  compat: Optional[str] = None,
                  layout: str = 'sparse',
                  compression: Optional[str] = 'gzip',
                  bucket_size: int = DEFAULT_BUCKET_SIZE,
                  num_workers: Optional[int] = None,
                  scratch_dir: Optional[str] = None,
                  overwrite: bool = False,
                  show_progress: bool = True) -> summary_lib.BuildSummary:
  """Builds a pretraining dataset file (see the module docstring).

  The inputs choose the route (`sources.choose`): `uniref_xml` (with
  `go_obo`, and optionally `fasta`), or `fasta` alone (sequence-only: no
  annotations, an empty vocabulary) or with `annotations` and `go_obo`.

  Args:
    uniref_xml: `uniref90.xml.gz` (or any UniRef XML, gzip or plain); None
      for the FASTA route.
    go_obo: the GO in OBO format (`go-basic.obo`, CAFA `go.txt`); needed
      with `uniref_xml` or `annotations`.
    output: the dataset file to write.
    fasta: with `uniref_xml`: optional `uniref90.fasta[.gz]`, for entries
      without an XML sequence (and, in compatibility mode, for every
      sequence). Without: the proteins, any FASTA (gzip or plain; see
      `sources.FastaSource` for the IDs taken from headers).
    annotations: FASTA route: optional annotation table, TSV or GAF, gzip or
      plain (see `annotation_table`), joined on the FASTA IDs.
    min_annotation_count: a term enters the vocabulary when at least this
      many proteins carry it (in the default mode, at least 1).
    propagate: annotate every protein with the `is_a` ancestors of its terms;
      None: yes, except in compatibility mode, which never propagates.
    test_ids: optional file of protein IDs (one per line) for the test set.
    test_fraction: additionally put each protein in the test set with this
      probability.
    seed: seeds the output order and the random test set.
    compat: None, or 'original' to reproduce protein-bert 1.0.1.
    layout: 'sparse' (ours) or 'original' (the dense layout).
    compression: 'gzip' or None, for the output's datasets.
    bucket_size: proteins sorted in memory at once; bounds memory (about
      0.7 KB per protein, three buckets at a time) and sets how many scratch
      buckets the shuffle uses.
    num_workers: worker processes that parse the XML and prepare buckets; 0
      does everything in this process; None uses one per idle CPU (see
      `workers.idle_cpus`). The output does not depend on it.
    scratch_dir: where scratch files go (about twice the output's size);
      defaults to the output's directory.
    overwrite: replace an existing output.
    show_progress: draw progress bars on stderr.

  Returns:
    The build's summary, also logged and stored in the output's metadata.

  Raises:
    FileExistsError: `output` exists and not `overwrite`.
    ValueError: bad settings (checked before any input is read) or inputs,
      a bad test-ID file, or a build that would be empty (no proteins kept,
      or annotations given and no term in the vocabulary).
    workers.WorkerDied: a worker process died (killed, out of memory).
    ontology.OboError, text_files.FileFormatError,
    annotation_table.AnnotationTableError: bad input files, a FASTA ID
      shared by two records among them (the message names the file and
      position). No output is left behind.
  """
  route = sources_lib.choose(uniref_xml, fasta, annotations, go_obo, compat)
  mode = modes.choose(compat)
  propagate = mode.propagate(propagate)
  check_settings(output, overwrite, scratch_dir, layout, seed, bucket_size,
                  num_workers, min_annotation_count)
  start, start_cpu = time.monotonic(), _cpu_seconds()
  summary = summary_lib.BuildSummary()
  test_draws = mode.test_draws(seed, test_fraction)
  test_id_lines = held_out.read_test_ids(test_ids) if test_ids else {}
  ontology = (ontology_lib.Ontology.from_obo(go_obo) if go_obo else
              ontology_lib.Ontology([]))
  if go_obo:
    logging.info('%s: %d terms (%s).', go_obo, len(ontology),
                 ontology.header.get('data-version', 'no data-version'))
  if route == 'xml':
    source = sources_lib.XmlSource(uniref_xml)
    join_fasta = fasta
  else:
    source = sources_lib.FastaSource(fasta, annotations)
    join_fasta = None
    if not annotations:
      logging.info('No annotation table: a sequence-only dataset (no '
                   'annotations, an empty vocabulary).')
  if num_workers is None:
    num_workers = workers.idle_cpus()
    logging.info('Using %d worker processes.', num_workers)
  # With workers, the main process decompresses beside their parsing;
  # without, a thread does (threads do not survive the fork that starts
  # workers).
  blocks = source.blocks(read_ahead=not num_workers)
  first = next(blocks, None)
  estimate = source.estimate_entries(first)
  ranges = order.Ranges(mode.staging_keys(source.order, seed),
                        order.range_count(estimate, bucket_size))
  # The FASTA route's shuffle meets repeated IDs; the XML's needs this.
  id_parts = (0 if source.duplicate_error else
              unique_ids.part_count(estimate))
  processor = stage.BlockProcessor(
      source, annotate.Annotator(ontology, propagate, mode.go_lookup(ontology)),
      ranges, mode, bool(join_fasta), test_id_lines, id_parts)
  with scratch_lib.directory(
      scratch_dir or os.path.dirname(os.path.abspath(output))) as scratch:
    stager = stage.Stager(scratch, ranges, len(ontology), join_fasta, mode,
                          summary)
    ids = unique_ids.IdParts(scratch, id_parts)
    progress = summary_lib.Progress(f'reading {source.kind}', show_progress)
    blocks = itertools.chain([first] if first else [], blocks)
    for result in workers.ordered_map(processor, enumerate(blocks),
                                      num_workers):
      stager.add(result, source.path)
      ids.add(result.ids)
      stager.add_skipped(source.skipped, source.path)
      progress.update(summary.entries, source.fraction_read)
    stager.add_skipped(source.skipped, source.path)
    stager.finish()
    progress.finish(summary.entries)
    ids.check(source.path, num_workers)
    summary_lib.refuse_no_proteins(summary, stager.size, source.path,
                                   source.kind)
    summary.annotation_table = source.annotation_counts()
    if test_ids:
      summary.unmatched_test_ids = held_out.check_test_ids(
          test_ids, test_id_lines, stager.matched_test_ids,
          source.test_id_hint)
    min_count = mode.min_count(min_annotation_count)
    vocabulary, lookup = annotate.vocabulary(ontology, stager.counts,
                                             min_count)
    summary.vocabulary_size = len(vocabulary.ids)
    if uniref_xml or annotations:
      summary_lib.refuse_empty_vocabulary(
          summary, stager.counts, min_count, annotations or uniref_xml,
          go_obo)
    logging.info('Vocabulary: %d terms with >= %d proteins; writing %d '
                 'proteins.', summary.vocabulary_size, min_annotation_count,
                 stager.size)
    with io_utils.atomic_path(output) as tmp:
      scratch_lib.note_output(scratch, tmp)
      writer = dataset_writer.create_writer(tmp, layout, vocabulary,
                                            compression)
      shuffler = shuffle.Shuffler(
          mode.output_keys(source.order, seed, summary.entries,
                           stager.entries_before),
          lookup, source.duplicate_error)
      _write(shuffle.shuffled(stager.staged, shuffler, bucket_size, scratch,
                              num_workers),
             writer, test_draws, summary,
             summary_lib.Progress('writing', show_progress), stager.size)
      # The metadata records the time so far; the returned summary's also
      # counts closing the file and renaming it (milliseconds).
      summary.seconds = time.monotonic() - start
      summary.cpu_seconds = _cpu_seconds() - start_cpu
      writer.close(_metadata(
          source, ontology, summary,
          inputs={name: _file_info(path) for name, path in (
              ('uniref_xml', uniref_xml), ('go_obo', go_obo),
              ('fasta', fasta), ('annotations', annotations),
              ('test_ids', test_ids))},
          settings=dict(min_annotation_count=min_annotation_count,
                        propagate=propagate, test_fraction=test_fraction,
                        seed=seed, compat=compat, layout=layout)))
      summary.output_bytes = os.path.getsize(tmp)
  summary.seconds = time.monotonic() - start
  summary.cpu_seconds = _cpu_seconds() - start_cpu
  logging.info('Built %s:\n%s', output, summary.report())
  return summary


def check_settings(output: str, overwrite: bool, scratch_dir: Optional[str],
                    layout: str, seed: int, bucket_size: int,
                    num_workers: Optional[int],
                    min_annotation_count: int) -> None:
  """Refuses settings that would fail a build later (`build_dataset`).

  `build_dataset` checks them first; binaries may check their flags sooner.

  Raises:
    FileExistsError: `output` exists and not `overwrite`.
    ValueError: any other bad setting, named.
  """
  if layout not in dataset_lib.LAYOUTS:
    raise ValueError(f'Unknown layout {layout!r}; expected one of '
                     f'{dataset_lib.LAYOUTS}.')
  if not 0 <= seed < 2**32:
    raise ValueError(f'seed {seed} is not in [0, 2**32).')
  for name, value, least in (('bucket_size', bucket_size, 1),
                             ('num_workers', num_workers, 0),
                             ('min_annotation_count', min_annotation_count,
                              0)):
    if value is not None and value < least:
      raise ValueError(f'{name}={value}; expected at least {least}.')
  for name, directory in (
      ('output', os.path.dirname(os.path.abspath(output))),
      ('scratch_dir', scratch_dir)):
    if directory is not None and not os.path.isdir(directory):
      raise ValueError(f'{name}: the directory {directory} does not exist; '
                       'create it first.')
  if os.path.exists(output) and not overwrite:
    raise FileExistsError(f'{output} exists; pass overwrite=True to replace '
                          'it.')


def _write(buckets: Iterable[dataset_lib.Records],
           writer: Union[dataset_writer.SparseWriter,
                         dataset_writer.OriginalWriter],
           test_draws: held_out.TestDraws,
           summary: summary_lib.BuildSummary, progress: summary_lib.Progress,
           total: int) -> None:
  """Appends `buckets` of `total` proteins, drawing test flags and counting.

  Args:
    buckets: the proteins in output order.
    writer: the output; flushed at the end.
    test_draws: adds random test proteins to those of the test-ID file.
    summary: counts proteins, annotated proteins and test proteins; updated.
    progress: shows how far the writing is.
    total: the proteins `buckets` holds.
  """
  for records in buckets:
    staged = records.proteins
    proteins = chunk_lib.ProteinChunk(
        seqs=staged.seqs, annotation_offsets=staged.annotation_offsets,
        annotation_indices=staged.annotation_indices,
        is_test=staged.is_test | test_draws(len(records)))
    writer.append(dataset_lib.Records(proteins, *records[1:]))
    summary.proteins += len(proteins)
    summary.with_annotations += int(
        np.count_nonzero(np.diff(proteins.annotation_offsets)))
    summary.test_proteins += int(np.count_nonzero(proteins.is_test))
    progress.update(summary.proteins, summary.proteins / max(total, 1))
  progress.finish(summary.proteins)
  writer.flush()


def _metadata(source, ontology, summary, inputs, settings) -> Dict[str, Any]:
  return {
      'builder': __name__,
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'inputs': inputs,
      **source.metadata(),
      'ontology_header': {k: ontology.header[k] for k in
                          ('format-version', 'data-version', 'date')
                          if k in ontology.header},
      'settings': settings,
      'summary': summary.as_dict(),
  }
