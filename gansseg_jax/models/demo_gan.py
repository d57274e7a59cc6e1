"""The demo's compact DCGAN (Radford et al. 2016) and its shipped generator.

Generator: z [B, z_dim] -> linear -> 4x4 x (ch * 2^(n-1)) -> n x2 upsamplings
halving the width each time, the last one to RGB -> tanh, n = log2(resolution
/ 4). Each upsampling is a sub-pixel convolution (Shi et al. 2016: a 3x3
convolution to 4 c_out channels, then depth-to-space), which computes what a
stride-2 transposed convolution does but is several times faster to
differentiate on CPU. Each hidden layer is normalised, by `norm`:
- "batch": batch norm (Ioffe & Szegedy 2015) with batch statistics in
  training, as DCGAN has it. For inference its statistics are "standing"
  ones (Brock et al. 2019, appendix C.1): the population mean and variance of
  each feature under the trained (EMA) weights, estimated over many batches
  by `standing_statistics` and stored with the weights, so that an image
  depends on its own z only and `generate(params, z)` is a pure function;
- "pixel": pixel norm (Karras et al. 2018, x / sqrt(mean_c x^2 + 1e-8)),
  which needs no statistics at all;
- "modulated": pixel norm, then a per-channel gain and bias that are linear
  in z: y = pixel_norm(x) (1 + z W_gain) + z W_bias. This is BigGAN's
  hierarchical-z conditional batch norm (Brock et al. 2019, section 3 and
  appendix B: every block's BN gain and bias are linear in z) with pixel
  norm in place of batch norm, so it needs no statistics either. A global
  change of a feature's strength, such as the light on an object, is then
  one linear direction of z, as in BigGAN; SeFa reads all these maps
  (`latent_projection`).

Discriminator: n strided convolutions (kernel 4, stride 2, padding 1; width
ch, 2ch, ...; LeakyReLU 0.2) down to 4x4, then a 4x4 valid convolution to one
logit. Every kernel is spectrally normalised (Miyato et al. 2018): W / sigma(W),
sigma from one power iteration per training call on W reshaped to
[fan_in, out], its vector kept in a `PowerIterate` variable (not trained).

The shipped generator lives in `gansseg_jax/assets/demo_generator/`:
`params.npz` (the EMA generator's parameters, flattened with '/'-joined paths)
and `info.json` (model config, training config, seed, steps, wall time and the
command that reproduces it). `load_builtin()` loads it.
"""
import functools
import json
import math
import os
from typing import Any, Callable, Mapping

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.infra import errors

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets",
                         "demo_generator")
PARAMS_FILE = "params.npz"
INFO_FILE = "info.json"
# Path of the generator's first latent projection (SeFa's W, docs/method.md s2).
LATENT_PROJECTION = ("project", "kernel")

Params = Mapping[str, Any]
Generate = Callable[[Params, jax.Array], jax.Array]


def _num_upsamplings(resolution: int, field: str) -> int:
  n = round(math.log2(resolution / 4)) if resolution >= 8 else 0
  if n < 1 or 4 * 2**n != resolution:
    raise errors.UserError(
        f"{field}: {resolution} is not a power of two >= 8")
  return n


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """x / sqrt(mean over channels of x^2 + eps) (ProGAN's pixelwise norm)."""
  return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)


def depth_to_space(x: jax.Array) -> jax.Array:
  """[B, H, W, 4C] -> [B, 2H, 2W, C]; channel (2 dy + dx) C + c goes to (2h + dy, 2w + dx)."""
  b, h, w, c4 = x.shape
  x = x.reshape(b, h, w, 2, 2, c4 // 4).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c4 // 4)


NORMS = ("batch", "pixel", "modulated")


class StandingStat(nnx.Variable):
  """A batch-norm layer's inference mean or variance (not trained)."""


class BatchNorm(nnx.Module):
  """y = (x - mean) / sqrt(var + eps) * scale + offset, per channel.

  With `batch_stats=True` mean and var are the moments of x over its batch
  and spatial axes, and they are written to `self.mean` / `self.var`, where
  `standing_statistics` collects them; otherwise the stored ones are used.
  """

  def __init__(self, features: int, eps: float = 1e-5):
    self.scale = nnx.Param(jnp.ones((features,)))
    self.offset = nnx.Param(jnp.zeros((features,)))
    self.mean = StandingStat(jnp.zeros((features,)))
    self.var = StandingStat(jnp.ones((features,)))
    self.eps = eps

  def __call__(self, x: jax.Array, batch_stats: bool) -> jax.Array:
    if batch_stats:
      axes = tuple(range(x.ndim - 1))
      mean, var = jnp.mean(x, axis=axes), jnp.var(x, axis=axes)
      self.mean[...], self.var[...] = mean, var
    else:
      mean, var = self.mean[...], self.var[...]
    return ((x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale[...]
            + self.offset[...])


class PixelNorm(nnx.Module):
  """`pixel_norm` as a layer with the batch-norm call signature."""

  def __call__(self, x: jax.Array, batch_stats: bool) -> jax.Array:
    del batch_stats  # Pixel norm has no statistics.
    return pixel_norm(x)


class Generator(nnx.Module):
  """DCGAN generator: z [B, z_dim] -> images [B, R, R, 3] in [-1, 1].

  `batch_stats=True` (GAN training) normalises with the batch's statistics
  when `norm` is "batch"; the default uses the stored standing ones.
  """

  def __init__(self, z_dim: int, channels: int, resolution: int, norm: str, *,
               rngs: nnx.Rngs):
    n = _num_upsamplings(resolution, "config.model.resolution")
    if norm not in NORMS:
      raise errors.UserError(
          f"config.model.g_norm: {norm!r} is not one of {NORMS}")
    self.widths = tuple(channels * 2**(n - 1 - i) for i in range(n))
    self.project = nnx.Linear(z_dim, 16 * self.widths[0], rngs=rngs)
    self.ups = nnx.List([
        nnx.Conv(c_in, 4 * c_out, (3, 3), padding="SAME", rngs=rngs)
        for c_in, c_out in zip(self.widths, self.widths[1:] + (3,))])
    layer = BatchNorm if norm == "batch" else lambda _: PixelNorm()
    self.norms = nnx.List([layer(c) for c in self.widths])
    # Gain and bias maps of the "modulated" norm: z -> [gain | bias].
    self.modulations = nnx.List([
        nnx.Linear(z_dim, 2 * c, rngs=rngs) for c in self.widths
    ] if norm == "modulated" else [])

  def _hidden(self, layer: int, x: jax.Array, z: jax.Array,
              batch_stats: bool) -> jax.Array:
    """relu(norm(x)), the norm's output modulated by z when it is "modulated"."""
    x = self.norms[layer](x, batch_stats)
    if self.modulations:
      gain, bias = jnp.split(self.modulations[layer](z), 2, axis=-1)
      x = x * (1.0 + gain[:, None, None, :]) + bias[:, None, None, :]
    return nnx.relu(x)

  def __call__(self, z: jax.Array, batch_stats: bool = False) -> jax.Array:
    x = self.project(z).reshape(z.shape[0], 4, 4, self.widths[0])
    x = self._hidden(0, x, z, batch_stats)
    for layer, up in enumerate(self.ups[:-1], start=1):
      x = self._hidden(layer, depth_to_space(up(x)), z, batch_stats)
    return jnp.tanh(depth_to_space(self.ups[-1](x)))


class PowerIterate(nnx.Variable):
  """Power-iteration vector of a spectrally normalised kernel (not trained)."""


class SNConv(nnx.Module):
  """Convolution with a spectrally normalised kernel: conv(x, W / sigma(W)) + b.

  sigma(W) ~= v^T W u after one power iteration on W viewed as [fan_in, out]:
  v = normalise(W u), u' = normalise(W^T v) (Miyato et al. 2018, algorithm 1).
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: int,
               stride: int, padding: int, *, rngs: nnx.Rngs):
    shape = (kernel_size, kernel_size, in_features, out_features)
    self.kernel = nnx.Param(
        nnx.initializers.lecun_normal()(rngs.params(), shape))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.u = PowerIterate(jax.random.normal(rngs.params(), (out_features,)))
    self.stride = stride
    self.padding = padding

  def normalized_kernel(self, update_stats: bool) -> jax.Array:
    kernel = self.kernel[...]
    w = kernel.reshape(-1, kernel.shape[-1])
    u = self.u[...]
    v = _l2_normalize(w @ u)
    u_new = jax.lax.stop_gradient(_l2_normalize(w.T @ v))
    v = jax.lax.stop_gradient(v)
    sigma = v @ w @ u_new
    if update_stats:
      self.u[...] = u_new
    return kernel / sigma

  def __call__(self, x: jax.Array, update_stats: bool) -> jax.Array:
    y = jax.lax.conv_general_dilated(
        x, self.normalized_kernel(update_stats), (self.stride, self.stride),
        [(self.padding, self.padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + self.bias[...]


def _l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  return x * jax.lax.rsqrt(jnp.sum(x * x) + eps)


def minibatch_stddev(x: jax.Array) -> jax.Array:
  """x [B, H, W, C] + one channel holding the batch's mean feature std.

  Karras et al. 2018 (ProGAN), section 3: lets D see the variety of a batch,
  so a generator that collapses to one output is easy to tell apart. D must
  therefore see real and fake images in separate calls.
  """
  spread = jnp.mean(jnp.sqrt(jnp.var(x, axis=0) + 1e-8))
  return jnp.concatenate([x, jnp.full(x.shape[:-1] + (1,), spread, x.dtype)],
                         axis=-1)


class Discriminator(nnx.Module):
  """DCGAN discriminator with spectral norm and a minibatch-stddev channel
  before its head: images [B, R, R, 3] -> logits [B]."""

  def __init__(self, channels: int, resolution: int, *, rngs: nnx.Rngs):
    n = _num_upsamplings(resolution, "config.model.resolution")
    widths = (3,) + tuple(channels * 2**i for i in range(n))
    self.downs = nnx.List([
        SNConv(c_in, c_out, 4, 2, 1, rngs=rngs)
        for c_in, c_out in zip(widths[:-1], widths[1:])])
    self.head = SNConv(widths[-1] + 1, 1, 4, 1, 0, rngs=rngs)

  def __call__(self, x: jax.Array, update_stats: bool) -> jax.Array:
    for down in self.downs:
      x = nnx.leaky_relu(down(x, update_stats), 0.2)
    return self.head(minibatch_stddev(x), update_stats).reshape(x.shape[0])


def apply_generator(graphdef: nnx.GraphDef, params: Params,
                    z: jax.Array) -> jax.Array:
  """G(z) for params given as a pure nested dict (pure, jit-able)."""
  return nnx.merge(graphdef, params)(z)


def standing_statistics(graphdef: nnx.GraphDef, params: Params, stats: Params,
                        z_batches: jax.Array) -> Params:
  """Population mean and variance of every batch-norm feature under `params`.

  graphdef/params/stats: a Generator split into (nnx.Param, StandingStat);
  z_batches [K, B, z_dim]. Each batch gives per-layer moments (m_k, v_k) with
  batch statistics; with equal batch sizes the law of total variance gives
  mean = E_k[m_k], var = E_k[v_k] + Var_k[m_k]. Returns `stats`' structure.
  """
  def moments(z):
    model = nnx.merge(graphdef, params, stats)
    model(z, batch_stats=True)
    return nnx.to_pure_dict(nnx.state(model, StandingStat))

  per_batch = jax.lax.map(moments, z_batches)
  is_layer = lambda node: isinstance(node, dict) and set(node) == {"mean", "var"}
  return jax.tree.map(
      lambda layer: {"mean": jnp.mean(layer["mean"], axis=0),
                     "var": (jnp.mean(layer["var"], axis=0)
                             + jnp.var(layer["mean"], axis=0))},
      per_batch, is_leaf=is_layer)


def make_generate(graphdef: nnx.GraphDef) -> Generate:
  """`generate(params, z) -> images` of the contract, for one architecture."""
  return functools.partial(apply_generator, graphdef)


def abstract_generator(model_config: Mapping[str, Any]):
  """(graphdef, abstract params) of a Generator, without allocating weights."""
  model = nnx.eval_shape(lambda: Generator(
      model_config["z_dim"], model_config["g_channels"],
      model_config["resolution"], model_config["g_norm"], rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(model)
  return graphdef, nnx.to_pure_dict(state)


def flatten_params(params: Params) -> dict[str, np.ndarray]:
  """Nested dict -> {'a/b/c': array}, for .npz files."""
  flat = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    flat["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)] = (
        np.asarray(leaf))
  return flat


def unflatten_params(flat: Mapping[str, np.ndarray], template: Params,
                     source: str) -> Params:
  """{'a/b/c': array} -> the nested structure of `template`, shapes checked."""
  leaves = []
  paths = jax.tree_util.tree_flatten_with_path(template)[0]
  for path, leaf in paths:
    name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
    if name not in flat:
      raise errors.UserError(f"{source}: missing parameter {name}")
    value = np.asarray(flat[name], dtype=np.float32)
    if value.shape != tuple(leaf.shape):
      raise errors.UserError(
          f"{source}: {name} has shape {value.shape}, expected {leaf.shape}")
    leaves.append(jnp.asarray(value))
  extra = set(flat) - {"/".join(str(getattr(k, "key", getattr(k, "idx", k)))
                                for k in p) for p, _ in paths}
  if extra:
    raise errors.UserError(f"{source}: unexpected parameters {sorted(extra)}")
  return jax.tree.unflatten(jax.tree.structure(template), leaves)


def latent_projection(params: Params) -> jax.Array:
  """SeFa's W [out_features, z_dim]: every linear map that reads z, stacked.

  The first latent projection, then (for the "modulated" norm) each layer's
  gain and bias maps: W^T W = sum_l W_l^T W_l, the total first-order change
  of every layer that reads z (directions/sefa.py).
  """
  kernel = params
  for key in LATENT_PROJECTION:
    kernel = kernel[key]
  kernels = [kernel] + [params["modulations"][layer]["kernel"]
                        for layer in sorted(params.get("modulations", {}))]
  return jnp.concatenate([jnp.asarray(k) for k in kernels], axis=1).T


def load_builtin(asset_dir: str = ASSET_DIR) -> tuple[Generate, Params, dict]:
  """The shipped demo generator: (generate, params, info).

  generate(params, z [B, z_dim]) -> images [B, R, R, 3] in [-1, 1], pure and
  jit-able; info is `info.json` (info['model'] has z_dim and resolution).
  """
  info_path = os.path.join(asset_dir, INFO_FILE)
  params_path = os.path.join(asset_dir, PARAMS_FILE)
  for path in (info_path, params_path):
    if not os.path.isfile(path):
      raise errors.UserError(f"{path}: the built-in demo generator is missing")
  with open(info_path) as f:
    info = json.load(f)
  graphdef, template = abstract_generator(info["model"])
  with np.load(params_path) as flat:
    params = unflatten_params(dict(flat), template, params_path)
  return make_generate(graphdef), params, info
