"""The BigGAN generator's blocks against independent numpy implementations.

Each building block (SN power iteration, HyperBN, GBlock, attention) is
written again here in plain numpy (float64, explicit loops over kernel
offsets and positions) and compared with gansseg_jax.models.biggan; then the
full-width BigGAN-128 runs once (shapes, range, determinism).
"""
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gansseg_jax.convert import spectral_norm
from gansseg_jax.models import biggan

EPS = 1e-4


def random_params(module, rng):
  """The module's pure params filled with N(0, 0.5^2) (var: positive)."""
  params = nnx.to_pure_dict(nnx.state(module))

  def draw(path, leaf):
    value = rng.normal(0.0, 0.5, np.shape(leaf))
    if path[-1].key == "var":
      value = rng.uniform(0.5, 2.0, np.shape(leaf))
    return jnp.asarray(value, jnp.float32)
  return jax.tree_util.tree_map_with_path(draw, params)


def with_params(module, params):
  graphdef, state = nnx.split(module)
  nnx.replace_by_pure_dict(state, params)
  return nnx.merge(graphdef, state)


def np_conv(x, w, b=None):
  """'SAME' stride-1 conv, NHWC x HWIO, by summing over kernel offsets."""
  k = w.shape[0]
  p = k // 2
  _, h, wd, _ = x.shape
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  out = np.zeros(x.shape[:3] + (w.shape[3],))
  for i in range(k):
    for j in range(k):
      out += np.einsum("bhwc,cd->bhwd", xp[:, i:i + h, j:j + wd], w[i, j])
  return out if b is None else out + b


def np_hyper_bn(x, cond, p):
  gain = 1.0 + cond @ p["gamma_kernel"]
  bias = cond @ p["beta_kernel"]
  normalized = (x - p["mean"]) / np.sqrt(p["var"] + EPS)
  return normalized * gain[:, None, None, :] + bias[:, None, None, :]


def np_up(x):
  return x.repeat(2, axis=1).repeat(2, axis=2)


def to_np(tree):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def test_spectral_norm_planted_top_singular_vector():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(3, 3, 5, 7))
  mat = w.reshape(-1, 7)
  _, s, vt = np.linalg.svd(mat, full_matrices=False)
  # Started from the top right-singular vector, one iteration is exact.
  sigma = spectral_norm.singular_value(w, vt[0][None], EPS, "max")
  np.testing.assert_allclose(sigma, s[0], rtol=1e-10)
  normalized = spectral_norm.spectral_normalize(w, vt[0], EPS, "max")
  np.testing.assert_allclose(np.linalg.norm(normalized.reshape(-1, 7), 2), 1.0,
                             rtol=1e-6)


@pytest.mark.parametrize("mode", ["max", "add"])
def test_spectral_norm_one_iteration_by_hand(mode):
  rng = np.random.default_rng(1)
  w = rng.normal(size=(6, 4))  # [fan_in, out]
  u0 = rng.normal(size=(1, 4))

  def normalize(x):
    norm = sum(value * value for value in x.ravel()) ** 0.5
    return x / (max(norm, EPS) if mode == "max" else norm + EPS)

  v = normalize(np.array([[sum(u0[0, o] * w[i, o] for o in range(4))
                           for i in range(6)]]))
  u = normalize(np.array([[sum(v[0, i] * w[i, o] for i in range(6))
                           for o in range(4)]]))
  sigma = sum(v[0, i] * w[i, o] * u[0, o] for i in range(6) for o in range(4))
  np.testing.assert_allclose(spectral_norm.singular_value(w, u0, EPS, mode),
                             sigma, rtol=1e-12)
  # The two normalize modes differ, by ~eps / ||x||.
  tiny = u0 * 1e-5
  assert (spectral_norm.singular_value(w, tiny, EPS, "max")
          != spectral_norm.singular_value(w, tiny, EPS, "add"))


def test_conditional_batch_norm():
  rng = np.random.default_rng(2)
  module = biggan.ConditionalBatchNorm(7, 5, EPS)
  params = random_params(module, rng)
  x = rng.normal(size=(3, 4, 4, 5)).astype(np.float32)
  cond = rng.normal(size=(3, 7)).astype(np.float32)
  got = with_params(module, params)(jnp.asarray(x), jnp.asarray(cond))
  want = np_hyper_bn(x.astype(np.float64), cond.astype(np.float64),
                     to_np(params))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_gblock():
  rng = np.random.default_rng(3)
  module = biggan.GBlock(6, 4, 5, EPS)
  params = random_params(module, rng)
  x = rng.normal(size=(2, 4, 4, 6)).astype(np.float32)
  cond = rng.normal(size=(2, 5)).astype(np.float32)
  got = with_params(module, params)(jnp.asarray(x), jnp.asarray(cond))
  p = to_np(params)
  x64, c64 = x.astype(np.float64), cond.astype(np.float64)
  h = np_up(np.maximum(np_hyper_bn(x64, c64, p["bn0"]), 0))
  h = np_conv(h, p["conv0"]["kernel"], p["conv0"]["bias"])
  h = np.maximum(np_hyper_bn(h, c64, p["bn1"]), 0)
  h = np_conv(h, p["conv1"]["kernel"], p["conv1"]["bias"])
  shortcut = np_conv(np_up(x64), p["conv_sc"]["kernel"], p["conv_sc"]["bias"])
  assert got.shape == (2, 8, 8, 4)
  np.testing.assert_allclose(np.asarray(got), h + shortcut, rtol=1e-4,
                             atol=1e-4)


def test_self_attention():
  rng = np.random.default_rng(4)
  c = 16
  module = biggan.SelfAttention(c)
  params = random_params(module, rng)
  x = rng.normal(size=(2, 4, 6, c)).astype(np.float32)
  got = with_params(module, params)(jnp.asarray(x))
  p, x64 = to_np(params), x.astype(np.float64)
  b, h, w = 2, 4, 6
  theta = np_conv(x64, p["theta"]["kernel"])
  phi, g = np_conv(x64, p["phi"]["kernel"]), np_conv(x64, p["g"]["kernel"])
  want = np.empty_like(x64)
  for n in range(b):
    pooled = [(i, j) for i in range(0, h, 2) for j in range(0, w, 2)]
    phi_p = np.array([phi[n, i:i + 2, j:j + 2].max(axis=(0, 1))
                      for i, j in pooled])
    g_p = np.array([g[n, i:i + 2, j:j + 2].max(axis=(0, 1))
                    for i, j in pooled])
    o = np.empty((h, w, c // 2))
    for y in range(h):
      for xx in range(w):
        logits = phi_p @ theta[n, y, xx]
        weights = np.exp(logits - logits.max())
        o[y, xx] = (weights / weights.sum()) @ g_p
    want[n] = x64[n] + p["gamma"] * np_conv(o[None], p["o_conv"]["kernel"])[0]
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


TINY = biggan.BigGANSpec(resolution=32, z_dim=24, ch=4, shared_dim=8,
                         attention_resolution=16, bn_eps=EPS)


def test_tiny_generator_against_numpy_composition():
  rng = np.random.default_rng(5)
  params = biggan.init_params(TINY, 0)
  params["attention"]["gamma"] = jnp.float32(0.7)
  z = rng.normal(size=(2, TINY.z_dim)).astype(np.float32)
  got = jax.jit(biggan.make_generate(TINY))(params, z)
  p, z64 = to_np(params), z.astype(np.float64)
  chunks = np.split(z64, TINY.num_blocks + 1, axis=1)
  h = (chunks[0] @ p["z_linear"]["kernel"] + p["z_linear"]["bias"]).reshape(
      2, 4, 4, -1)
  for i in range(TINY.num_blocks):
    cond = np.concatenate([chunks[i + 1], np.tile(p["embedding"], (2, 1))], 1)
    block = with_params(biggan.GBlock(*TINY.block_channels[i], TINY.cond_dim,
                                      EPS),
                        jax.tree.map(jnp.asarray, p["blocks"][i]))
    h = np.asarray(block(jnp.asarray(h, jnp.float32),
                         jnp.asarray(cond, jnp.float32)), np.float64)
    if i == TINY.attention_block:
      attn = with_params(biggan.SelfAttention(TINY.attention_channels),
                         jax.tree.map(jnp.asarray, p["attention"]))
      h = np.asarray(attn(jnp.asarray(h, jnp.float32)), np.float64)
  bn = p["out_bn"]
  h = (h - bn["mean"]) / np.sqrt(bn["var"] + EPS) * bn["scale"] + bn["offset"]
  want = np.tanh(np_conv(np.maximum(h, 0), p["out_conv"]["kernel"],
                         p["out_conv"]["bias"]))
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-4)


def test_bfloat16_close_to_float32():
  params = biggan.init_params(TINY, 1)
  z = np.random.default_rng(6).normal(size=(4, TINY.z_dim)).astype(np.float32)
  full = jax.jit(biggan.make_generate(TINY, "float32"))(params, z)
  half = jax.jit(biggan.make_generate(TINY, "bfloat16"))(params, z)
  assert half.dtype == jnp.float32
  diff = np.abs(np.asarray(full) - np.asarray(half))
  assert diff.max() < 0.1 and diff.mean() < 0.02, (diff.max(), diff.mean())


def test_latent_projection_is_block_diagonal_per_chunk():
  params = biggan.init_params(TINY, 2)
  w = biggan.latent_projection(params)
  chunk = TINY.chunk_size
  assert w.shape[1] == TINY.z_dim
  kernel = np.asarray(params["z_linear"]["kernel"])
  np.testing.assert_array_equal(w[:kernel.shape[1], :chunk], kernel.T)
  assert not w[:kernel.shape[1], chunk:].any()
  gram = w.T @ w
  for a in range(TINY.num_blocks + 1):
    for b in range(TINY.num_blocks + 1):
      if a != b:
        assert not gram[a * chunk:(a + 1) * chunk,
                        b * chunk:(b + 1) * chunk].any()


@pytest.mark.parametrize("field, values", [
    ("resolution", dict(resolution=100)),
    ("z_dim", dict(z_dim=121)),
    ("attention_resolution", dict(attention_resolution=12)),
])
def test_spec_rejects_bad_fields(field, values):
  fields = dict(resolution=128, z_dim=120, ch=96, shared_dim=128,
                attention_resolution=64, bn_eps=EPS)
  fields.update(values)
  with pytest.raises(ValueError, match=field):
    biggan.BigGANSpec(**fields)


def test_full_width_biggan_128_forward():
  spec = biggan.BigGANSpec(resolution=128, z_dim=120, ch=96, shared_dim=128,
                           attention_resolution=64, bn_eps=EPS)
  assert spec.block_channels == ((1536, 1536), (1536, 768), (768, 384),
                                 (384, 192), (192, 96))
  assert (spec.chunk_size, spec.attention_block,
          spec.attention_channels) == (20, 3, 192)
  params = biggan.init_params(spec, 0)
  params["attention"]["gamma"] = jnp.float32(0.5)
  z = np.random.default_rng(7).normal(size=(2, 120)).astype(np.float32)
  generate = jax.jit(biggan.make_generate(spec))
  images = np.asarray(generate(params, z))
  again = np.asarray(generate(params, z))
  assert images.shape == (2, 128, 128, 3) and images.dtype == np.float32
  assert np.all(np.isfinite(images))
  assert images.min() >= -1.0 and images.max() <= 1.0
  assert images.std() > 1e-3  # Not a constant image.
  assert np.abs(images[0] - images[1]).max() > 1e-3  # Depends on z.
  np.testing.assert_array_equal(images, again)
