"""The dataset builder's stages, run by `proteinbert.data.build`.

* `scratch`: scratch files of pickled record blocks, and cutting blocks
  among them; each build's locked scratch directory, and removing those of
  builds that died.
* `order`: the output order (a sort key per protein) and pass 1's split of
  the key space into ranges.
* `modes`: the build mode, ours or protein-bert 1.0.1's (`compat`), as one
  strategy object chosen once.
* `annotate`: GO IDs to term indices (resolution, `is_a` propagation), the
  vocabulary, and term indices to vocabulary indices.
* `stage`: pass 1, parsing blocks (in workers) and staging kept proteins.
* `shuffle`: pass 2, buckets of staged proteins in output order.
* `held_out`: the test set: the test-ID file and random test-set draws.
* `workers`: the ordered process-pool map both passes run on (a worker that
  dies ends it with an error).
* `summary`: what a build read, kept and dropped, and its progress bars.
"""
