"""The `train` stage end to end on the planted disc generator (subprocesses).

Runs share one persistent compilation cache, so only the first compiles.
The generator loader is replaced by the disc generator of
test_train_fixtures; TensorBoard is off (clu hidden) so no tensorflow import.
"""
import json
import os

import jax
import numpy as np
import pytest

from gansseg_jax.infra import sharding
from gansseg_jax.train import load
import test_train_fixtures as f

# Subprocesses that compile and run JAX stages: minutes on a loaded 2-core CPU.
pytestmark = pytest.mark.slow

PRELUDE = """
import os, signal, sys
sys.modules["clu"] = None  # metrics.jsonl only: no tensorflow import.
import numpy as np
import test_train_fixtures as f
from gansseg_jax.infra import monitoring
from gansseg_jax.convert import load as convert_load
from gansseg_jax.infra import checkpointing
from gansseg_jax.train import segmentation, stage
config = f.tiny_config()
params = dict(f.DISC_PARAMS)
convert_load.load_generator = lambda config, workdir: (f.disc_generate, params)
"""


def _unet_tree(workdir):
  """The final U-Net params + BatchNorm statistics in W/unet, as numpy."""
  _, tree = load.restore_unet(f.tiny_config(), workdir, sharding.data_mesh())
  return jax.tree.map(np.asarray, tree)


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as fh:
    return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def xla_cache_dir(tmp_path_factory):
  return f.shared_cache_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, xla_cache_dir):
  """An uninterrupted 48-step run of stage.run in a fresh workdir."""
  workdir = str(tmp_path_factory.mktemp("trained"))
  f.write_inputs(workdir)
  result = f.run_python(PRELUDE + f"stage.run(config, {workdir!r})",
                        f.python_env(xla_cache_dir))
  assert result.returncode == 0, result.stdout + result.stderr
  return workdir


def test_training_lowers_the_holdout_loss(trained):
  records = _metrics(trained)
  holdout = {r["step"]: r for r in records if "holdout/loss" in r}
  assert sorted(holdout) == [0, 12, 24, 36, 48]
  assert holdout[48]["holdout/loss"] < holdout[0]["holdout/loss"] - 0.05
  assert holdout[48]["holdout/iou"] > holdout[0]["holdout/iou"]
  # Filters drop the big discs; the rounds fill the hold-out batches anyway.
  assert holdout[0]["holdout/samples"] == 24
  train = [r for r in records if "loss" in r]
  assert [r["step"] for r in train] == [12, 24, 36, 48]
  assert train[-1]["learning_rate"] == pytest.approx(2e-4)  # x0.2 at 40.
  assert train[0]["learning_rate"] == pytest.approx(1e-3)
  for r in train:  # Full batches; rounds of 4 chunks x 3 candidates.
    assert r["synth/unfilled"] == 0 and r["synth/filled_fraction"] == 1
    assert 4 * 3 <= r["synth/generated"] <= 4 * 3 * r["synth/rounds"]
  assert f.step_dirs(os.path.join(trained, "checkpoints", "train")) == [
      "36", "48"]


def test_predictor_finds_the_discs(trained):
  predict = load.load_predictor(f.tiny_config(), trained)
  z = jax.random.normal(jax.random.key(7), (5, f.Z_DIM))
  images = np.asarray(f.disc_generate(f.DISC_PARAMS, z))
  shifted = np.asarray(
      f.disc_generate(f.DISC_PARAMS, z + 5 * f.background_direction()))
  gray = lambda x: x @ np.array([0.2989, 0.5870, 0.1140], np.float32)
  truth = gray(shifted) > gray(images)
  probs = np.asarray(predict(images))
  assert probs.shape == (5, 32, 32) and probs.dtype == np.float32
  assert 0 <= probs.min() and probs.max() <= 1
  assert probs[truth].mean() > probs[~truth].mean() + 0.05
  # Any size (odd sides pad inside the U-Net), same answer per image.
  odd = np.asarray(predict(images[:3, :27, :30]))
  assert odd.shape == (3, 27, 30)
  np.testing.assert_allclose(np.asarray(predict(images[:2])), probs[:2],
                             atol=1e-6)


def test_predictor_loads_from_a_relative_workdir(trained, monkeypatch):
  # orbax takes only absolute paths; a library caller may pass a relative one.
  z = jax.random.normal(jax.random.key(8), (2, f.Z_DIM))
  images = np.asarray(f.disc_generate(f.DISC_PARAMS, z))
  absolute = np.asarray(load.load_predictor(f.tiny_config(), trained)(images))
  monkeypatch.chdir(os.path.dirname(trained))
  relative = load.load_predictor(f.tiny_config(), os.path.basename(trained))
  np.testing.assert_array_equal(np.asarray(relative(images)), absolute)


def test_sigterm_then_sigkill_resume_gives_the_uninterrupted_params(
    trained, tmp_path, xla_cache_dir):
  workdir = str(tmp_path)
  f.write_inputs(workdir)
  interrupt = PRELUDE + f"""
original_update = monitoring.Progress.update
def update(self, done):
  original_update(self, done)
  if done == 15:
    os.kill(os.getpid(), signal.SIGTERM)
monitoring.Progress.update = update
try:
  stage.run(config, {workdir!r})
except checkpointing.Preempted as e:
  print("PREEMPTED:", e, flush=True)
monitoring.Progress.update = original_update
print("AFTER SIGTERM:", f.step_dirs({workdir!r} + "/checkpoints/train"),
      flush=True)
original_save = checkpointing.StepCheckpoints.save
def save(self, step, state, force=False):
  original_save(self, step, state, force)
  if step == 36:  # The async save has started, not necessarily finished.
    os.kill(os.getpid(), signal.SIGKILL)
checkpointing.StepCheckpoints.save = save
stage.run(config, {workdir!r})
"""
  env = f.python_env(xla_cache_dir)
  result = f.run_python(interrupt, env)
  assert result.returncode == -9, result.stdout + result.stderr
  assert "PREEMPTED: train: stopped by SIGTERM after step 15" in result.stdout
  assert "AFTER SIGTERM: ['12', '15']" in result.stdout
  assert not os.path.exists(os.path.join(workdir, "unet"))
  result = f.run_python(PRELUDE + f"stage.run(config, {workdir!r})", env)
  assert result.returncode == 0, result.stdout + result.stderr
  resumed, reference = _unet_tree(workdir), _unet_tree(trained)
  for got, want in zip(jax.tree.leaves(resumed), jax.tree.leaves(reference)):
    np.testing.assert_array_equal(got, want)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_state(
    tmp_path, xla_cache_dir):
  workdir = str(tmp_path)
  f.write_inputs(workdir)
  script = PRELUDE + f"""
params["nan_below"] = np.float32(2.0)  # G(z) NaN, G(z + h) fine: NaN loss.
try:
  stage.run(config, {workdir!r})
except segmentation.NonFiniteLossError as e:
  print("ERROR:", e)
"""
  result = f.run_python(script, f.python_env(xla_cache_dir))
  assert result.returncode == 0, result.stdout + result.stderr
  assert ("ERROR: train: the loss, gradients or new params are NaN or inf at "
          "step 1 (not applied);") in result.stdout
  ckpt = os.path.join(workdir, "checkpoints", "train")
  assert f.step_dirs(ckpt) == ["0"]
  assert not os.path.exists(os.path.join(workdir, "unet"))
