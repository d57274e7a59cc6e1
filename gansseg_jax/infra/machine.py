"""What this process runs on, in one line, for logs, benchmark JSON and exports.

One description everywhere: on CPU the processor model and the cores this
process may use (`os.sched_getaffinity`, so a `taskset` pin counts, not the
host's total); on accelerators the device count and kind.
"""
import os
import platform

import jax


def cpu_model() -> str:
  """The processor model from /proc/cpuinfo, else what `platform` knows."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def usable_cores() -> int:
  """Cores this process may run on (its affinity mask where the OS has one)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def describe() -> str:
  """'<cpu model>, N CPU cores' on CPU; 'K x <device kind>' on accelerators."""
  device = jax.devices()[0]
  if device.platform == "cpu":
    return f"{cpu_model()}, {usable_cores()} CPU cores"
  return f"{jax.device_count()} x {device.device_kind}"
