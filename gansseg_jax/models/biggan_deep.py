"""The BigGAN-deep generator (Brock et al. 2019, appendix B), Flax NNX.

TF-Hub deepmind/biggan-deep-{128,256,512}/1 as pytorch-pretrained-biggan
0.1.1 reimplements it from the module's graph (its `BigGAN`, `GenBlock`,
`BigGANBatchNorm`); z is not chunked:

  e = y W_embed                 y [B, n_classes] one-hot or a mixture
  c = concat(z, e)              fed whole to every conditional BN
  h = dense(c) -> [B, 4, 4, 16 ch]                                   (NHWC)
  2 blocks per side (the second one doubles it), attention before the first
  block that reads a map of side attention_resolution:
    t = conv1x1(relu(BN0(x, c)))          in -> in / 4 (bottleneck)
    t = conv3x3(up(relu(BN1(t, c))))
    t = conv3x3(relu(BN2(t, c)))
    t = conv1x1(relu(BN3(t, c)))          in / 4 -> out
    x = t + up(x[..., :out])              channels dropped when out = in / 2
  out = tanh(conv3x3(relu(BN(h)))[..., :3])

BN(x, c) = (x - mean_t) / sqrt(var_t + eps) * (1 + c W_gamma) + c W_beta. The
module's statistics depend on the truncation t: the package stores them at
n_stats = 51 points t = k / 50 and, between grid points, mixes the two as
`stats[k] * f + stats[k + 1] * (1 - f)` with k, f the integer and fractional
parts of t * 50 (its BigGANBatchNorm; note the weights are the reverse of a
linear interpolation). `statistics_weights` reproduces that computation
exactly, so the truncation is fixed when the generate function is built.
Spectral normalisation is applied once by the converter, as for BigGAN.
"""
import dataclasses
import math
from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.models import biggan

Params = dict[str, Any]
BOTTOM_WIDTH = biggan.BOTTOM_WIDTH
# Channel multipliers at the input of each side's pair of blocks, then the
# last output; one upsampling per pair, 4x4 -> resolution.
CHANNEL_MULTIPLIERS = {
    32: (4, 4, 2, 1),
    64: (16, 8, 4, 2, 1),
    128: (16, 16, 8, 4, 2, 1),
    256: (16, 16, 8, 8, 4, 2, 1),
    512: (16, 16, 8, 8, 4, 2, 1, 1),
}
BOTTLENECK = 4  # Middle width of a block = its input width / BOTTLENECK.


@dataclasses.dataclass(frozen=True)
class BigGANDeepSpec:
  """Architecture of one BigGAN-deep; raises ValueError naming a field."""
  resolution: int  # Output side in pixels.
  z_dim: int = 128  # Latent size; the class embedding has the same width.
  ch: int = 128  # Base channel width (channel_width).
  n_classes: int = 1000  # Length of y.
  attention_resolution: int = 64  # Attention on maps of this side; 0 = none.
  eps: float = 1e-4  # Batch-norm epsilon (the package's config.eps).
  n_stats: int = 51  # Truncation grid points of the BN statistics.

  def __post_init__(self):
    if self.resolution not in CHANNEL_MULTIPLIERS:
      raise ValueError(f"resolution: {self.resolution} is not one of "
                       f"{sorted(CHANNEL_MULTIPLIERS)}")
    if self.z_dim <= 0 or self.ch <= 0 or self.n_classes <= 0:
      raise ValueError(f"z_dim: {self.z_dim}, ch {self.ch} and n_classes "
                       f"{self.n_classes} must be positive")
    if self.eps <= 0:
      raise ValueError(f"eps: {self.eps} must be positive")
    if self.n_stats < 2:
      raise ValueError(f"n_stats: {self.n_stats} must be at least 2")
    for cin, cout, _ in self.block_layout:
      if cin % BOTTLENECK or (cin != cout and cout * 2 != cin):
        raise ValueError(f"ch: block {cin} -> {cout} channels needs an input "
                         f"divisible by {BOTTLENECK} and out = in or in / 2")
    sides = [BOTTOM_WIDTH * 2 ** i
             for i in range(len(CHANNEL_MULTIPLIERS[self.resolution]) - 1)]
    if self.attention_resolution and self.attention_resolution not in sides:
      raise ValueError(f"attention_resolution: {self.attention_resolution} "
                       f"is not a block input side {sides} or 0")
    if self.attention_resolution and self.attention_channels % 8:
      raise ValueError(f"ch: attention needs channels divisible by 8, got "
                       f"{self.attention_channels}")

  @property
  def cond_dim(self) -> int:
    return 2 * self.z_dim

  @property
  def block_layout(self) -> tuple[tuple[int, int, bool], ...]:
    """(in channels, out channels, upsample) of every block in order."""
    mults = CHANNEL_MULTIPLIERS[self.resolution]
    layout = []
    for cin, cout in zip(mults[:-1], mults[1:]):
      layout += [(self.ch * cin, self.ch * cin, False),
                 (self.ch * cin, self.ch * cout, True)]
    return tuple(layout)

  @property
  def attention_position(self) -> int:
    """Index of the block that attention precedes, -1 when there is none."""
    if not self.attention_resolution:
      return -1
    return 2 * int(math.log2(self.attention_resolution // BOTTOM_WIDTH))

  @property
  def attention_channels(self) -> int:
    return self.block_layout[self.attention_position][0]

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> "BigGANDeepSpec":
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


def statistics_weights(truncation: float, n_stats: int
                       ) -> tuple[int, int, float, float]:
  """(k0, k1, w0, w1): BN stats at `truncation` are w0 s[k0] + w1 s[k1].

  pytorch-pretrained-biggan's BigGANBatchNorm: f, k = modf(t / step) with
  step = 1 / (n_stats - 1); s[k] on the grid (f == 0), else
  s[k] * f + s[k + 1] * (1 - f).
  """
  if not 0.0 < truncation <= 1.0:
    raise ValueError(f"truncation: {truncation} is not in (0, 1]")
  coef, start = math.modf(truncation / (1.0 / (n_stats - 1)))
  start = int(start)
  if coef == 0.0:
    return start, start, 1.0, 0.0
  return start, start + 1, coef, 1.0 - coef


class TruncationBatchNorm(nnx.Module):
  """BN with statistics per truncation grid point, [n_stats, C] each.

  Conditional (cond_dim > 0): gain 1 + c W_gamma and bias c W_beta, as
  biggan.ConditionalBatchNorm; else a learned scale and offset.
  """

  def __init__(self, cond_dim: int, channels: int, n_stats: int, eps: float,
               dtype=jnp.float32, precision=jax.lax.Precision.HIGHEST):
    if cond_dim:
      self.gamma_kernel = nnx.Param(jnp.zeros((cond_dim, channels)))
      self.beta_kernel = nnx.Param(jnp.zeros((cond_dim, channels)))
    else:
      self.scale = nnx.Param(jnp.ones((channels,)))
      self.offset = nnx.Param(jnp.zeros((channels,)))
    self.mean = nnx.Param(jnp.zeros((n_stats, channels)))
    self.var = nnx.Param(jnp.ones((n_stats, channels)))
    self.conditional = bool(cond_dim)
    self.eps = eps
    self.dtype = dtype
    self.precision = precision  # Of the float32 gain and bias maps.

  def __call__(self, x: jax.Array, weights: tuple, cond=None) -> jax.Array:
    k0, k1, w0, w1 = weights
    mean = self.mean[k0] * w0 + self.mean[k1] * w1
    var = self.var[k0] * w0 + self.var[k1] * w1
    prec = self.precision
    if self.conditional:
      gain = 1.0 + jnp.dot(cond, self.gamma_kernel[...], precision=prec)
      bias = jnp.dot(cond, self.beta_kernel[...], precision=prec)
    else:
      gain, bias = self.scale[...][None], self.offset[...][None]
    scale = gain * jax.lax.rsqrt(var + self.eps)
    shift = bias - mean * scale
    scale = scale[:, None, None, :].astype(self.dtype)
    shift = shift[:, None, None, :].astype(self.dtype)
    return x.astype(self.dtype) * scale + shift


class DeepGBlock(nnx.Module):
  """The bottleneck residual block (module docstring)."""

  def __init__(self, in_channels: int, out_channels: int, upsample: bool,
               spec: BigGANDeepSpec, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    mid = in_channels // BOTTLENECK
    widths = ((in_channels, mid, 1), (mid, mid, 3), (mid, mid, 3),
              (mid, out_channels, 1))
    numerics = {"dtype": dtype, "precision": precision}
    for index, (cin, cout, kernel) in enumerate(widths):
      setattr(self, f"bn{index}", TruncationBatchNorm(
          spec.cond_dim, cin, spec.n_stats, spec.eps, **numerics))
      setattr(self, f"conv{index}", biggan.Conv(cin, cout, kernel, True,
                                                **numerics))
    self.out_channels = out_channels
    self.upsample = upsample

  def __call__(self, x: jax.Array, cond: jax.Array, weights: tuple
               ) -> jax.Array:
    h = self.conv0(jax.nn.relu(self.bn0(x, weights, cond)))
    h = jax.nn.relu(self.bn1(h, weights, cond))
    if self.upsample:
      h = biggan.upsample_nearest(h)
    h = self.conv1(h)
    h = self.conv2(jax.nn.relu(self.bn2(h, weights, cond)))
    h = self.conv3(jax.nn.relu(self.bn3(h, weights, cond)))
    skip = x[..., :self.out_channels]
    if self.upsample:
      skip = biggan.upsample_nearest(skip)
    return h + skip


class BigGANDeep(nnx.Module):
  """(z [B, z_dim], y [B, n_classes]) -> images [B, H, W, 3] in [-1, 1]."""

  def __init__(self, spec: BigGANDeepSpec, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    self.spec = spec
    self.dtype = dtype
    self.precision = precision  # Of float32 matmuls (biggan.float32_precision).
    numerics = {"dtype": dtype, "precision": precision}
    bottom = spec.block_layout[0][0]
    self.embedding = nnx.Param(jnp.zeros((spec.n_classes, spec.z_dim)))
    self.z_linear = biggan.Dense(spec.cond_dim,
                                 BOTTOM_WIDTH * BOTTOM_WIDTH * bottom,
                                 **numerics)
    self.blocks = nnx.List([
        DeepGBlock(cin, cout, up, spec, **numerics)
        for cin, cout, up in spec.block_layout])
    self.attention = (
        biggan.SelfAttention(spec.attention_channels, **numerics)
        if spec.attention_position >= 0 else None)
    last = spec.block_layout[-1][1]
    self.out_bn = TruncationBatchNorm(0, last, spec.n_stats, spec.eps,
                                      **numerics)
    self.out_conv = biggan.Conv(last, 3, 3, True, **numerics)

  def __call__(self, z: jax.Array, y: jax.Array, weights: tuple
               ) -> jax.Array:
    """`weights` = statistics_weights(truncation) (plain or traced values)."""
    spec = self.spec
    z = z.astype(jnp.float32)
    embedding = jnp.dot(y.astype(jnp.float32), self.embedding[...],
                        precision=self.precision)
    cond = jnp.concatenate([z, embedding], axis=-1)
    h = self.z_linear(cond).reshape(z.shape[0], BOTTOM_WIDTH, BOTTOM_WIDTH,
                                    spec.block_layout[0][0])
    h = h.astype(self.dtype)
    for index, block in enumerate(self.blocks):
      if index == spec.attention_position:
        h = self.attention(h)
      h = block(h, cond, weights)
    h = self.out_conv(jax.nn.relu(self.out_bn(h, weights)))
    return jnp.tanh(h.astype(jnp.float32))


def init_params(spec: BigGANDeepSpec, seed: int) -> Params:
  """Random weights drawn with numpy from `seed`.

  Kernels are N(0, 1) over their spectral norm (as biggan.init_params), the
  class embedding N(0, 1); biases, attention gamma and BN statistics keep the
  constructor's identity values (mean 0, var 1 at every truncation).
  """
  rng = np.random.default_rng(seed)
  params = nnx.to_pure_dict(nnx.state(BigGANDeep(spec)))

  def draw(path, leaf):
    name = path[-1].key
    if name == "embedding":
      return jnp.asarray(rng.standard_normal(leaf.shape, dtype=np.float32))
    if name in ("kernel", "gamma_kernel", "beta_kernel"):
      unit = biggan._unit_spectral_norm  # pylint: disable=protected-access
      return jnp.asarray(unit(rng, leaf.shape))
    return leaf

  return jax.tree_util.tree_map_with_path(draw, params)


def abstract_params(spec: BigGANDeepSpec) -> Params:
  """Shapes and dtypes of the parameters, nothing allocated."""
  return nnx.to_pure_dict(nnx.state(nnx.eval_shape(lambda: BigGANDeep(spec))))


def latent_projection(params: Params) -> np.ndarray:
  """Every linear map that reads z, as one matrix [n_out, z_dim] (for SeFa).

  z is not chunked: the z rows (the first z_dim of the condition [z, e]) of
  the first dense layer and of every conditional BN's gamma and beta maps.
  """
  z_dim = np.asarray(params["embedding"]).shape[1]
  rows = [np.asarray(params["z_linear"]["kernel"])[:z_dim].T]
  blocks = params["blocks"]
  for index in sorted(blocks):
    for bn in ("bn0", "bn1", "bn2", "bn3"):
      for name in ("gamma_kernel", "beta_kernel"):
        rows.append(np.asarray(blocks[index][bn][name])[:z_dim].T)
  return np.concatenate(rows).astype(np.float32)


def make_forward(spec: BigGANDeepSpec, dtype: str = "float32",
                 precision: str = "highest") -> Callable[..., jax.Array]:
  """A pure `forward(params, z, y, weights) -> images` for any truncation.

  `weights` is `statistics_weights(truncation, spec.n_stats)`, computed on
  the host (it must follow the package's float64 arithmetic exactly) and
  passed as values, so one compiled function serves every truncation.
  dtype, precision: as biggan.make_generate's.
  """
  act_dtype = biggan.activation_dtype(dtype)
  float32 = biggan.float32_precision(precision, act_dtype)
  graphdef, abstract_state = nnx.split(nnx.eval_shape(
      lambda: BigGANDeep(spec, dtype=act_dtype, precision=float32)))

  def forward(params: Params, z: jax.Array, y: jax.Array,
              weights: tuple) -> jax.Array:
    state = jax.tree.map(lambda leaf: leaf, abstract_state)
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)(z, y, weights)

  return forward


def make_generate(spec: BigGANDeepSpec, dtype: str = "float32",
                  truncation: float = 1.0, precision: str = "highest"
                  ) -> Callable[[Params, jax.Array, jax.Array], jax.Array]:
  """A pure `generate(params, z, y) -> images` at a fixed truncation.

  The truncation picks the BN statistics (module docstring); z itself should
  be drawn as `imagenet_biggan.truncated_z` with the same truncation.
  """
  forward = make_forward(spec, dtype, precision)
  weights = statistics_weights(truncation, spec.n_stats)

  def generate(params: Params, z: jax.Array, y: jax.Array) -> jax.Array:
    return forward(params, z, y, weights)

  return generate
