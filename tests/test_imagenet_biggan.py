"""ImageNet BigGAN and BigGAN-deep against their reference code's outputs.

tests/fixtures/biggan/ holds random-weight networks and their images made by
ajbrock/BigGAN-PyTorch and pytorch-pretrained-biggan 0.1.1
(tools/make_biggan_golden.py names the commits); the state dicts are stored
as .npz with the state-dict keys, so these tests need no torch. Reading the
real .pth / .bin files needs torch and is skipped without it.
"""
import json
import os

import jax
import numpy as np
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.convert import biggan_torch
from gansseg_jax.models import biggan_deep
from gansseg_jax.models import imagenet_biggan

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "biggan")
TOLERANCE = 1e-4  # Max abs difference to the reference images (float32).


def load(kind: str, name: str) -> dict[str, np.ndarray]:
  with np.load(os.path.join(FIXTURES, kind, name)) as data:
    return dict(data)


def nhwc(images: np.ndarray) -> np.ndarray:
  return np.moveaxis(images, -3, -1)


@pytest.fixture(scope="module")
def biggan_model():
  state = load("biggan", "state.npz")
  where = os.path.join(FIXTURES, "biggan", "state.npz")
  spec = biggan_torch.biggan_spec_from_state(state, where)
  params, unused = biggan_torch.convert_biggan(
      spec, state, biggan_torch.TFHUB_PORT_EPS["sn_eps"], where)
  return spec, params, unused


@pytest.fixture(scope="module")
def deep_model():
  spec = biggan_torch.read_deep_config(
      os.path.join(FIXTURES, "deep", "config.json"))
  state = load("deep", "state.npz")
  return spec, biggan_torch.convert_deep(spec, state, "state.npz")


def test_biggan_spec_read_off_the_state_dict(biggan_model):
  spec, _, unused = biggan_model
  with open(os.path.join(FIXTURES, "biggan", "kwargs.json")) as f:
    kwargs = json.load(f)
  assert spec == imagenet_biggan.ImageNetBigGANSpec(
      resolution=kwargs["resolution"], z_dim=kwargs["dim_z"],
      ch=kwargs["G_ch"], shared_dim=kwargs["shared_dim"],
      n_classes=kwargs["n_classes"],
      attention_resolution=int(kwargs["G_attn"]), bn_eps=kwargs["BN_eps"],
      output_bn_eps=1e-5)
  assert unused and all(k.endswith(".sv0") for k in unused)


@pytest.mark.parametrize("dtype,tolerance", [("float32", TOLERANCE),
                                             ("bfloat16", 0.05)])
def test_biggan_matches_biggan_pytorch(biggan_model, dtype, tolerance):
  spec, params, _ = biggan_model
  io = load("biggan", "io.npz")
  images = jax.jit(imagenet_biggan.make_generate(spec, dtype))(
      params, io["z"], io["y"])
  images = np.asarray(images)
  assert images.dtype == np.float32
  assert np.abs(images - nhwc(io["images"])).max() <= tolerance
  if dtype == "bfloat16":
    assert np.abs(images - nhwc(io["images"])).mean() <= 0.005


@pytest.mark.parametrize("dtype,tolerance", [("float32", TOLERANCE),
                                             ("bfloat16", 0.05)])
def test_biggan_deep_matches_pytorch_pretrained_biggan(deep_model, dtype,
                                                        tolerance):
  spec, params = deep_model
  io = load("deep", "io.npz")
  forward = jax.jit(biggan_deep.make_forward(spec, dtype))
  for truncation, z, reference in zip(io["truncations"], io["z"],
                                      io["images"]):
    weights = biggan_deep.statistics_weights(float(truncation), spec.n_stats)
    images = np.asarray(forward(params, z, io["y"], weights))
    error = np.abs(images - nhwc(reference))
    assert error.max() <= tolerance, (truncation, error.max())
    if dtype == "bfloat16":
      assert error.mean() <= 0.005


def test_deep_truncation_picks_the_statistics(deep_model):
  """Off the grid the package mixes rows as s[k] f + s[k + 1] (1 - f)."""
  assert biggan_deep.statistics_weights(0.4, 51) == (20, 20, 1.0, 0.0)
  k0, k1, w0, w1 = biggan_deep.statistics_weights(0.55, 51)
  assert (k0, k1) == (27, 28) and w0 == pytest.approx(0.5)
  assert w0 + w1 == pytest.approx(1.0)
  spec, params = deep_model
  io = load("deep", "io.npz")
  forward = jax.jit(biggan_deep.make_forward(spec))
  images = jax.jit(biggan_deep.make_generate(spec, truncation=0.55))(
      params, io["z"][1], io["y"])
  np.testing.assert_allclose(images, nhwc(io["images"][1]), atol=TOLERANCE)
  # Only the lower grid point's statistics: a different image.
  other = forward(params, io["z"][1], io["y"], (k0, k0, 1.0, 0.0))
  assert np.abs(np.asarray(other) - images).max() > 1e-3
  with pytest.raises(ValueError, match="truncation"):
    biggan_deep.make_generate(spec, truncation=0.0)


def test_class_mixture_is_linear_in_the_embedding(biggan_model):
  """y enters only through y @ shared: a mixture row equals its embedding."""
  spec, params, _ = biggan_model
  io = load("biggan", "io.npz")
  mixed = io["y"][3:]
  assert np.count_nonzero(mixed) == 2  # The fixture's 0.3 / 0.7 row.
  embedding = mixed @ np.asarray(params["shared"])
  plain = dict(params, shared=np.concatenate(
      [embedding, np.zeros((spec.n_classes - 1, spec.shared_dim),
                           np.float32)]))
  generate = jax.jit(imagenet_biggan.make_generate(spec))
  np.testing.assert_allclose(
      generate(plain, io["z"][3:], imagenet_biggan.one_hot([0], 1000)),
      generate(params, io["z"][3:], mixed), atol=1e-5)


def test_truncated_z_is_bounded():
  z = imagenet_biggan.truncated_z(jax.random.key(0), 64, 120, 0.5)
  assert z.shape == (64, 120)
  assert float(np.abs(z).max()) <= 1.0
  assert 0.3 < float(np.std(z)) < 0.5  # 0.5 * std of N(0,1) cut at 2: 0.44.


def test_sample_classes_draws_from_the_chosen_pool():
  key = jax.random.key(1)
  y = np.asarray(imagenet_biggan.sample_classes(key, 256, None, 1000))
  assert y.shape == (256, 1000) and (y.sum(1) == 1).all()
  assert len(set(y.argmax(1))) > 200  # All classes: 256 draws, ~225 distinct.
  y = np.asarray(imagenet_biggan.sample_classes(key, 64, [3, 207], 1000))
  assert set(y.argmax(1)) == {3, 207}
  y = np.asarray(imagenet_biggan.sample_classes(key, 4, 933, 1000))
  assert (y.argmax(1) == 933).all()
  for bad, message in ((1000, "1000 is not in"), ([], "non-empty"),
                       ([1.5], "non-empty")):
    with pytest.raises(ValueError, match=f"^classes: .*{message}"):
      imagenet_biggan.sample_classes(key, 4, bad, 1000)


def test_latent_projection_is_every_map_that_reads_z(deep_model, biggan_model):
  spec, params = deep_model
  w = biggan_deep.latent_projection(params)
  bottom = spec.block_layout[0][0]
  n_out = 16 * bottom + 2 * sum(
      cin + 3 * (cin // 4) for cin, _, _ in spec.block_layout)
  assert w.shape == (n_out, spec.z_dim)
  # The first-layer response to a z shift is its block of rows times dz.
  dz = np.random.default_rng(0).normal(size=spec.z_dim).astype(np.float32)
  kernel = np.asarray(params["z_linear"]["kernel"])
  y = np.zeros((1, spec.cond_dim), np.float32)
  shifted = y.copy()
  shifted[0, :spec.z_dim] = dz
  np.testing.assert_allclose(w[:16 * bottom] @ dz,
                             (shifted @ kernel - y @ kernel)[0], rtol=1e-5,
                             atol=1e-5)
  spec_b, params_b, _ = biggan_model
  assert imagenet_biggan.latent_projection(params_b).shape[1] == spec_b.z_dim


def test_random_params_have_the_abstract_shapes():
  for module, spec in (
      (imagenet_biggan, imagenet_biggan.ImageNetBigGANSpec.published(
          128, ch=4)),
      (biggan_deep, biggan_deep.BigGANDeepSpec(resolution=64, ch=4,
                                               attention_resolution=32))):
    params = module.init_params(spec, 0)
    shapes = jax.tree.map(lambda a: a.shape, params)
    assert shapes == jax.tree.map(lambda a: a.shape,
                                  module.abstract_params(spec))
    assert spec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("make,field", [
    (lambda: imagenet_biggan.ImageNetBigGANSpec(resolution=100, z_dim=120),
     "resolution"),
    (lambda: imagenet_biggan.ImageNetBigGANSpec(resolution=128, z_dim=121),
     "z_dim"),
    (lambda: imagenet_biggan.ImageNetBigGANSpec(resolution=128, z_dim=120,
                                                n_classes=0), "n_classes"),
    (lambda: biggan_deep.BigGANDeepSpec(resolution=128,
                                        attention_resolution=48),
     "attention_resolution"),
    (lambda: biggan_deep.BigGANDeepSpec(resolution=128, ch=3), "ch"),
])
def test_bad_spec_names_the_field(make, field):
  with pytest.raises(ValueError, match=f"^{field}:"):
    make()


@pytest.mark.parametrize("kind,change,message", [
    ("biggan", lambda s: s.pop("blocks.1.0.conv2.u0"),
     "blocks.1.0.conv2.u0 is missing"),
    ("biggan", lambda s: s.update({"linear.bias": np.zeros(3)}),
     "linear.bias has shape"),
    ("biggan", lambda s: s.update({"extra.weight": np.zeros(3)}),
     "extra.weight is not mapped"),
    ("deep", lambda s: s.pop("generator.layers.7.bn_2.running_vars"),
     "generator.layers.7.bn_2.running_vars is missing"),
    ("deep", lambda s: s.update({"generator.bn.weight": np.zeros(3)}),
     "generator.bn.weight has shape"),
    ("deep", lambda s: s.update({"generator.extra": np.zeros(3)}),
     "generator.extra is not part"),
])
def test_bad_checkpoint_names_the_file_and_key(kind, change, message):
  state = load(kind, "state.npz")
  change(state)
  where = f"/data/{kind}.pth"
  with pytest.raises(errors.UserError, match=f"^{where}: .*{message}"):
    if kind == "biggan":
      spec = biggan_torch.biggan_spec_from_state(state, where)
      biggan_torch.convert_biggan(spec, state, 1e-4, where)
    else:
      spec = biggan_torch.read_deep_config(
          os.path.join(FIXTURES, "deep", "config.json"))
      biggan_torch.convert_deep(spec, state, where)


def test_bad_deep_config_names_the_file_and_field(tmp_path):
  with open(os.path.join(FIXTURES, "deep", "config.json")) as f:
    config = json.load(f)
  path = tmp_path / "config.json"
  for change, message in (
      (lambda c: c.pop("n_stats"), "field 'n_stats' is missing"),
      (lambda c: c["layers"].pop(), "field layers"),
      (lambda c: c.update(output_dim=100), "resolution: 100")):
    broken = json.loads(json.dumps(config))
    change(broken)
    path.write_text(json.dumps(broken))
    with pytest.raises(errors.UserError, match=f"^{path}: .*{message}"):
      biggan_torch.read_deep_config(str(path))
  path.write_text("{not json")
  with pytest.raises(errors.UserError, match=f"^{path}: not JSON"):
    biggan_torch.read_deep_config(str(path))
  with pytest.raises(errors.UserError, match="nothing.pth: no such"):
    biggan_torch.read_state_dict(str(tmp_path / "nothing.pth"))


def test_torch_files_convert_like_the_fixtures(tmp_path, biggan_model,
                                               deep_model):
  """The real formats: torch.save'd state dicts (+ config.json for deep)."""
  torch = pytest.importorskip("torch", reason="the torch extra reads .pth")
  for kind in ("biggan", "deep"):
    state = {k: torch.from_numpy(v) for k, v in load(kind,
                                                     "state.npz").items()}
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "biggan":
      torch.save(state, folder / "G_ema.pth")
      spec, params = biggan_torch.read_biggan_pytorch(
          str(folder / "G_ema.pth"))
      expected_spec, expected, _ = biggan_model
    else:
      torch.save(state, folder / "pytorch_model.bin")
      (folder / "config.json").write_text(open(os.path.join(
          FIXTURES, "deep", "config.json")).read())
      spec, params = biggan_torch.read_pretrained_biggan(str(folder))
      expected_spec, expected = deep_model
    assert spec == expected_spec
    jax.tree.map(np.testing.assert_array_equal, params, expected)
  (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
  with pytest.raises(errors.UserError, match="bad.pth"):
    biggan_torch.read_biggan_pytorch(str(tmp_path / "bad.pth"))
