"""Stage `synth` (export): files, index.csv, reproducibility, atomicity."""
import csv
import importlib
import json
import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from gansseg_jax.infra.errors import UserError
from gansseg_jax.infra import config_files
from gansseg_jax.infra import keys
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import export
from gansseg_jax.synth import inputs
from gansseg_jax.synth import latents

SIZE, Z_DIM, LIGHT = 12, 5, 3


def ring_generator(params, z):
  """A disk; +z[LIGHT] brightens it and darkens the background."""
  axis = jnp.linspace(-1.0, 1.0, SIZE)
  yy, xx = jnp.meshgrid(axis, axis, indexing="ij")
  cy = 0.4 * jnp.tanh(z[:, 0])[:, None, None]
  cx = 0.4 * jnp.tanh(z[:, 1])[:, None, None]
  radius = params["radius"] * (1.0 + 0.6 * jnp.tanh(z[:, 2]))[:, None, None]
  inside = jax.nn.sigmoid(25.0 * (radius - jnp.hypot(yy - cy, xx - cx)))
  light = 0.15 * z[:, LIGHT][:, None, None]
  value = inside * jnp.tanh(0.3 + light) + (1 - inside) * jnp.tanh(-0.3 - light)
  return jnp.stack([value, 0.9 * value, 0.8 * value], axis=-1)


PARAMS = {"radius": jnp.array(0.4)}


def _config(**export_overrides):
  c = config_files.load_checkout("default")
  c.seed = 3
  c.generator.z_dim = Z_DIM
  c.synth.max_foreground = 0.2
  c.synth.histogram_filter = False
  c.export.num_pairs = 7
  c.export.batch_size = 4
  c.export.output_dir = "pairs"
  c.log.progress_every_s = 0.0
  c.export.update(export_overrides)
  return c


@pytest.fixture
def workdir(tmp_path, monkeypatch):
  fake = lambda config, workdir: (ring_generator, PARAMS)
  try:
    load = importlib.import_module("gansseg_jax.convert.load")
    monkeypatch.setattr(load, "load_generator", fake)
  except ImportError:  # The converter is not built yet: a stand-in module.
    module = types.ModuleType("gansseg_jax.convert.load")
    module.load_generator = fake
    monkeypatch.setitem(sys.modules, "gansseg_jax.convert.load", module)
  direction = np.zeros(Z_DIM, np.float32)
  direction[LIGHT] = 0.5
  np.save(tmp_path / "bg_direction.npy", direction)
  return str(tmp_path)


def _rows(folder):
  with open(os.path.join(folder, "index.csv")) as f:
    return list(csv.DictReader(f))


def test_export_writes_reproducible_pairs(workdir):
  config = _config()
  export.run(config, workdir)
  folder = os.path.join(workdir, "pairs")
  rows = _rows(folder)
  assert len(rows) == 7 and list(rows[0]) == list(export.INDEX_COLUMNS)
  assert sorted(os.listdir(os.path.join(folder, "images"))) == [
      r["file"] for r in rows]
  assert all(r["kept"] == "1" and r["size_filter"] == "pass" for r in rows)
  assert all(r["histogram_filter"] == "off" for r in rows)
  summary = json.load(open(os.path.join(folder, "summary.json")))
  assert summary["pairs"] == 7 and summary["rejected_size"] > 0
  # Every row is reproduced from its key index alone.
  sample = latents.make_sampler(config.synth, Z_DIM)
  spec = batch_lib.SynthSpec.from_config(config.synth)
  key = keys.stage_key(config.seed, export.STAGE)
  direction = np.load(os.path.join(workdir, "bg_direction.npy"))
  z = np.concatenate([
      sample(jax.random.fold_in(key, int(r["key_index"])), 1) for r in rows])
  cand = batch_lib.make_candidates(jnp.asarray(z), ring_generator, PARAMS,
                                   jnp.asarray(direction), spec)
  assert np.all(cand.keep)
  for i, r in enumerate(rows):
    image = np.asarray(Image.open(os.path.join(folder, "images", r["file"])))
    mask = np.asarray(Image.open(os.path.join(folder, "masks", r["file"])))
    want = np.round((np.asarray(cand.images[i]) + 1) * 127.5)
    assert image.shape == (SIZE, SIZE, 3)
    assert np.abs(image.astype(int) - want).max() <= 1
    assert np.array_equal(mask == 255, np.asarray(cand.masks[i]))
    assert set(np.unique(mask)) <= {0, 255}
    assert float(r["foreground_fraction"]) == pytest.approx(
        np.mean(mask == 255), abs=1e-6)


def test_export_with_rejected_rows(workdir):
  export.run(_config(include_rejected=True, num_pairs=8), workdir)
  rows = _rows(os.path.join(workdir, "pairs"))
  assert [int(r["key_index"]) for r in rows] == list(range(8))
  assert {r["size_filter"] for r in rows} == {"pass", "fail"}
  assert all((r["kept"] == "1") == (r["size_filter"] == "pass") for r in rows)


def test_starved_export_fails_cleanly(workdir):
  config = _config(max_candidates_factor=2.0)
  config.synth.max_foreground = 0.0
  with pytest.raises(UserError, match="^config.synth.size_filter: only 0 of 7"):
    export.run(config, workdir)
  assert not os.path.exists(os.path.join(workdir, "pairs"))
  assert [n for n in os.listdir(workdir) if n.startswith("pairs")] == []


def test_missing_or_bad_direction(workdir):
  os.remove(os.path.join(workdir, "bg_direction.npy"))
  with pytest.raises(UserError, match="bg_direction.npy: no such file"):
    export.run(_config(), workdir)
  np.save(os.path.join(workdir, "bg_direction.npy"), np.zeros(Z_DIM + 1))
  with pytest.raises(UserError, match="bg_direction.npy: expected shape"):
    export.run(_config(), workdir)
  with pytest.raises(UserError, match="config.export.num_pairs"):
    export.run(_config(num_pairs=0), workdir)


def test_inputs_follow_the_config(workdir):
  config = _config()
  assert inputs.input_paths(config) == ("bg_direction.npy",)
  config.synth.latents = "embeddings"
  config.synth.mask_rule = "affine"
  assert inputs.input_paths(config) == (
      "bg_direction.npy", "embeddings.npy", "bg_affine.npy")
  with pytest.raises(UserError, match="embeddings.npy: no such file"):
    inputs.load(config, workdir)
  np.save(os.path.join(workdir, "embeddings.npy"),
          np.ones((4, Z_DIM), np.float32))
  with pytest.raises(UserError, match="bg_affine.npy: no such file"):
    inputs.load(config, workdir)
  np.save(os.path.join(workdir, "bg_affine.npy"), np.zeros((2, 3, 4)))
  loaded = inputs.load(config, workdir)
  assert loaded.affine_maps.shape == (2, 3, 4)
  assert loaded.spec.mask_rule == "affine"
  z = np.asarray(loaded.sample_latents(jax.random.key(0), 3))
  assert z.shape == (3, Z_DIM) and np.all(np.abs(z - 1) < 1.5)
