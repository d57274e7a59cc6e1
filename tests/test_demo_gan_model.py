"""models/demo_gan.py: layers against numpy references, generator contract."""
import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.models import demo_gan

MODEL = {"z_dim": 8, "resolution": 16, "g_channels": 4, "d_channels": 4,
         "g_norm": "batch"}


def _generator(norm):
  g = demo_gan.Generator(MODEL["z_dim"], MODEL["g_channels"],
                         MODEL["resolution"], norm, rngs=nnx.Rngs(0))
  graphdef, state = nnx.split(g)
  return demo_gan.make_generate(graphdef), nnx.to_pure_dict(state), norm


@pytest.fixture(scope="module", params=demo_gan.NORMS)
def generator(request):
  return _generator(request.param)


def test_depth_to_space_matches_a_loop():
  x = np.random.default_rng(0).normal(size=(2, 3, 5, 4 * 6)).astype(np.float32)
  expected = np.zeros((2, 6, 10, 6), np.float32)
  for h in range(3):
    for w in range(5):
      for dy in range(2):
        for dx in range(2):
          expected[:, 2 * h + dy, 2 * w + dx] = x[:, h, w,
                                                   (2 * dy + dx) * 6:(2 * dy + dx + 1) * 6]
  np.testing.assert_array_equal(np.asarray(demo_gan.depth_to_space(x)), expected)


def test_pixel_norm_gives_unit_mean_square_per_pixel():
  x = np.random.default_rng(1).normal(size=(2, 4, 4, 7)).astype(np.float32) * 3
  y = np.asarray(demo_gan.pixel_norm(jnp.asarray(x)))
  np.testing.assert_allclose(
      y, x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-8), rtol=1e-5)


def test_batch_norm_with_batch_statistics_matches_numpy_and_records_them():
  x = np.random.default_rng(5).normal(size=(3, 4, 5, 6)).astype(np.float32) * 2 + 1
  layer = demo_gan.BatchNorm(6)
  layer.scale[...] = jnp.arange(1.0, 7.0)
  layer.offset[...] = jnp.full((6,), 0.5)
  y = np.asarray(layer(jnp.asarray(x), batch_stats=True))
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  np.testing.assert_allclose(
      y, (x - mean) / np.sqrt(var + 1e-5) * np.arange(1, 7) + 0.5,
      rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(layer.mean[...]), mean, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(layer.var[...]), var, rtol=1e-5)
  # Without batch statistics, the stored ones: one image alone, same result.
  np.testing.assert_allclose(
      np.asarray(layer(jnp.asarray(x[:1]), batch_stats=False)), y[:1],
      rtol=1e-4, atol=1e-4)


def _split_for_training(norm="batch"):
  g = demo_gan.Generator(MODEL["z_dim"], MODEL["g_channels"],
                         MODEL["resolution"], norm, rngs=nnx.Rngs(6))
  graphdef, params, stats = nnx.split(g, nnx.Param, demo_gan.StandingStat)
  return graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(stats)


def test_standing_statistics_are_the_population_moments():
  graphdef, params, stats = _split_for_training()
  z = jax.random.normal(jax.random.key(7), (4, 5, MODEL["z_dim"]))
  standing = demo_gan.standing_statistics(graphdef, params, stats, z)
  # The first layer normalises the latent projection, which no statistic
  # changes: its population moments over all 4 x 5 latents and 4x4 pixels.
  kernel = np.asarray(params["project"]["kernel"])
  bias = np.asarray(params["project"]["bias"])
  features = (np.asarray(z).reshape(20, -1) @ kernel + bias).reshape(
      -1, kernel.shape[1] // 16)
  np.testing.assert_allclose(np.asarray(standing["norms"][0]["mean"]),
                             features.mean(axis=0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(standing["norms"][0]["var"]),
                             features.var(axis=0), rtol=1e-4, atol=1e-5)


def test_standing_statistics_of_one_batch_reproduce_training_mode():
  graphdef, params, stats = _split_for_training()
  z = jax.random.normal(jax.random.key(8), (6, MODEL["z_dim"]))
  standing = demo_gan.standing_statistics(graphdef, params, stats, z[None])
  trained = nnx.merge(graphdef, params, stats)(z, batch_stats=True)
  inference = nnx.merge(graphdef, params, standing)(z)
  np.testing.assert_allclose(np.asarray(inference), np.asarray(trained),
                             atol=1e-4)


def test_modulated_generator_matches_a_numpy_forward_pass():
  generate, params, _ = _generator("modulated")
  z = np.random.default_rng(9).normal(size=(2, MODEL["z_dim"])).astype(np.float32)
  p = jax.tree.map(np.asarray, params)
  c = MODEL["g_channels"]

  def modulate(x, layer):
    """relu(pixel_norm(x) (1 + z W_gain) + z W_bias), written out."""
    m = z @ p["modulations"][layer]["kernel"] + p["modulations"][layer]["bias"]
    gain, bias = m[:, :m.shape[1] // 2], m[:, m.shape[1] // 2:]
    x = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-8)
    return np.maximum(0.0, x * (1.0 + gain[:, None, None]) + bias[:, None, None])

  def up(x, conv):
    """3x3 SAME convolution, then depth-to-space."""
    k, b = conv["kernel"], conv["bias"]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    y = np.zeros(x.shape[:3] + (k.shape[-1],), np.float32)
    for i in range(h):
      for j in range(w):
        y[:, i, j] = np.einsum("bhwc,hwco->bo", padded[:, i:i + 3, j:j + 3], k) + b
    return np.asarray(demo_gan.depth_to_space(y))

  x = (z @ p["project"]["kernel"] + p["project"]["bias"]).reshape(2, 4, 4, 2 * c)
  x = modulate(x, 0)
  x = modulate(up(x, p["ups"][0]), 1)
  expected = np.tanh(up(x, p["ups"][1]))
  np.testing.assert_allclose(np.asarray(generate(params, jnp.asarray(z))),
                             expected, rtol=1e-4, atol=1e-5)


def test_latent_projection_of_a_modulated_generator_reads_every_map_of_z():
  """SeFa's W^T W = the sum of W_l^T W_l over every linear map that reads z."""
  _, params, _ = _generator("modulated")
  w = np.asarray(demo_gan.latent_projection(params))
  maps = [params["project"]["kernel"]] + [
      params["modulations"][layer]["kernel"] for layer in (0, 1)]
  expected = sum(np.asarray(k) @ np.asarray(k).T for k in maps)
  np.testing.assert_allclose(w.T @ w, expected, rtol=1e-4, atol=1e-4)


def test_spectral_norm_converges_to_the_largest_singular_value():
  conv = demo_gan.SNConv(5, 6, 3, 1, 1, rngs=nnx.Rngs(2))
  for _ in range(60):
    normalized = conv.normalized_kernel(update_stats=True)
  matrix = np.asarray(conv.kernel[...]).reshape(-1, 6)
  sigma = np.linalg.svd(matrix, compute_uv=False)[0]
  np.testing.assert_allclose(np.asarray(normalized).reshape(-1, 6),
                             matrix / sigma, rtol=1e-4, atol=1e-6)
  # Without update_stats the vector stays where it is.
  u = np.asarray(conv.u[...])
  conv.normalized_kernel(update_stats=False)
  np.testing.assert_array_equal(np.asarray(conv.u[...]), u)


def test_sn_conv_is_a_convolution_with_the_normalized_kernel():
  conv = demo_gan.SNConv(3, 4, 4, 2, 1, rngs=nnx.Rngs(3))
  x = np.random.default_rng(3).normal(size=(1, 6, 6, 3)).astype(np.float32)
  w = np.asarray(conv.normalized_kernel(update_stats=False))
  b = np.asarray(conv.bias[...])
  y = np.asarray(conv(jnp.asarray(x), update_stats=False))
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  expected = np.zeros((1, 3, 3, 4), np.float32)
  for i in range(3):
    for j in range(3):
      patch = padded[0, 2 * i:2 * i + 4, 2 * j:2 * j + 4]
      expected[0, i, j] = np.einsum("hwc,hwco->o", patch, w) + b
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_generator_contract(generator):
  generate, params, _ = generator
  z = jax.random.normal(jax.random.key(0), (3, MODEL["z_dim"]))
  images = np.asarray(generate(params, z))
  assert images.shape == (3, 16, 16, 3) and images.dtype == np.float32
  assert np.all(np.abs(images) <= 1.0)
  jitted = np.asarray(jax.jit(generate)(params, z))
  np.testing.assert_allclose(jitted, images, atol=1e-5)
  # An image depends on its own z only (no batch statistics).
  np.testing.assert_allclose(np.asarray(generate(params, z[1:2]))[0], images[1],
                             atol=1e-5)


def test_discriminator_maps_images_to_one_logit_each():
  d = demo_gan.Discriminator(4, 16, rngs=nnx.Rngs(4))
  logits = d(jnp.zeros((5, 16, 16, 3)), update_stats=False)
  assert logits.shape == (5,)


def test_params_flatten_round_trip_and_errors(generator):
  _, params, norm = generator
  flat = demo_gan.flatten_params(params)
  assert "project/kernel" in flat
  _, template = demo_gan.abstract_generator({**MODEL, "g_norm": norm})
  back = demo_gan.unflatten_params(flat, template, "x.npz")
  for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # 4x4 pixels x (2 g_channels) features at 16x16 (two upsamplings), plus
  # the gain and bias maps of both hidden layers when they are modulated.
  modulation_rows = 2 * 3 * MODEL["g_channels"] if norm == "modulated" else 0
  assert demo_gan.latent_projection(back).shape == (
      16 * 2 * MODEL["g_channels"] + modulation_rows, MODEL["z_dim"])
  with pytest.raises(errors.UserError, match="x.npz: missing parameter"):
    demo_gan.unflatten_params({k: v for k, v in flat.items()
                               if k != "project/bias"}, template, "x.npz")
  bad = dict(flat, **{"project/bias": np.zeros(3)})
  with pytest.raises(errors.UserError, match="x.npz: project/bias has shape"):
    demo_gan.unflatten_params(bad, template, "x.npz")


def test_resolution_must_be_a_power_of_two():
  with pytest.raises(errors.UserError, match="config.model.resolution"):
    demo_gan.Generator(8, 4, 48, "batch", rngs=nnx.Rngs(0))


def test_unknown_norm_is_named():
  with pytest.raises(errors.UserError, match="config.model.g_norm: 'group'"):
    demo_gan.Generator(8, 4, 16, "group", rngs=nnx.Rngs(0))


def test_load_builtin_reports_a_missing_asset(tmp_path):
  with pytest.raises(errors.UserError, match="demo generator is missing"):
    demo_gan.load_builtin(str(tmp_path))
