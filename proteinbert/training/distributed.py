"""Data parallelism on JAX's own runtime: one mesh axis over all devices.

Parameters and optimizer state are replicated; every batch is split along its
first axis over the `data` axis of a mesh of all devices of all processes.
Each process contributes its own slice of the global batch (its loader reads
its own shard of the dataset), and `jax.make_array_from_process_local_data`
assembles the global array without any host ever holding all of it.
"""

from typing import Callable, Optional, Sequence

import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
import numpy as np

DATA_AXIS = 'data'


def initialize(coordinator_address: Optional[str], num_processes: int,
               process_id: int) -> None:
  """Joins a multi-host job; a no-op for a single process.

  Must run before any other JAX call. Arguments left empty/-1 are taken from
  the environment where JAX can (e.g. SLURM, TPU pods, JAX_COORDINATOR_*).

  Args:
    coordinator_address: 'host:port' of process 0, or '' for one process.
    num_processes: total processes, or -1 to let JAX detect it.
    process_id: this process, or -1 to let JAX detect it.
  """
  if not coordinator_address and num_processes in (-1, 1):
    return
  # CPU-only jobs (tests, debugging) need a cross-process collectives
  # backend; accelerators use their own and ignore this.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(
      coordinator_address=coordinator_address or None,
      num_processes=None if num_processes < 0 else num_processes,
      process_id=None if process_id < 0 else process_id)


def make_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D mesh over `devices`, by default every device of every process."""
  return Mesh(np.asarray(jax.devices() if devices is None else devices),
              (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def replicate(tree, mesh: Mesh):
  """Places a pytree of arrays on every device."""
  return jax.device_put(tree, replicated(mesh))


def shard_batch(batch, mesh: Mesh):
  """This process's slice of a batch -> global arrays split over devices.

  Args:
    batch: a pytree of numpy arrays whose leading axis is this process's
      share of the global batch.
    mesh: from `make_mesh`.

  Returns:
    The same pytree of global jax.Arrays, sharded along the leading axis.
  """
  sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  local_devices = len(mesh.local_devices)

  def put(x):
    if x.shape[0] % local_devices:
      raise ValueError(
          f'A per-process batch of {x.shape[0]} cannot be split over '
          f'{local_devices} local devices; make the episode batch sizes '
          'divisible by the total device count.')
    return jax.make_array_from_process_local_data(sharding, x)

  return jax.tree_util.tree_map(put, batch)


def to_host(tree):
  """numpy copies of a pytree of (replicated) arrays, on any process.

  Replicated arrays of a multi-host job are not fully addressable, so
  `jax.device_get` refuses them; every process holds a full local copy.
  """
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      x = x.addressable_data(0)
    return np.asarray(x)
  return jax.tree_util.tree_map(get, tree)


def jit_update(update: Callable, mesh: Mesh) -> Callable:
  """Jits `update(state, batch)` with the state donated and kept replicated."""
  return jax.jit(update, donate_argnums=0,
                 out_shardings=(replicated(mesh), replicated(mesh)))
