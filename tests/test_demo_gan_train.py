"""train/gan.py on a tiny config: the update schedule, finite losses, exact resume, export + load."""
import json
import os
import signal
import subprocess
import sys

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.infra import machine
from gansseg_jax.data import scenes
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import config_files
from gansseg_jax.models import demo_gan
from gansseg_jax.train import gan

_CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "configs",
                            "demo_gan.py")


def _tiny_config(steps):
  config = config_files.load_checkout("demo_gan", "tiny")
  config.train.steps = steps
  return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Run A: 3 steps, then resumed to 6. Run B: 6 steps in one go."""
  root = tmp_path_factory.mktemp("gan")
  a, b = str(root / "a"), str(root / "b")
  first = gan.train(_tiny_config(3), a)
  resumed = gan.train(_tiny_config(6), a)
  straight = gan.train(_tiny_config(6), b)
  return {"a": a, "first": first, "resumed": resumed, "straight": straight,
          "initial": gan.Networks(_tiny_config(6)).initial_state}


def test_losses_are_logged_and_finite(runs):
  with open(os.path.join(runs["a"], "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  steps = [r["step"] for r in records if r["stage"] == gan.STAGE]
  assert steps == [2, 3, 4, 6]
  for r in records:
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
      assert np.isfinite(r[key])
  assert os.path.isfile(os.path.join(runs["a"], "samples", "step_000006.png"))


def test_training_changes_generator_discriminator_and_ema(runs):
  for part in ("g", "g_ema", "d"):
    before = jax.tree.leaves(runs["initial"][part])
    after = jax.tree.leaves(runs["first"][part])
    assert any(not np.allclose(x, y) for x, y in zip(before, after)), part
  assert int(runs["first"]["step"]) == 3


def test_resumed_run_equals_an_uninterrupted_one(runs):
  assert int(runs["resumed"]["step"]) == 6
  for part in ("g", "g_ema", "d", "d_stats"):
    for x, y in zip(jax.tree.leaves(runs["resumed"][part]),
                    jax.tree.leaves(runs["straight"][part])):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5,
                                 atol=1e-6)


def test_sigterm_saves_the_step_and_exits_143_then_resumes_exactly(
    runs, tmp_path, monkeypatch):
  workdir = str(tmp_path / "stopped")
  original_update = gan.monitoring.Progress.update

  def update(self, done):
    original_update(self, done)
    if done == 2:
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(gan.monitoring.Progress, "update", update)
  with pytest.raises(checkpointing.Preempted) as stop:
    gan.train(_tiny_config(6), workdir)
  assert stop.value.code == 143
  assert "stopped by SIGTERM after step 2" in str(stop.value)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2"]
  monkeypatch.setattr(gan.monitoring.Progress, "update", original_update)
  resumed = gan.train(_tiny_config(6), workdir)
  for part in ("g", "g_ema", "d", "d_stats"):
    for x, y in zip(jax.tree.leaves(resumed[part]),
                    jax.tree.leaves(runs["straight"][part])):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5,
                                 atol=1e-6)


def test_export_then_load_builtin_gives_the_ema_generator(runs, tmp_path):
  config = _tiny_config(6)
  out = str(tmp_path / "export")
  info = gan.export_generator(config, runs["a"], out, "python -m x")
  assert info["steps"] == 6 and info["command"] == "python -m x"
  assert sorted(os.listdir(out)) == ["README.md", "info.json", "params.npz",
                                     "samples.png"]
  generate, params, loaded_info = demo_gan.load_builtin(out)
  assert loaded_info["model"] == gan.model_config(config)
  z = jax.random.normal(jax.random.key(0), (2, config.model.z_dim))
  images = np.asarray(jax.jit(generate)(params, z))
  # The EMA weights with their standing statistics, which pure inference uses.
  nets = gan.Networks(config)
  ema = runs["resumed"]["g_ema"]
  standing = nets.standing_statistics(ema, config)
  expected = np.asarray(
      nnx.merge(nets.g_graph, ema, standing)(z, batch_stats=False))
  np.testing.assert_allclose(images, expected, atol=1e-5)


def test_export_reports_the_machine_that_trained_not_the_exporting_one(
    runs, tmp_path, monkeypatch):
  with open(os.path.join(runs["a"], gan.MACHINE_FILE)) as f:
    recorded = f.read().strip()
  assert recorded == machine.describe()
  # An --export_only run on another machine still reports the training one.
  monkeypatch.setattr(machine, "describe", lambda: "1 CPU cores (elsewhere)")
  info = gan.export_generator(_tiny_config(6), runs["a"],
                              str(tmp_path / "export"), "python -m x")
  assert info["machine"] == recorded
  with open(os.path.join(tmp_path, "export", "README.md")) as f:
    assert f"wall time on {recorded}," in f.read()


def test_real_batches_are_consecutive_slices_of_the_scene_stream():
  config = _tiny_config(1)
  b, r = config.train.batch_size, config.model.resolution
  expected = scenes.render_scenes(config.data_seed, b, r, start=3 * b).images
  np.testing.assert_allclose(np.asarray(gan.real_images(config, jnp.int32(3))),
                             expected, atol=1e-5)


def test_a_step_makes_d_steps_discriminator_updates_then_one_of_g():
  config = _tiny_config(1)
  config.train.d_steps = 2
  nets = gan.Networks(config)
  state = nets.initial_state
  b, z_dim = config.train.batch_size, config.model.z_dim
  keys = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 0), 3)
  d, d_stats, d_opt = state["d"], state["d_stats"], state["d_opt"]
  for k in range(2):  # The documented schedule, one update at a time.
    real = gan.real_images(config, jnp.int32(k))
    fake = nets.generate(state["g"], jax.random.normal(keys[k], (b, z_dim)))

    def d_loss(params, d_stats=d_stats, real=real, fake=fake):
      real_logits, stats = nets.discriminate(params, d_stats, real, True)
      fake_logits, _ = nets.discriminate(params, stats, fake, False)
      return gan.hinge_d_loss(real_logits, fake_logits), stats

    grads, d_stats = jax.grad(d_loss, has_aux=True)(d)
    updates, d_opt = nets.d_tx.update(grads, d_opt, d)
    d = optax.apply_updates(d, updates)

  def g_loss(params):
    images = nets.generate(params, jax.random.normal(keys[2], (b, z_dim)))
    return -jnp.mean(nets.discriminate(d, d_stats, images, False)[0])

  updates, _ = nets.g_tx.update(jax.grad(g_loss)(state["g"]), state["g_opt"],
                                state["g"])
  g = optax.apply_updates(state["g"], updates)
  stepped, _ = gan.make_train_step(config, nets)(state)
  for name, expected in (("d", d), ("d_stats", d_stats), ("g", g)):
    for x, y in zip(jax.tree.leaves(stepped[name]), jax.tree.leaves(expected)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4,
                                 atol=1e-6, err_msg=name)


def test_d_steps_below_one_is_refused():
  config = _tiny_config(1)
  config.train.d_steps = 0
  with pytest.raises(errors.UserError, match="config.train.d_steps"):
    gan.make_train_step(config, gan.Networks(config))


def test_command_line_reports_a_bad_field_in_one_line_and_writes_nothing(
    tmp_path):
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.train.gan",
       f"--config={_CONFIG_PATH}:tiny", "--config.train.d_steps=0",
       f"--workdir={workdir}"],
      capture_output=True, text=True, check=False,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      "error: config.train.d_steps: 0 is not >= 1")
  assert not workdir.exists()
