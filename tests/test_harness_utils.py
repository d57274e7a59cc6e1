"""Atomic writes, progress lines, distributed start-up switches."""
import os

import ml_collections
import numpy as np
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import runtime


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
  path = str(tmp_path / "x.npy")
  fileio.write_npy(path, np.arange(3))
  with pytest.raises(ValueError):
    with fileio.atomic_path(path) as tmp:
      np.save(open(tmp, "wb"), np.zeros(5))
      raise ValueError("interrupted")
  np.testing.assert_array_equal(np.load(path), np.arange(3))
  assert os.listdir(tmp_path) == ["x.npy"]


def test_atomic_folder_replaces_whole(tmp_path):
  path = str(tmp_path / "out")
  for names in (["a", "b"], ["c"]):
    with fileio.atomic_path(path) as tmp:
      os.makedirs(tmp)
      for n in names:
        open(os.path.join(tmp, n), "w").close()
  assert sorted(os.listdir(path)) == ["c"]


def test_progress_rate_and_eta_from_a_fake_clock():
  now = [100.0]
  progress = monitoring.Progress(total=110, desc="train", every_s=0,
                                 clock=lambda: now[0])
  progress.update(10)  # Rate is measured from here (compilation excluded).
  now[0] += 20.0
  progress.update(50)  # 40 units in 20 s: 2/s, 60 left: 30 s.
  assert progress.line() == "train: 50/110 (45.5%) 2/s, ETA 0:00:30"


def test_metrics_jsonl(tmp_path):
  writer = monitoring.MetricsWriter(str(tmp_path), "train", tensorboard=False)
  writer.write_scalars(3, {"loss": np.float32(0.25)})
  writer.write_scalars(4, {"loss": 0.125})
  writer.close()
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 2 and '"loss": 0.125' in lines[1] and '"step": 4' in lines[1]


def dist_config(mode):
  c = ml_collections.ConfigDict()
  c.distributed = ml_collections.ConfigDict(dict(
      initialize=mode, coordinator_address="", num_processes=0, process_id=-1))
  return c


def test_distributed_switch(monkeypatch):
  calls = []
  monkeypatch.setattr(runtime.jax.distributed, "initialize",
                      lambda **kw: calls.append(kw))
  for var in ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS", "SLURM_NTASKS",
              "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(var, raising=False)
  runtime.initialize(dist_config("auto"))
  runtime.initialize(dist_config("no"))
  assert calls == []
  monkeypatch.setenv("SLURM_NTASKS", "4")
  runtime.initialize(dist_config("auto"))
  runtime.initialize(dist_config("yes"))
  assert calls == [{}, {}]
  monkeypatch.setenv("SLURM_NTASKS", "4")
  with pytest.raises(errors.UserError, match="config.distributed.initialize"):
    runtime.initialize(dist_config("sometimes"))
