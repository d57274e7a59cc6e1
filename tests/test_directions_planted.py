"""Planted answer: the `discover` and `score` stages on an analytic generator.

The generator (a few lines of jnp, 16 px) draws a disc over a colourful
texture; each semantic coordinate s_i has one job:
  LIGHT    lightens the disc and darkens the background (the planted answer),
  BRIGHT   brightens the whole image,
  POS_X, POS_Y, RADIUS move and resize the disc, HUE recolours it,
  TEXTURE  shifts the texture's phase, NOTHING does nothing.
The texture makes disc and background colours overlap, so no single affine
colour map explains LIGHT (as in real images). The semantic coordinates are
s = pool(P z), P = the rows of an orthogonal `rotation` repeated a distinct
number of times: SeFa's W^T W has eigenvectors rotation[i] (eigenvalue =
repeats), so SeFa must undo the rotation to find LIGHT.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import default
from gansseg_jax.infra import monitoring
from gansseg_jax.directions import discover as discover_lib
from gansseg_jax.directions import score as score_lib
from gansseg_jax.directions import stage
from gansseg_jax.generator_interface import latent

SIZE = 16
Z_DIM = 8
LIGHT, BRIGHT, POS_X, POS_Y, RADIUS, HUE, TEXTURE, NOTHING = range(Z_DIM)
# Output units per coordinate = SeFa's eigenvalues.
REPEATS = (8, 7, 6, 5, 4, 3, 2, 1)


OWNER = np.concatenate([np.full(n, i) for i, n in enumerate(REPEATS)])
# Averages the output units of each coordinate: s = (P z) @ POOL.T.
POOL = np.stack([(OWNER == i) / n for i, n in enumerate(REPEATS)]).astype(
    np.float32)


def planted_params(rotation: np.ndarray) -> dict:
  """{'projection': P [36, 8]}: row r of P is rotation[OWNER[r]]."""
  return {"projection": jnp.asarray(rotation[OWNER], jnp.float32)}


def generate(params, z):
  """z [B, 8] -> [B, 16, 16, 3] in [-1, 1] (see the module docstring)."""
  yy, xx = jnp.meshgrid(jnp.linspace(0, 1, SIZE), jnp.linspace(0, 1, SIZE),
                        indexing="ij")
  s = (z @ params["projection"].T) @ POOL.T
  coordinate = lambda i: s[:, i, None, None]
  dist = jnp.sqrt((xx - 0.5 - 0.03 * coordinate(POS_X)) ** 2
                  + (yy - 0.5 - 0.03 * coordinate(POS_Y)) ** 2)
  disc = jax.nn.sigmoid(
      (0.25 + 0.015 * coordinate(RADIUS) - dist) * 2 * SIZE)[..., None]
  phase = 0.5 * coordinate(TEXTURE)
  texture = 0.35 * jnp.stack([jnp.sin(2 * jnp.pi * (1.5 * xx + phase)),
                              jnp.sin(2 * jnp.pi * (1.5 * yy - phase)),
                              jnp.sin(2 * jnp.pi * (xx + yy + phase))], -1)
  hue = 0.05 * coordinate(HUE)[..., None] * jnp.array([1.0, 0.0, -1.0])
  light = 0.06 * coordinate(LIGHT)[..., None]
  image = (disc * (texture + jnp.array([0.2, 0.0, -0.2]) + hue + light)
           + (1 - disc) * (texture - light)
           + 0.06 * coordinate(BRIGHT)[..., None])
  return jnp.clip(image, -1.0, 1.0)


def make_config(**directions) -> ml_collections.ConfigDict:
  c = default.get_config()
  c.generator.source = "random"
  c.generator.z_dim = Z_DIM
  c.log.progress_every_s = 1000.0
  d = c.directions
  d.num_directions = Z_DIM
  d.reconstructor = "lenet"
  d.steps = 60
  d.log_every = 20
  d.checkpoint_every = 30
  d.strip_every = 30
  d.strip_shifts = 3
  d.strip_rows = 4
  d.update(directions)
  c.score.heldout_batches = 2
  c.score.strip_samples = 2
  return c


@pytest.fixture
def planted(monkeypatch):
  """Makes the planted generator (with `rotation`) the workdir's generator."""
  def install(rotation):
    params = planted_params(rotation)
    network = latent.Network(
        generate=generate, abstract_params=jax.eval_shape(lambda p: p, params),
        resolution=SIZE, direction_dim=Z_DIM,
        latent_projection=lambda p: p["projection"])
    monkeypatch.setattr(stage, "load_generator",
                        lambda config, workdir: (network, params))
  return install


def read_ranking(workdir):
  with open(os.path.join(workdir, "ranking.csv")) as f:
    header, *lines = [line.rstrip("\n").split(",") for line in f]
  return [dict(zip(header, line)) for line in lines]


def check_score_outputs(workdir, planted_light, planted_bright):
  """Rank 1 is the planted direction, oriented; BRIGHT ranks below."""
  bg = np.load(os.path.join(workdir, "bg_direction.npy"))
  assert bg.shape == (Z_DIM,)
  np.testing.assert_allclose(np.linalg.norm(bg), 1.0, rtol=1e-5)
  # Signed: the chosen direction must lighten the disc, not the background.
  assert bg @ planted_light > 0.9

  directions = np.load(os.path.join(workdir, "directions.npy"))
  units = directions / np.linalg.norm(directions, axis=1, keepdims=True)
  rows = read_ranking(workdir)
  assert sorted(int(r["index"]) for r in rows) == list(range(len(directions)))
  by_index = {int(r["index"]): r for r in rows}
  light_index = int(np.argmax(np.abs(units @ planted_light)))
  bright_index = int(np.argmax(np.abs(units @ planted_bright)))
  assert by_index[light_index]["rank"] == "1"
  bright_rank = by_index[bright_index]["rank"]
  assert bright_rank == "" or int(bright_rank) > 1

  with open(os.path.join(workdir, "ranking.md")) as f:
    assert f"Chosen: index {light_index}" in f.read()
  assert np.load(os.path.join(workdir, "bg_affine.npy")).shape == (2, 3, 4)
  strip_names = sorted(os.listdir(os.path.join(workdir, "strips")))
  assert strip_names[0] == f"rank_01_index_{light_index:03d}.png"
  ranked = sum(1 for r in rows if r["rank"])
  assert len(strip_names) == min(ranked, 10)


def test_sefa_then_score_finds_the_planted_direction(tmp_path, planted):
  rotation = np.linalg.qr(
      np.random.default_rng(3).normal(size=(Z_DIM, Z_DIM)))[0].T
  planted(rotation)
  config = make_config(source="sefa")
  stage.discover(config, str(tmp_path))
  directions = np.load(tmp_path / "directions.npy")
  # SeFa's eigenvalues are the repeat counts, in decreasing order: row i is
  # +-rotation[i].
  np.testing.assert_allclose(np.abs(np.sum(directions * rotation, axis=1)),
                             1.0, atol=1e-4)
  stage.score(config, str(tmp_path))
  check_score_outputs(str(tmp_path), rotation[LIGHT], rotation[BRIGHT])


def test_discover_then_score_finds_the_planted_direction(tmp_path, planted):
  planted(np.eye(Z_DIM))
  config = make_config(source="discover")
  stage.discover(config, str(tmp_path))
  directions = np.load(tmp_path / "directions.npy")
  assert directions.shape == (Z_DIM, Z_DIM)
  np.testing.assert_allclose(directions @ directions.T, np.eye(Z_DIM),
                             atol=1e-5)
  with open(tmp_path / "metrics.jsonl") as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records] == [20, 40, 60]
  for r in records:
    assert {"accuracy", "label_loss", "shift_loss", "loss"} <= set(r)
    np.testing.assert_allclose(
        r["loss"], r["label_loss"] + 0.25 * r["shift_loss"], rtol=1e-5)
  assert sorted(os.listdir(tmp_path / "discover_strips")) == [
      "step_0000030", "step_0000060"]
  assert sorted(os.listdir(tmp_path / "discover_strips" / "step_0000060")) == [
      "directions_000-003.png", "directions_004-007.png"]

  stage.score(config, str(tmp_path))
  eye = np.eye(Z_DIM)
  check_score_outputs(str(tmp_path), eye[LIGHT], eye[BRIGHT])


def test_ortho_deformator_stays_orthogonal_and_generator_is_untouched(
    tmp_path):
  """S ~ N(0, 1) (far from the identity); expm(S - S^T) stays orthogonal."""
  params = planted_params(np.eye(Z_DIM))
  before = jax.tree.map(np.array, params)
  runs = {}
  for steps in (1, 20):
    config = make_config(steps=steps, deformator_init_std=1.0, strip_every=0,
                         checkpoint_every=steps, log_every=steps)
    runs[steps] = discover_lib.train(config, str(tmp_path / str(steps)),
                                     generate, params, Z_DIM,
                                     jax.random.key(0))
    np.testing.assert_allclose(runs[steps] @ runs[steps].T, np.eye(Z_DIM),
                               atol=1e-5)
  assert np.abs(runs[1] - np.eye(Z_DIM)).max() > 0.5
  # Gradients reached A through G: 19 more Adam steps of lr 1e-4 moved it.
  assert np.abs(runs[20] - runs[1]).max() > 5e-4
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.array, params),
               before)


class Interrupted(Exception):
  pass


def restore_final(workdir, step):
  with ocp.CheckpointManager(
      os.path.join(workdir, "checkpoints", "discover")) as manager:
    return manager.restore(step, args=ocp.args.StandardRestore())


def test_resume_after_interruption_reproduces_the_uninterrupted_run(
    tmp_path, monkeypatch):
  params = planted_params(np.eye(Z_DIM))
  config = make_config(steps=6, checkpoint_every=2, log_every=1, strip_every=0)
  whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
  expected = discover_lib.train(config, whole, generate, params, Z_DIM,
                                jax.random.key(7))

  original_update = monitoring.Progress.update

  def update_then_crash(self, done):
    original_update(self, done)
    if done == 5:
      raise Interrupted()

  monkeypatch.setattr(monitoring.Progress, "update", update_then_crash)
  with pytest.raises(Interrupted):
    discover_lib.train(config, split, generate, params, Z_DIM,
                       jax.random.key(7))
  monkeypatch.setattr(monitoring.Progress, "update", original_update)
  assert ocp.CheckpointManager(
      os.path.join(split, "checkpoints", "discover")).latest_step() == 4
  resumed = discover_lib.train(config, split, generate, params, Z_DIM,
                               jax.random.key(7))

  np.testing.assert_array_equal(resumed, expected)
  jax.tree.map(np.testing.assert_array_equal, restore_final(split, 6),
               restore_final(whole, 6))


TWO_DEVICES = """
import sys
import jax
jax.config.update("jax_num_cpu_devices", 2)
sys.path[:0] = [{tests!r}, {root!r}]
import numpy as np
import test_directions_planted as t
assert jax.device_count() == 2
np.save({out!r}, t.data_parallel_results({workdir!r}))
"""


def data_parallel_results(workdir):
  """Directions after 4 steps and L_h, D_h of 7 candidates, as one vector."""
  params = planted_params(np.eye(Z_DIM))
  config = make_config(steps=4, strip_every=0, checkpoint_every=4,
                       log_every=2)
  directions = discover_lib.train(config, workdir, generate, params, Z_DIM,
                                  jax.random.key(0))
  scores = score_lib.score_candidates(
      generate, params, np.eye(Z_DIM, dtype=np.float32)[:7],
      jax.random.key(1), score_lib.ScoreSpec.from_config(config.score))
  return np.concatenate([directions.ravel(), scores.restoration_loss,
                         scores.separation])


@pytest.mark.slow
def test_two_devices_match_one(tmp_path):
  """Batch sharded over a 2-device 'data' mesh (7 candidates: one padded)."""
  out = tmp_path / "two.npy"
  script = TWO_DEVICES.format(
      tests=os.path.dirname(os.path.abspath(__file__)),
      root=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
      workdir=str(tmp_path / "two"), out=str(out))
  subprocess.run([sys.executable, "-c", script], check=True,
                 capture_output=True, timeout=300)
  two, one = np.load(out), data_parallel_results(str(tmp_path / "one"))
  directions = Z_DIM * Z_DIM
  np.testing.assert_allclose(two[:directions], one[:directions], atol=1e-5)
  # 200 Adam steps of a min-of-two-maps fit amplify summation-order noise.
  np.testing.assert_allclose(two[directions:], one[directions:], rtol=1e-2,
                             atol=1e-3)
