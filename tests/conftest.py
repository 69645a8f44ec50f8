"""Shared test set-up."""

import atexit
import os
import shutil
import tempfile

# Keras parity tests need the legacy (tf-keras) Keras 2 API, which the
# original package was written for; it must be chosen before TensorFlow loads.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# One XLA compilation cache for the session, shared with the subprocesses the
# tests start: most tests compile the same tiny models, and most of the
# suite's time is XLA compiling them again (every `loop.pretrain` or
# `finetune` call builds its jitted update afresh). A cache hit loads the
# same executable, so results are unchanged. The directory is new for each
# session, so nothing is reused across versions of the code or of JAX.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _CACHE_DIR = tempfile.mkdtemp(prefix='proteinbert_test_xla_cache_')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _CACHE_DIR
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'
  _OWNER = os.getpid()

  @atexit.register
  def _remove_cache():
    if os.getpid() == _OWNER:  # Not in a forked child.
      shutil.rmtree(_CACHE_DIR, ignore_errors=True)
