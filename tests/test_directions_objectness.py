"""Planted answer: a relighting direction outscores the object direction.

The generator (a few lines of jnp, 32 px) draws a disc over a colourful
texture; its latent coordinates:
  OBJECT   lightens the disc and darkens the background (the planted answer),
  RELIGHT  lightens the left part of the frame and darkens the right, three
           times as strongly: the two affine maps of appendix B explain it
           as well and separate it more (higher D_h),
  TEXTURE  shifts the texture's phase, NOTHING does nothing.
The paper's ordering by D_h (config.score.choose=paper) takes RELIGHT;
config.score.choose=objectness must take OBJECT, because RELIGHT's kept
masks cover much of the image border. The size filter is off so that
RELIGHT's masks (over half of the frame) are kept and measured, not
rejected.
"""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.directions import objectness
from gansseg_jax.directions import stage
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import pass_rates

SIZE = 32
OBJECT, RELIGHT, TEXTURE, NOTHING = range(4)
Z_DIM = 4


def generate(params, z):
  """z [B, 4] -> [B, 32, 32, 3] in [-1, 1] (see the module docstring)."""
  del params
  yy, xx = jnp.meshgrid(jnp.linspace(0, 1, SIZE), jnp.linspace(0, 1, SIZE),
                        indexing="ij")
  s = lambda i: z[:, i, None, None, None]
  dist = jnp.sqrt((xx - 0.5) ** 2 + (yy - 0.5) ** 2)[..., None]
  disc = jax.nn.sigmoid((0.22 - dist) * 2 * SIZE)
  left = jax.nn.sigmoid((0.6 - xx) * 2 * SIZE)[..., None]
  phase = 0.5 * s(TEXTURE)
  texture = 0.3 * jnp.stack([jnp.sin(2 * jnp.pi * (1.5 * xx + phase[..., 0])),
                             jnp.sin(2 * jnp.pi * (1.5 * yy - phase[..., 0])),
                             jnp.sin(2 * jnp.pi * (xx + yy + phase[..., 0]))],
                            -1)
  image = (texture + disc * jnp.array([0.2, 0.0, -0.2])
           + 0.05 * s(OBJECT) * (2 * disc - 1)
           + 0.15 * s(RELIGHT) * (2 * left - 1))
  return jnp.clip(image, -1.0, 1.0)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
  """A workdir whose candidates are the 4 coordinates, and the generator."""
  network = latent.Network(
      generate=generate, abstract_params={}, resolution=SIZE,
      direction_dim=Z_DIM)
  monkeypatch.setattr(stage, "load_generator", lambda config, workdir: (
      network, {}))
  np.save(tmp_path / "directions.npy", np.eye(Z_DIM, dtype=np.float32))
  return tmp_path


def make_config(choose):
  c = default.get_config()
  c.generator.source = "random"
  c.generator.z_dim = Z_DIM
  c.log.progress_every_s = 1000.0
  c.score.steps = 100
  c.score.heldout_batches = 2
  c.score.strip_samples = 1
  c.score.order_by = "separation"
  c.score.objectness_samples = 32
  c.score.choose = choose
  c.synth.size_filter = False
  c.synth.pass_rate_samples = 32
  return c


def read_ranking(workdir):
  with open(os.path.join(workdir, "ranking.csv")) as f:
    header, *lines = [line.rstrip("\n").split(",") for line in f]
  return {int(row[1]): dict(zip(header, row)) for row in lines}


def chosen_axis(workdir):
  bg = np.load(os.path.join(workdir, "bg_direction.npy"))
  return int(np.argmax(np.abs(bg))), bg


def test_objectness_chooses_the_object_over_a_stronger_relighting(workdir):
  config = make_config("objectness")
  stage.score(config, str(workdir))
  rows = read_ranking(workdir)
  # The planted trap: RELIGHT separates more and ranks first.
  assert float(rows[RELIGHT]["D_h"]) > float(rows[OBJECT]["D_h"])
  assert rows[RELIGHT]["rank"] == "1"
  # Its kept masks cover most of the border; OBJECT's (the disc) none of it.
  assert float(rows[RELIGHT]["kept_border"]) > 0.4
  assert rows[RELIGHT]["object_like"] == "no"
  assert float(rows[OBJECT]["kept_border"]) < 0.05
  # The disc (radius 0.22) covers pi 0.22^2 / 0.25 = 61% of the centre.
  assert float(rows[OBJECT]["kept_centre"]) > 0.5
  assert rows[OBJECT]["object_like"] == "yes"
  axis, bg = chosen_axis(workdir)
  assert axis == OBJECT and bg[OBJECT] > 0.99  # Oriented: the disc lightens.
  with open(workdir / "ranking.md") as f:
    text = f.read()
  assert f"Chosen: index {OBJECT} (the best-ranked object-like" in text
  assert "Warning" not in text


def test_paper_choice_takes_rank_one_and_warns(workdir, caplog):
  config = make_config("paper")
  with caplog.at_level("WARNING"):
    stage.score(config, str(workdir))
  axis, _ = chosen_axis(workdir)
  assert axis == RELIGHT
  with open(workdir / "ranking.md") as f:
    text = f.read()
  assert text.split("\n")[2].startswith(
      f"**Warning:** the chosen direction (index {RELIGHT}) may not segment "
      "objects")
  assert "may not segment objects" in caplog.text
  # The strips of the shortlist are there to pick another by hand, their
  # 32 px tiles enlarged x4 to be read: 1 latent, 5 shifts + 2 masks.
  strip = workdir / "strips" / f"rank_02_index_{OBJECT:03d}.png"
  with Image.open(strip) as image:
    assert image.size == (7 * 4 * SIZE + 6 * 2, 4 * SIZE)


def test_object_like_and_choose_by_hand():
  placement = objectness.Placement(
      kept=np.array([0.3, 0.2, 0.0, 0.5, np.nan]),
      border=np.array([0.40, 0.10, 0.0, 0.25, np.nan]),
      centre=np.array([0.47, 0.80, 0.0, 0.30, np.nan]))
  likes = objectness.object_like(placement, objectness.Rule(
      max_border=0.3, min_centre_ratio=1.5))
  # 0: too much border; 2: nothing kept; 3: centre < 1.5 x border; 4: unmeasured.
  np.testing.assert_array_equal(likes, [False, True, False, False, False])
  # A floor on the centre share: 1 (c 0.80) passes at 0.8, not above it.
  for floor, expected in ((0.8, True), (0.81, False)):
    floored = objectness.object_like(placement, objectness.Rule(
        max_border=0.3, min_centre_ratio=1.5, min_centre=floor))
    np.testing.assert_array_equal(floored, [False, expected, False, False,
                                            False])
  ranks = np.array([1, 3, 2, 4, 5])
  assert objectness.choose(ranks, likes, "objectness") == 1
  assert objectness.choose(ranks, likes, "paper") == 0
  assert objectness.choose(ranks, np.zeros(5, bool), "objectness") == 0
  assert objectness.choose(np.zeros(5, int), likes, "objectness") == -1


def test_train_refuses_masks_on_the_border():
  rates = pass_rates.PassRates(samples=64, size=1.0, histogram=1.0, kept=0.5,
                               pruned=0.0, foreground=0.5, border=0.55,
                               centre=0.4)
  with pytest.raises(errors.UserError, match=r"^config\.train\.max_border: "
                     r".* 55\.0% of the image border"):
    pass_rates.check_border(rates, 0.5)
  pass_rates.check_border(rates, 1.0)  # The override trains anyway.
  pass_rates.check_border(dataclasses.replace(rates, border=0.2), 0.5)
