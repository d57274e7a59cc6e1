"""A later run in a workdir keeps the settings an earlier run set by hand
(gansseg_jax/run/recorded_config.py), through `python -m gansseg_jax.main`.

The runs use stage `discover` with candidates from a file: it computes
nothing, so each run takes the time of its checks. Each is its own process
(cli_runs.run_many cannot parse a config override twice after a run that
got past parsing).
"""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

import cli_runs
from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.run import recorded_config
from gansseg_jax.run import stages
from gansseg_jax.infra import workdir as wd

REPO_DIR = cli_runs.REPO_DIR


def run(argv, cwd):
  """(exit status, stderr) of `python -m gansseg_jax.main *argv`."""
  env = dict(os.environ, PYTHONPATH=REPO_DIR)
  proc = subprocess.run([sys.executable, "-m", "gansseg_jax.main", *argv],
                        capture_output=True, text=True, cwd=cwd, env=env,
                        timeout=300)
  return proc.returncode, proc.stderr


def test_a_later_run_uses_the_settings_an_earlier_run_set(tmp_path):
  first, second = tmp_path / "a.npy", tmp_path / "b.npy"
  np.save(first, np.eye(3, 120, dtype=np.float32))
  np.save(second, np.eye(2, 120, dtype=np.float32))
  work = str(tmp_path / "w")
  config = os.path.join(REPO_DIR, "configs", "test.py")
  base = [f"--config={config}", f"--workdir={work}",
          "--config.stages=discover"]
  status, _ = run(base + ["--config.directions.source=file",
                          f"--config.directions.file={first}"], str(tmp_path))
  assert status == 0
  # Given again with another value: refused, both values named.
  refused, error = run(base + [f"--config.directions.file={second}"],
                       str(tmp_path))
  # Nothing given: the recorded source and file, the stage is done.
  again, log = run(base, str(tmp_path))
  assert refused == 2
  lines = [l for l in error.splitlines() if l.startswith("error:")]
  assert len(lines) == 1
  assert (f"(directions.file: {str(first)!r} -> {str(second)!r})"
          in lines[0]), lines[0]
  assert again == 0, log
  assert ("config: directions.source = 'file', as an earlier run in this "
          "workdir set it") in log
  assert "stage discover: outputs exist for this config, skipped" in log
  assert np.load(os.path.join(work, "directions.npy")).shape == (3, 120)
  with open(os.path.join(work, "config_source.json")) as f:
    assert json.load(f) == {
        "config_file": config,
        "fields": ["directions.source", "directions.file"]}


def test_another_config_file_starts_afresh(tmp_path):
  """Nothing is adopted for another config file (the same content
  elsewhere), nor for fields given again or per-run ones."""
  work = str(tmp_path)
  config = default.get_config()
  config.directions.source = "file"
  config.stages = "discover"
  wd.write_config(work, wd.config_to_dict(config))
  recorded_config.record(work, "configs/x.py",
                         ["directions.source", "stages", "log.score_chunks"],
                         wd.config_to_dict(config))
  fresh = default.get_config()
  assert recorded_config.adopt(fresh, work, "elsewhere/x.py", []) == []
  assert recorded_config.adopt(fresh, work, "configs/x.py",
                               ["directions.source"]) == []
  assert fresh.directions.source == "discover"
  assert recorded_config.adopt(fresh, work, "configs/x.py", []) == [
      "directions.source = 'file'"]
  assert fresh.directions.source == "file" and fresh.stages != "discover"


def test_segment_runs_again_on_other_inputs(tmp_path):
  """A finished `segment` with other input files re-runs on the new ones
  (it was refused: 'was run with a different config')."""
  rng = np.random.default_rng(0)
  folders = []
  for name in ("a", "b"):
    folder = tmp_path / name
    os.makedirs(folder)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), np.uint8)).save(
        folder / f"photo_{name}.png")
    folders.append(str(folder))
  config = default.get_config()
  config.stages = "segment"
  config.eval.predictor = "centre_prior"
  config.eval.baseline_workers = 1
  work = str(tmp_path / "w")
  for folder, name in zip(folders, ("a", "b")):
    config.segment.input_dir = folder
    stages.run(config, work)
    assert os.path.isfile(os.path.join(work, "segment", f"photo_{name}.json"))
  assert not os.path.exists(os.path.join(work, "segment", "photo_a.json"))
  config.segment.threshold = 0.25  # Not a choice of files: refused.
  with pytest.raises(errors.UserError,
                     match=r"\(segment\.threshold: 0\.5 -> 0\.25\)"):
    stages.run(config, work)
