"""The convert stage's 'random' and 'builtin' sources, W/generator round trips,
and the embed stage's 'file' source and config checks (no TensorFlow needed)."""
import os

import jax
import numpy as np
import pytest

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.embed import stage as embed
from gansseg_jax.convert import load
from gansseg_jax.convert import stage
from gansseg_jax.generators import bigbigan
from gansseg_jax.generators import demo
from gansseg_jax.models import biggan
from gansseg_jax.models import demo_gan


def tiny_config():
  c = default.get_config()
  c.generator.source = "random"
  c.generator.resolution, c.generator.z_dim, c.generator.ch = 32, 24, 4
  c.generator.shared_dim, c.generator.attention_resolution = 8, 16
  c.seed = 3
  return c


@pytest.fixture(scope="module")
def random_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("random"))
  stage.run(tiny_config(), workdir)
  return workdir


def test_random_source_round_trips_through_orbax(random_workdir):
  config = tiny_config()
  generate, params = load.load_generator(config, random_workdir)
  spec = bigbigan.generator_spec(config)
  expected = biggan.init_params(spec, config.seed)
  leaves = zip(jax.tree_util.tree_leaves_with_path(params),
               jax.tree_util.tree_leaves_with_path(expected))
  for (path, got), (_, want) in leaves:
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want),
                                  err_msg=jax.tree_util.keystr(path))
  z = jax.random.normal(jax.random.key(0), (2, 24))
  images = jax.jit(generate)(params, z)
  assert images.shape == (2, 32, 32, 3)
  np.testing.assert_allclose(
      np.asarray(images), np.asarray(biggan.make_generate(spec)(expected, z)),
      atol=1e-5)


def test_relative_workdir_converts_and_reloads(tmp_path, monkeypatch):
  # orbax takes only absolute paths; a relative --workdir must still work.
  monkeypatch.chdir(tmp_path)
  stage.run(tiny_config(), "relative")
  _, params = load.load_generator(tiny_config(), "relative")
  expected = biggan.init_params(bigbigan.generator_spec(tiny_config()), 3)
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_generator_must_match_the_config(random_workdir):
  config = tiny_config()
  config.generator.z_dim = 30
  with pytest.raises(errors.UserError, match="config.generator.z_dim: 30"):
    load.load_generator(config, random_workdir)
  config = tiny_config()
  config.generator.dtype = "float16"
  with pytest.raises(errors.UserError, match="config.generator.dtype"):
    load.load_generator(config, random_workdir)


def test_missing_generator_is_a_user_error(tmp_path):
  with pytest.raises(errors.UserError, match="run the 'convert' stage"):
    load.load_generator(tiny_config(), str(tmp_path))


@pytest.mark.parametrize("field, value, message", [
    ("source", "onnx", "config.generator.source"),
    ("resolution", 100, "config.generator.resolution"),
    ("z_dim", 25, "config.generator.z_dim"),
    ("dtype", "int8", "config.generator.dtype"),
])
def test_bad_generator_config(tmp_path, field, value, message):
  config = tiny_config()
  config.generator[field] = value
  with pytest.raises(errors.UserError, match=message):
    stage.run(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "generator")


def test_builtin_source_saves_params_and_reloads(tmp_path):
  config = default.get_config()
  config.generator.source = "builtin"
  config.generator.z_dim, config.generator.resolution = 32, 32
  stage.run(config, str(tmp_path))
  description = load.read_description(str(tmp_path / "generator"))
  assert description["arch"] == "builtin"
  generate, params = load.load_generator(config, str(tmp_path))
  shipped_generate, shipped, _ = demo_gan.load_builtin()
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(shipped)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  z = jax.random.normal(jax.random.key(1), (2, 32))
  np.testing.assert_allclose(np.asarray(generate(params, z)),
                             np.asarray(shipped_generate(shipped, z)),
                             atol=1e-6)
  config.generator.z_dim = 120  # The demo's info says 32.
  with pytest.raises(errors.UserError, match="config.generator.z_dim"):
    stage.run(config, str(tmp_path / "other"))
  assert not os.path.exists(tmp_path / "other" / "generator")


def test_builtin_without_demo_module_is_a_user_error(monkeypatch, tmp_path):
  monkeypatch.setattr(demo, "MODULE", "gansseg_jax.models.no_such_gan")
  config = default.get_config()
  config.generator.source = "builtin"
  with pytest.raises(errors.UserError, match="'builtin' needs the demo"):
    stage.run(config, str(tmp_path))


def test_embed_file_source(tmp_path):
  config = tiny_config()
  config.embed.source = "file"
  table = np.random.default_rng(0).normal(size=(7, 24))
  np.save(tmp_path / "z.npy", table)
  config.embed.file = str(tmp_path / "z.npy")
  embed.run(config, str(tmp_path / "w"))
  written = np.load(tmp_path / "w" / "embeddings.npy")
  assert written.dtype == np.float32
  np.testing.assert_allclose(written, table, rtol=1e-6)
  np.save(tmp_path / "bad.npy", table[:, :20])
  config.embed.file = str(tmp_path / "bad.npy")
  with pytest.raises(errors.UserError, match=r"config.embed.file: .*\(7, 20\)"):
    embed.run(config, str(tmp_path / "w2"))


@pytest.mark.parametrize("field, value", [
    ("source", "onnx"), ("output", "z_mode"), ("batch_size", 0),
    ("dataset", ""),
])
def test_embed_config_errors(tmp_path, field, value):
  config = tiny_config()
  config.embed.source = "tfhub"
  config.embed[field] = value
  with pytest.raises(errors.UserError, match=f"config.embed.{field}"):
    embed.run(config, str(tmp_path))


def test_embed_preprocess_is_resize_then_centre_crop():
  # A 20x40 image whose left and right quarters are black, the middle white:
  # the centre square is all white, whatever the resize.
  image = np.zeros((20, 40, 3), np.uint8)
  image[:, 10:30] = 255
  out = embed.preprocess(image, 8)
  assert out.shape == (8, 8, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out, 1.0)
