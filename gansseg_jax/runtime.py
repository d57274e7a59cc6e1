"""Process start-up: multi-host initialisation and a log of what we run on."""
import os

from absl import logging
import jax
import ml_collections

from gansseg_jax import errors

# Environment variables that say this process is one of several hosts.
_MULTI_HOST_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")


def _environment_is_multi_host() -> bool:
  """True when a launcher (SLURM, MPI, a TPU pod, explicit env) started several hosts."""
  if any(os.environ.get(k) for k in _MULTI_HOST_ENV):
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    return True
  if int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    return True
  return "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")


def distributed_wanted(config: ml_collections.ConfigDict) -> bool:
  """Whether to call `jax.distributed.initialize`; validates the switch.

  'yes' always initialises, 'no' never does, 'auto' does when the environment
  shows several hosts.
  """
  mode = config.distributed.initialize
  if mode not in ("auto", "yes", "no"):
    raise errors.UserError(
        f"config.distributed.initialize: {mode!r} is not one of "
        "'auto', 'yes', 'no'")
  return mode == "yes" or (mode == "auto" and _environment_is_multi_host())


def initialize(config: ml_collections.ConfigDict) -> None:
  """Starts multi-host JAX when `distributed_wanted`, then logs the devices.

  Explicit coordinator/num_processes/process_id fields are passed through;
  empty ones are left to JAX's auto-detection (TPU pods, SLURM, Open MPI).
  """
  dist = config.distributed
  if distributed_wanted(config):
    kwargs = {}
    if dist.coordinator_address:
      kwargs["coordinator_address"] = dist.coordinator_address
    if dist.num_processes > 0:
      kwargs["num_processes"] = dist.num_processes
    if dist.process_id >= 0:
      kwargs["process_id"] = dist.process_id
    jax.distributed.initialize(**kwargs)
  logging.info("JAX %s: process %d of %d, %d local / %d global devices (%s)",
               jax.__version__, jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count(),
               ", ".join(sorted({d.device_kind for d in jax.devices()})))
