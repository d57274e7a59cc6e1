"""Every stage, end to end, through the command line on configs/test.py."""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

# Subprocesses that compile and run JAX stages: minutes on a loaded 2-core CPU.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUTS = ("generator", "directions.npy", "ranking.csv", "bg_direction.npy",
           "synthetic/index.csv", "unet", "eval.json", "eval",
           "report.html", "report.md", "config.json", "metrics.jsonl")


def main(workdir, *overrides):
  return subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={ROOT}/configs/test.py", f"--workdir={workdir}", *overrides],
      capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("run") / "w"
  proc = main(workdir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def test_every_stage_writes_its_outputs(finished):
  for path in OUTPUTS:
    assert (finished / path).exists(), path
  markers = sorted(os.listdir(finished / "stages"))
  assert markers == sorted(f"{s}.json" for s in (
      "convert", "discover", "score", "synth", "train", "eval", "report"))
  scores = json.loads((finished / "eval.json").read_text())["datasets"]
  result = scores["scenes:5:8:32"]
  assert result["images"] == 8 and 0.0 <= result["IoU"] <= 1.0
  direction = np.load(finished / "bg_direction.npy")
  assert direction.shape == (120,)
  np.testing.assert_allclose(np.linalg.norm(direction), 1.0, rtol=1e-5)


def test_second_run_skips_everything_and_changes_nothing(finished):
  before = {p: os.path.getmtime(finished / p) for p in OUTPUTS}
  proc = main(finished)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stderr.count("outputs exist for this config, skipped") == 7
  assert {p: os.path.getmtime(finished / p) for p in OUTPUTS} == before


def test_changed_training_config_is_refused(finished):
  before = (finished / "config.json").read_text()
  proc = main(finished, "--config.train.steps=7")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == (
      f"error: {finished}/stages/train.json: stage 'train' was run with a "
      "different "
      "config (train.steps: 6 -> 7); use a new --workdir or --config.force=True")
  assert (finished / "config.json").read_text() == before


def test_segment_a_folder_with_the_trained_unet(finished, tmp_path):
  photos = tmp_path / "photos"
  photos.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (40, 30, 3), np.uint8)).save(photos / "a.png")
  Image.fromarray(rng.integers(0, 255, (25, 33), np.uint8)).save(photos / "b.jpg")
  proc = main(finished, "--config.stages=segment",
              f"--config.segment.input_dir={photos}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = finished / "segment"
  mask = np.asarray(Image.open(out / "b_mask.png"))
  assert mask.shape == (25, 33)
  assert (out / "a_cutout.png").exists() and (out / "a.json").exists()


def test_forced_training_starts_from_scratch(finished, tmp_path):
  """--config.force=True with a new learning rate trains every step anew."""
  import shutil
  workdir = tmp_path / "w"
  shutil.copytree(finished, workdir)
  proc = main(workdir, "--config.force=True", "--config.stages=train",
              "--config.train.learning_rate=0.5")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "stage train: forced: starting from scratch" in proc.stderr
  assert "resuming from checkpoint" not in proc.stderr
  lines = [json.loads(l) for l in
           (workdir / "metrics.jsonl").read_text().splitlines()]
  forced = [l for l in lines if l["stage"] == "train" and "learning_rate" in l]
  # Steps 2, 4 (lr 0.5) and 6 (after the decay at step 4: 0.5 x 0.2), as
  # the first run logged 0.001, 0.001, 0.0002: its rows are replaced.
  assert [(l["step"], round(l["learning_rate"], 6)) for l in forced] == [
      (2, 0.5), (4, 0.5), (6, 0.1)]
  marker = json.loads((workdir / "stages" / "train.json").read_text())
  assert marker["config"]["train"]["learning_rate"] == 0.5
  assert not (workdir / "checkpoints" / "train.replaced").exists()
