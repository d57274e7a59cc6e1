"""machine.describe: the one-line machine description of logs and benchmarks."""
import os

import pytest

from gansseg_jax.infra import machine


def test_cores_are_the_affinity_mask_not_the_host_count(monkeypatch):
  if not hasattr(os, "sched_getaffinity"):
    pytest.skip("no affinity masks on this OS")
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
  monkeypatch.setattr(os, "cpu_count", lambda: 64)
  assert machine.usable_cores() == 1
  assert machine.describe() == f"{machine.cpu_model()}, 1 CPU cores"


def test_cpu_model_falls_back_when_cpuinfo_is_unreadable(monkeypatch):
  def unreadable(*args, **kwargs):
    raise OSError("no /proc here")
  monkeypatch.setattr("builtins.open", unreadable)
  monkeypatch.setattr(machine.platform, "processor", lambda: "")
  monkeypatch.setattr(machine.platform, "machine", lambda: "riscv64")
  assert machine.cpu_model() == "riscv64"
