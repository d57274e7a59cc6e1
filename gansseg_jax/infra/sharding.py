"""The device mesh of data-parallel training, batch checks, multi-host helpers.

One code path for one device, many devices and many hosts (docs/architecture.md,
"The fused training step"): a 1-D mesh over every device of every process,
axis 'data'; the batch is sharded on it, params are replicated; `jax.jit`
with these shardings, no `pmap`. Multi-host start-up is
`gansseg_jax.infra.runtime.initialize`; afterwards `jax.devices()` spans all hosts.
"""
from typing import Any

import jax
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec
import numpy as np

from gansseg_jax.infra import errors

DATA_AXIS = "data"


def data_mesh() -> Mesh:
  """A 1-D mesh over all devices of all processes, axis 'data'."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,),
                       axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array (params, optimizer state, scalars)."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """The leading (batch) axis is split over 'data'."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def per_device_batch(global_batch: int, num_devices: int, field: str) -> int:
  """global_batch / num_devices, or a UserError naming `field`."""
  if global_batch <= 0:
    raise errors.UserError(f"{field}: must be positive, got {global_batch}")
  if global_batch % num_devices:
    raise errors.UserError(
        f"{field}: global batch {global_batch} does not split evenly over "
        f"{num_devices} devices; use a multiple of {num_devices}")
  return global_batch // num_devices


def synth_chunks(config_train, num_devices: int) -> int:
  """Number of `synthesize` calls per global batch (config.train.synth_chunks).

  0 = one per device. A value > 0 fixes the data stream whatever the device
  count; it must divide the global batch and be a multiple of the device
  count (each device makes chunks / devices of them).
  """
  per_device_batch(config_train.batch_size, num_devices,
                   "config.train.batch_size")
  chunks = config_train.synth_chunks or num_devices
  if chunks < 0 or chunks % num_devices or config_train.batch_size % chunks:
    raise errors.UserError(
        f"config.train.synth_chunks: {config_train.synth_chunks} must be 0 or "
        f"a multiple of the {num_devices} devices that divides "
        f"config.train.batch_size={config_train.batch_size}")
  return chunks


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Host or single-device arrays -> global arrays replicated on `mesh`.

  Every process must pass the same values (they are not communicated);
  works with one or many processes, unlike `jax.device_put`.
  """
  sharding = replicated(mesh)

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

  return jax.tree.map(put, tree)


def is_primary() -> bool:
  """True on the process that writes shared files (process 0)."""
  return jax.process_index() == 0


def fetch(tree: Any) -> Any:
  """Host numpy copies of fully replicated arrays (valid on every host)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def sync_hosts(name: str) -> None:
  """Barrier over all processes (no-op with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
