"""Process start-up: log filtering, multi-host initialisation, device log.

Third-party INFO lines (orbax's checkpoint chatter, JAX's backend probing,
TensorFlow's C++ start-up notes) are dropped by default; warnings and errors
of Python code always pass. `config.log.third_party_info=True` shows
everything again.
"""
import contextlib
import logging as std_logging
import os
import sys

from absl import logging
import jax
import ml_collections

from gansseg_jax.infra import errors

# Environment variables that say this process is one of several hosts.
_MULTI_HOST_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")


# Our own log lines come from files under this folder.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class OwnInfoOnly(std_logging.Filter):
  """Passes WARNING and above from anyone, INFO and below only from this package."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return (record.levelno >= std_logging.WARNING
            or os.path.abspath(record.pathname).startswith(_PACKAGE_DIR))


_QUIET = {"native": False}  # Set by configure_logging.


@contextlib.contextmanager
def native_stderr_quiet():
  """Sends file descriptor 2 to /dev/null inside the block, when third-party
  INFO is off.

  For TensorFlow's import and first use (clu's TensorBoard writer): TF 2.21
  prints its C++ start-up notes (oneDNN, "no CUDA driver", cuInit) before its
  logging is initialised, ignoring TF_CPP_MIN_LOG_LEVEL. Python exceptions
  still propagate and are printed after the block.
  """
  if not _QUIET["native"]:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def configure_logging(config: ml_collections.ConfigDict) -> None:
  """Quiets third-party INFO unless `config.log.third_party_info` (see module doc).

  The filter sits on absl's handler, which every Python logger (absl's, orbax's,
  JAX's) reaches; TensorFlow's C++ log level is set before TF is imported (it
  is imported lazily, by the stages that need it). Idempotent.
  """
  log = config.get("log") or {}
  handler = logging.get_absl_handler()
  ours = [f for f in handler.filters if isinstance(f, OwnInfoOnly)]
  _QUIET["native"] = not log.get("third_party_info", False)
  if not _QUIET["native"]:
    for f in ours:
      handler.removeFilter(f)
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  if not ours:
    handler.addFilter(OwnInfoOnly())


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
  """Filters the logs, starts multi-host JAX when `distributed_wanted`, then
  logs the devices.

  Explicit coordinator/num_processes/process_id fields are passed through;
  empty ones are left to JAX's auto-detection (TPU pods, SLURM, Open MPI).
  """
  configure_logging(config)
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
