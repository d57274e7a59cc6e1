"""StyleGAN2 against the authors' code: golden images of NVlabs'
(stylegan2-ada-pytorch, its TF-pickle conversion, stylegan3) and rosinality's
generators (tests/fixtures/stylegan2/, made by
tools/make_stylegan2_golden.py with the upstream commits it names), through
the converters; the restricted unpickler on hostile and broken files. No
torch needed."""
import os
import pickle
import zipfile

import jax
import numpy as np
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.convert import stylegan2_pickle
from gansseg_jax.convert import stylegan2_rosinality
from gansseg_jax.convert import stylegan2_tf
from gansseg_jax.convert import torch_pickle
from gansseg_jax.models import stylegan2

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "stylegan2")
NVLABS_PKL = os.path.join(FIXTURES, "nvlabs_64.pkl")
ROSINALITY_PT = os.path.join(FIXTURES, "rosinality_64.pt")
TOLERANCE = 1e-4  # Max abs difference from the reference images (fp32).


@pytest.fixture(scope="module")
def nvlabs():
  spec, params = stylegan2_pickle.read_stylegan2_pickle(NVLABS_PKL)
  return spec, params, dict(np.load(os.path.join(FIXTURES,
                                                 "nvlabs_golden.npz")))


@pytest.fixture(scope="module")
def rosinality():
  spec, params = stylegan2_rosinality.read_stylegan2_rosinality(ROSINALITY_PT)
  return spec, params, dict(np.load(os.path.join(FIXTURES,
                                                 "rosinality_golden.npz")))


def _max_error(spec, params, latents, expected, **kwargs):
  """Raw (unclipped) images against the reference's raw images."""
  generate = jax.jit(stylegan2.make_generate(spec, clip_output=False,
                                             **kwargs))
  images = np.asarray(generate(params, latents))
  assert images.shape == expected.shape
  return np.abs(images - expected).max()


def test_nvlabs_spec_and_noise_buffers(nvlabs):
  spec, params, golden = nvlabs
  assert spec == stylegan2.StyleGAN2Spec(
      resolution=64, z_dim=64, w_dim=64, mapping_layers=2, channel_base=512,
      channel_max=32, conv_clamp=1.0)
  assert spec.num_ws == golden["ws"].shape[1] == 10
  noise = [golden[k] for k in sorted(
      (k for k in golden if k.startswith("noise_")),
      key=lambda k: (int(k.split(".b")[1].split(".")[0]), k))]
  assert len(noise) == spec.num_layers
  for index, expected in enumerate(noise):
    np.testing.assert_array_equal(params["layers"][index]["noise_const"],
                                  expected)


@pytest.mark.parametrize("space,latent_keys,image_keys,kwargs", [
    ("z", ["z"], ["images_z"], {}),
    ("z", ["z"], ["images_cut"], {"truncation_psi": 0.7,
                                  "truncation_cutoff": 4}),
    ("w", ["w"], ["images_no_noise"], {"noise_mode": "none"}),
    # One compile for the rest: the reference's ws, truncated ws (psi 0.7 on
    # every layer) and style-mixed ws as w+ latents.
    ("w+", ["ws", "ws_trunc", "ws_mixed"],
     ["images_w", "images_trunc", "images_mixed"], {}),
])
def test_nvlabs_golden_images(nvlabs, space, latent_keys, image_keys, kwargs):
  spec, params, golden = nvlabs
  assert float(golden["psi"]) == 0.7 and int(golden["cutoff"]) == 4
  latents = [golden["ws"][:, 0] if k == "w" else golden[k]
             for k in latent_keys]
  latents = np.concatenate([x.reshape(len(x), -1) for x in latents])
  expected = np.concatenate([golden[k] for k in image_keys])
  assert _max_error(spec, params, latents, expected, latent_space=space,
                    **kwargs) <= TOLERANCE


def test_nvlabs_mapping_and_truncated_ws(nvlabs):
  spec, params, golden = nvlabs
  w = np.asarray(stylegan2.make_mapping(spec)(params, golden["z"]))
  np.testing.assert_allclose(w, golden["ws"][:, 0], atol=1e-5)
  for key, psi in (("ws_trunc", 0.7), ("ws", 1.0)):
    sampled = golden[key][:, 0]
    np.testing.assert_allclose(
        params["w_avg"] + psi * (w - params["w_avg"]), sampled, atol=1e-5)


def test_rosinality_golden_images(rosinality):
  """Mapping (lr_mul folded) against its w; one w+ compile for the images."""
  spec, params, golden = rosinality
  assert spec.resolution == 64 and spec.channels(64) == 16
  assert spec.channels(32) == 32 and spec.conv_clamp is None
  np.testing.assert_array_equal(params["w_avg"], golden["latent_avg"])
  w = np.asarray(jax.jit(stylegan2.make_mapping(spec))(params, golden["z"]))
  np.testing.assert_allclose(w, golden["w"], atol=1e-5)
  psi, mix, n = float(golden["psi"]), int(golden["mix_from"]), spec.num_ws
  truncated = golden["latent_avg"] + psi * (golden["w"] - golden["latent_avg"])
  mixed = np.concatenate([np.repeat(golden["w"][:, None], mix, 1),
                          np.repeat(golden["w2"][:, None], n - mix, 1)], 1)
  latents = np.concatenate([np.repeat(golden["w"][:, None], n, 1),
                            np.repeat(truncated[:, None], n, 1), mixed])
  expected = np.concatenate([golden["images_w"], golden["images_trunc"],
                             golden["images_mixed"]])
  np.testing.assert_allclose(golden["images_w"], golden["images_z"])
  assert _max_error(spec, params, latents.reshape(len(latents), -1), expected,
                    latent_space="w+") <= TOLERANCE


def test_rosinality_legacy_format_reads_the_same(rosinality):
  """torch's pre-1.6 (non-zip) torch.save stream of the same checkpoint."""
  _, params, _ = rosinality
  _, legacy = stylegan2_rosinality.read_stylegan2_rosinality(
      os.path.join(FIXTURES, "rosinality_64_legacy.pt"))
  jax.tree.map(np.testing.assert_array_equal, legacy, params)


def test_rosinality_w_avg_without_latent_avg(rosinality, tmp_path,
                                             monkeypatch):
  """No latent_avg in the file: the mean of the mapping over N(0, I) draws."""
  spec, params, golden = rosinality
  checkpoint = torch_pickle.load_torch_zip(
      ROSINALITY_PT, torch_pickle.read_file(ROSINALITY_PT))
  del checkpoint["latent_avg"]
  monkeypatch.setattr(torch_pickle, "load_torch_zip",
                      lambda path, data: checkpoint)
  _, converted = stylegan2_rosinality.read_stylegan2_rosinality(ROSINALITY_PT)
  # The reference's own mean_latent(4096) from other draws: within sampling
  # error of the mean of w, not bit-equal.
  np.testing.assert_allclose(converted["w_avg"], golden["latent_avg"],
                             atol=0.1)
  assert np.abs(converted["w_avg"] - golden["latent_avg"]).max() > 0


def test_bfloat16_is_close(nvlabs):
  spec, params, golden = nvlabs
  images = np.asarray(jax.jit(stylegan2.make_generate(
      spec, "bfloat16", latent_space="w", clip_output=False))(
          params, golden["ws"][:, 0]))
  error = np.abs(images - golden["images_w"])
  assert images.dtype == np.float32
  assert error.mean() < 0.02 and error.max() < 0.25, (error.mean(),
                                                      error.max())


def test_random_noise_follows_the_key(nvlabs):
  spec, params, golden = nvlabs
  generate = jax.jit(stylegan2.make_generate(spec, latent_space="w",
                                             noise_mode="random"))
  w = golden["ws"][:, 0]
  a = np.asarray(generate(params, w, jax.random.key(1)))
  b = np.asarray(generate(params, w, jax.random.key(1)))
  c = np.asarray(generate(params, w, jax.random.key(2)))
  np.testing.assert_array_equal(a, b)
  assert np.abs(a - c).max() > 1e-3
  assert np.abs(a).max() <= 1.0  # Clipped by default.
  assert np.abs(a - np.clip(golden["images_w"], -1, 1)).max() > 1e-3
  with pytest.raises(ValueError, match="noise_key"):
    stylegan2.make_generate(spec, noise_mode="random")(params, w)
  keys = jax.vmap(jax.random.key)(np.arange(len(w), dtype=np.uint32) + 7)
  per_row = np.asarray(generate(params, w, keys))
  for row in range(len(w)):  # Row i: a batch of one drawn from key i.
    np.testing.assert_allclose(
        per_row[row], np.asarray(generate(params, w[row:row + 1],
                                          keys[row]))[0], atol=1e-5)
  with pytest.raises(ValueError, match="noise_key: 1 keys for"):
    generate(params, w, keys[:1])


def test_sampled_latents_agree_across_spaces(nvlabs):
  """sample 'w+' with psi = map + truncate of the same z as 'z' space does."""
  spec, params, _ = nvlabs
  key = jax.random.key(3)
  sample = lambda *args, **kwargs: jax.jit(
      stylegan2.make_sample_latents(spec, *args, **kwargs),
      static_argnums=2)(params, key, 2)
  z, wplus, w = sample("z"), sample("w+", 0.5, cutoff=3), sample("w", 0.5)
  assert wplus.shape == (2, spec.num_ws * spec.w_dim)
  ws = np.asarray(wplus).reshape(2, spec.num_ws, spec.w_dim)
  np.testing.assert_allclose(ws[:, 0], w, atol=1e-6)
  generate = jax.jit(lambda p, z, wplus: (
      stylegan2.make_generate(spec, latent_space="z", truncation_psi=0.5,
                              truncation_cutoff=3)(p, z),
      stylegan2.make_generate(spec, latent_space="w+")(p, wplus)))
  from_z, from_wplus = generate(params, z, wplus)
  np.testing.assert_allclose(from_wplus, from_z, atol=1e-5)
  assert np.abs(from_z).max() <= 1.0  # clip_output is the default.


def test_latent_projection_is_the_style_affines(nvlabs):
  spec, params, _ = nvlabs
  g = torch_pickle.load_pickle(NVLABS_PKL,
                               torch_pickle.read_file(NVLABS_PKL))["G_ema"]
  tensors = g.tensors()
  projection = stylegan2.latent_projection(params)
  affines = ["synthesis.b4.conv1"] + [
      f"synthesis.b{s}.conv{i}" for s in spec.block_resolutions[1:]
      for i in (0, 1)] + ["synthesis.b64.torgb"]
  expected = np.concatenate([tensors[f"{n}.affine.weight"] for n in affines])
  assert projection.shape == expected.shape == (
      sum(c for c, _, _, _ in spec.layer_shapes()) + spec.channels(64),
      spec.w_dim)
  unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)
  np.testing.assert_allclose(unit(projection), unit(expected), atol=1e-6)
  wplus = stylegan2.latent_projection(params, "w+")
  assert wplus.shape == (len(expected), spec.num_ws * spec.w_dim)
  row = 0
  for index, name in enumerate(affines):  # Conv l reads w_l; toRGB w_9.
    block = wplus[row:row + len(tensors[f"{name}.affine.weight"])]
    row += len(block)
    columns = slice(index * spec.w_dim, (index + 1) * spec.w_dim)
    np.testing.assert_allclose(unit(block[:, columns]),
                               unit(tensors[f"{name}.affine.weight"]),
                               atol=1e-6)
    block[:, columns] = 0
    assert not block.any()
  with pytest.raises(ValueError, match="latent_space"):
    stylegan2.latent_projection(params, "z")


def test_init_params_and_spec():
  spec = stylegan2.StyleGAN2Spec(resolution=256, z_dim=512, w_dim=512,
                                 mapping_layers=8, channel_base=32768,
                                 channel_max=512, conv_clamp=256.0)
  assert spec.num_ws == 14 and spec.channels(256) == 128
  assert stylegan2.StyleGAN2Spec.from_dict(spec.to_dict()) == spec
  small = stylegan2.StyleGAN2Spec(resolution=8, z_dim=8, w_dim=8,
                                  mapping_layers=1, channel_base=64,
                                  channel_max=8)
  params = stylegan2.init_params(small, jax.random.key(0))
  assert jax.tree.map(np.shape, params) == jax.tree.map(
      lambda s: s.shape, stylegan2.abstract_params(small))
  assert np.all(np.asarray(params["layers"][0]["affine"]["bias"]) == 1)
  images = jax.jit(stylegan2.make_generate(small, latent_space="z"))(
      params, np.ones((2, 8), np.float32))
  assert images.shape == (2, 8, 8, 3) and np.all(np.isfinite(images))
  for field, value in (("resolution", 96), ("w_dim", 0),
                       ("conv_clamp", -1.0)):
    with pytest.raises(ValueError, match=field):
      stylegan2.StyleGAN2Spec(**{**small.to_dict(), field: value})


class _Boom:
  def __reduce__(self):
    return (os.system, ("touch BOOM",))


def test_unpickler_refuses_code(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  hostile = tmp_path / "hostile.pkl"
  hostile.write_bytes(pickle.dumps({"G_ema": _Boom()}))
  with pytest.raises(errors.UserError, match=r"hostile\.pkl.*refuses.*system"):
    stylegan2_pickle.read_stylegan2_pickle(str(hostile))
  zipped = tmp_path / "hostile.pt"
  with zipfile.ZipFile(zipped, "w") as archive:
    archive.writestr("hostile/data.pkl", pickle.dumps({"g_ema": _Boom()}))
  with pytest.raises(errors.UserError, match=r"hostile\.pt.*refuses.*system"):
    stylegan2_rosinality.read_stylegan2_rosinality(str(zipped))
  assert not (tmp_path / "BOOM").exists()


def test_tensorflow_pickle_golden_images(tmp_path):
  """A TF StyleGAN2 pickle (dnnlib.tflib Networks) against the generator
  NVlabs' legacy.py converts from it: z, truncation psi 0.7, const noise."""
  path = os.path.join(FIXTURES, "nvlabs_tf_64.pkl")
  golden = np.load(os.path.join(FIXTURES, "nvlabs_tf_golden.npz"))
  spec, params = stylegan2_pickle.read_stylegan2_pickle(path)
  assert spec.channel_base == 512 and spec.conv_clamp is None
  assert _max_error(spec, params, golden["z"], golden["images_trunc"],
                    latent_space="z",
                    truncation_psi=float(golden["psi"])) <= TOLERANCE
  networks = torch_pickle.load_pickle(path, torch_pickle.read_file(path))
  networks[2].components["synthesis"].variables.pop(3)
  with pytest.raises(errors.UserError, match="Gs has no variable synthesis/"):
    stylegan2_tf.convert("church.pkl", networks)


@pytest.mark.parametrize("reader,source", [
    (stylegan2_pickle.read_stylegan2_pickle, NVLABS_PKL),
    (stylegan2_rosinality.read_stylegan2_rosinality, ROSINALITY_PT)])
def test_broken_files_name_the_file(tmp_path, reader, source):
  data = open(source, "rb").read()
  for name, content in (("truncated", data[:len(data) // 2]),
                        ("garbage", b"\x00not a checkpoint" * 10)):
    path = tmp_path / f"{name}{os.path.splitext(source)[1]}"
    path.write_bytes(content)
    with pytest.raises(errors.UserError, match=str(path)):
      reader(str(path))
  with pytest.raises(errors.UserError, match="missing.pkl"):
    reader(str(tmp_path / "missing.pkl"))


def test_rosinality_misshapen_tensor_is_named(rosinality):
  spec, _, _ = rosinality
  state = torch_pickle.load_torch_zip(
      ROSINALITY_PT, torch_pickle.read_file(ROSINALITY_PT))["g_ema"]
  state["convs.1.activate.bias"] = np.zeros(5, np.float32)
  with pytest.raises(errors.UserError, match=r"convs\.1\.activate\.bias"):
    stylegan2_rosinality.convert("x.pt", state, spec)


def test_stylegan3_pickles():
  """stylegan3's StyleGAN2 networks (its --cfg=stylegan2) read and match its
  images; its alias-free config T is refused by name."""
  path = os.path.join(FIXTURES, "stylegan3_cfg_stylegan2_64.pkl")
  golden = np.load(os.path.join(FIXTURES, "stylegan3_cfg_stylegan2_golden.npz"))
  spec, params = stylegan2_pickle.read_stylegan2_pickle(path)
  assert spec.channel_base == 512 and spec.conv_clamp == 256
  assert _max_error(spec, params, golden["z"], golden["images_trunc"],
                    latent_space="z",
                    truncation_psi=float(golden["psi"])) <= TOLERANCE
  with pytest.raises(errors.UserError,
                     match=r"cfg_t_64\.pkl: a StyleGAN3 \(alias-free"):
    stylegan2_pickle.read_stylegan2_pickle(
        os.path.join(FIXTURES, "stylegan3_cfg_t_64.pkl"))
