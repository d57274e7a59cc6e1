"""train/gan.py on a tiny config: finite losses, exact resume, export + load."""
import importlib.util
import json
import os

import flax.nnx as nnx
import jax
import numpy as np
import pytest

from gansseg_jax.models import demo_gan
from gansseg_jax.train import gan

_CONFIG_PATH = os.path.join(os.path.dirname(__file__), "..", "configs",
                            "demo_gan.py")


def _tiny_config(steps):
  spec = importlib.util.spec_from_file_location("demo_gan_config", _CONFIG_PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("tiny")
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
