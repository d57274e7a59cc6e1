"""The BigGAN generator as BigBiGAN uses it, in Flax NNX (docs/method.md section 1).

One code path for every BigGAN generator resolution (32 px test configs up to
BigGAN-512); `BigGANSpec` picks the resolution, width and latent size.

  z [B, z_dim] -> split into num_blocks + 1 equal chunks
  chunk 0 -> dense -> [B, 4, 4, ch * m_0]                       (NHWC)
  block i (i = 0..num_blocks-1), condition c_i = concat(chunk_{i+1}, e):
    h = conv0(up(relu(HyperBN0(x, c_i)))); h = conv1(relu(HyperBN1(h, c_i)))
    x = h + conv_sc(up(x))
    self-attention after the block whose output side is attention_resolution
  out = tanh(conv(relu(BN(x))))                                  in [-1, 1]

HyperBN(x, c) = (x - mean) / sqrt(var + eps) * (1 + c W_gamma) + c W_beta with
the stored (inference) statistics; e is the class embedding (one constant
vector for the unconditional BigBiGAN). Spectral normalisation is not computed
here: the converter divides every weight by its singular value once, so the
parameters are the effective weights (see gansseg_jax/convert/spectral_norm.py).

Parameters stay float32; `dtype` is the activation dtype ('bfloat16' for
speed on accelerators). In float32 every matmul/conv asks for `precision`
(config.generator.matmul_precision, `float32_precision`): full precision by
default, so accelerators do not silently drop to TF32/bf16 passes.
"""
import dataclasses
from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

# (input, output) channel multipliers of the GBlocks for each output side, as
# in BigGAN-PyTorch's G_arch; every block doubles the side, starting at 4x4.
CHANNEL_MULTIPLIERS = {
    32: ((4, 4, 4), (4, 4, 4)),
    64: ((16, 16, 8, 4), (16, 8, 4, 2)),
    128: ((16, 16, 8, 4, 2), (16, 8, 4, 2, 1)),
    256: ((16, 16, 8, 8, 4, 2), (16, 8, 8, 4, 2, 1)),
    512: ((16, 16, 8, 8, 4, 2, 1), (16, 8, 8, 4, 2, 1, 1)),
}
BOTTOM_WIDTH = 4  # Side of the first feature map.

Params = dict[str, Any]
# config.generator.matmul_precision -> precision of float32 matmuls and convs.
PRECISIONS = {"highest": jax.lax.Precision.HIGHEST,
              "high": jax.lax.Precision.HIGH,
              "default": jax.lax.Precision.DEFAULT}
_INIT_POWER_ITERATIONS = 8  # Power iterations that normalise random kernels.


@dataclasses.dataclass(frozen=True)
class BigGANSpec:
  """Architecture of one BigGAN generator; raises ValueError naming a field."""
  resolution: int  # Output side in pixels.
  z_dim: int  # Latent size, split into num_blocks + 1 equal chunks.
  ch: int  # Base channel width (G_ch).
  shared_dim: int  # Width of the class embedding fed to every HyperBN.
  attention_resolution: int  # Attention after the block of this side; 0 = none.
  bn_eps: float  # Batch-norm epsilon.

  def __post_init__(self):
    if self.resolution not in CHANNEL_MULTIPLIERS:
      raise ValueError(f"resolution: {self.resolution} is not one of "
                       f"{sorted(CHANNEL_MULTIPLIERS)}")
    if self.ch <= 0 or self.shared_dim <= 0:
      raise ValueError(f"ch: width {self.ch} and shared_dim {self.shared_dim} "
                       "must be positive")
    if self.z_dim <= 0 or self.z_dim % (self.num_blocks + 1):
      raise ValueError(f"z_dim: {self.z_dim} does not split into "
                       f"{self.num_blocks + 1} equal chunks")
    if self.attention_resolution and (
        self.attention_resolution not in self.block_resolutions):
      raise ValueError(f"attention_resolution: {self.attention_resolution} is "
                       f"not a block output side {self.block_resolutions} or 0")
    if self.attention_resolution and self.attention_channels % 8:
      raise ValueError(f"ch: attention needs channels divisible by 8, got "
                       f"{self.attention_channels}")

  @property
  def num_blocks(self) -> int:
    return len(CHANNEL_MULTIPLIERS[self.resolution][0])

  @property
  def chunk_size(self) -> int:
    return self.z_dim // (self.num_blocks + 1)

  @property
  def cond_dim(self) -> int:
    """Input width of the HyperBN linear maps: [z chunk, class embedding]."""
    return self.chunk_size + self.shared_dim

  @property
  def block_channels(self) -> tuple[tuple[int, int], ...]:
    ins, outs = CHANNEL_MULTIPLIERS[self.resolution]
    return tuple((self.ch * i, self.ch * o) for i, o in zip(ins, outs))

  @property
  def block_resolutions(self) -> tuple[int, ...]:
    return tuple(BOTTOM_WIDTH * 2 ** (i + 1) for i in range(self.num_blocks))

  @property
  def attention_block(self) -> int:
    """Index of the block followed by attention, -1 when there is none."""
    if not self.attention_resolution:
      return -1
    return self.block_resolutions.index(self.attention_resolution)

  @property
  def attention_channels(self) -> int:
    return self.block_channels[self.attention_block][1]

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> "BigGANSpec":
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


def activation_dtype(name: str) -> jnp.dtype:
  """'float32' or 'bfloat16' -> the jnp dtype; ValueError otherwise."""
  if name not in ("float32", "bfloat16"):
    raise ValueError(f"dtype: {name!r} is not 'float32' or 'bfloat16'")
  return jnp.dtype(name)


def float32_precision(name: str, dtype) -> jax.lax.Precision:
  """The precision of a generator's float32 matmuls and convolutions.

  `name` is config.generator.matmul_precision (jax.lax.Precision): 'highest'
  (TPU: six bf16 passes; GPU: the FP32 cores), 'high' (TPU: three bf16
  passes; GPU: TF32) or 'default' (TPU: one bf16 pass; GPU: TF32); CPUs
  compute float32 whatever it says. With bfloat16 activations `dtype` the
  name is not used: their few float32 dots (conditional BN gains, StyleGAN2's
  mapping and styles) keep HIGHEST, so a bfloat16 generator is the same for
  every name. ValueError names a bad name.
  """
  if name not in PRECISIONS:
    raise ValueError(f"matmul_precision: {name!r} is not one of "
                     f"{tuple(PRECISIONS)}")
  return PRECISIONS[name] if dtype == jnp.float32 else (
      jax.lax.Precision.HIGHEST)


def matmul_precision(dtype, precision=jax.lax.Precision.HIGHEST
                     ) -> jax.lax.Precision:
  """`precision` for float32 activations, one pass (DEFAULT) for bfloat16."""
  return precision if dtype == jnp.float32 else jax.lax.Precision.DEFAULT


def upsample_nearest(x: jax.Array) -> jax.Array:
  """Nearest-neighbour x2 of an NHWC map."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Conv(nnx.Module):
  """Stride-1 'SAME' convolution, kernel HWIO (TF layout)."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
               use_bias: bool, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    shape = (kernel_size, kernel_size, in_channels, out_channels)
    self.kernel = nnx.Param(jnp.zeros(shape))
    self.bias = (nnx.Param(jnp.zeros((out_channels,))) if use_bias else None)
    self.dtype = dtype
    self.precision = precision

  def __call__(self, x: jax.Array) -> jax.Array:
    y = jax.lax.conv_general_dilated(
        x.astype(self.dtype), self.kernel[...].astype(self.dtype), (1, 1),
        "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=matmul_precision(self.dtype, self.precision))
    if self.bias is not None:
      y = y + self.bias[...].astype(self.dtype)
    return y


class Dense(nnx.Module):
  """y = x W + b, W [in, out] (TF layout)."""

  def __init__(self, in_features: int, out_features: int, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    self.kernel = nnx.Param(jnp.zeros((in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.dtype = dtype
    self.precision = precision

  def __call__(self, x: jax.Array) -> jax.Array:
    return (jnp.dot(x, self.kernel[...],
                    precision=matmul_precision(self.dtype, self.precision))
            + self.bias[...])


class ConditionalBatchNorm(nnx.Module):
  """HyperBN with stored statistics (docs/method.md section 1).

  y = (x - mean) / sqrt(var + eps) * (1 + c W_gamma) + c W_beta, computed as
  x * scale + shift with per-sample scale and shift in float32.
  """

  def __init__(self, cond_dim: int, channels: int, eps: float,
               dtype=jnp.float32, precision=jax.lax.Precision.HIGHEST):
    self.gamma_kernel = nnx.Param(jnp.zeros((cond_dim, channels)))
    self.beta_kernel = nnx.Param(jnp.zeros((cond_dim, channels)))
    self.mean = nnx.Param(jnp.zeros((channels,)))
    self.var = nnx.Param(jnp.ones((channels,)))
    self.eps = eps
    self.dtype = dtype
    self.precision = precision  # Of the float32 gain and bias maps.

  def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
    prec = self.precision
    gain = 1.0 + jnp.dot(cond, self.gamma_kernel[...], precision=prec)
    bias = jnp.dot(cond, self.beta_kernel[...], precision=prec)
    scale = gain * jax.lax.rsqrt(self.var[...] + self.eps)
    shift = bias - self.mean[...] * scale
    scale = scale[:, None, None, :].astype(self.dtype)
    shift = shift[:, None, None, :].astype(self.dtype)
    return x.astype(self.dtype) * scale + shift


class BatchNorm(nnx.Module):
  """BN with stored statistics: (x - mean) / sqrt(var + eps) * scale + offset."""

  def __init__(self, channels: int, eps: float, dtype=jnp.float32):
    self.scale = nnx.Param(jnp.ones((channels,)))
    self.offset = nnx.Param(jnp.zeros((channels,)))
    self.mean = nnx.Param(jnp.zeros((channels,)))
    self.var = nnx.Param(jnp.ones((channels,)))
    self.eps = eps
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.scale[...] * jax.lax.rsqrt(self.var[...] + self.eps)
    shift = self.offset[...] - self.mean[...] * scale
    return x.astype(self.dtype) * scale.astype(self.dtype) + shift.astype(
        self.dtype)


class GBlock(nnx.Module):
  """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 + conv1x1(up(x)) (docs/method.md s1).

  The 1x1 shortcut is applied before the nearest upsampling: the two commute
  exactly and the conv then runs on 4x fewer pixels.
  """

  def __init__(self, in_channels: int, out_channels: int, cond_dim: int,
               eps: float, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    numerics = {"dtype": dtype, "precision": precision}
    self.bn0 = ConditionalBatchNorm(cond_dim, in_channels, eps, **numerics)
    self.conv0 = Conv(in_channels, out_channels, 3, True, **numerics)
    self.bn1 = ConditionalBatchNorm(cond_dim, out_channels, eps, **numerics)
    self.conv1 = Conv(out_channels, out_channels, 3, True, **numerics)
    self.conv_sc = Conv(in_channels, out_channels, 1, True, **numerics)

  def __call__(self, x: jax.Array, cond: jax.Array) -> jax.Array:
    h = upsample_nearest(jax.nn.relu(self.bn0(x, cond)))
    h = self.conv0(h)
    h = self.conv1(jax.nn.relu(self.bn1(h, cond)))
    return h + upsample_nearest(self.conv_sc(x))


class SelfAttention(nnx.Module):
  """SAGAN attention as in BigGAN (docs/method.md section 1), no biases.

  theta = x W_theta (C/8); phi = pool(x W_phi) (C/8); g = pool(x W_g) (C/2),
  pool = 2x2 max-pool; A = softmax_k(theta phi^T) over pooled positions k;
  out = x + gamma * (A g) W_o.
  """

  def __init__(self, channels: int, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    numerics = {"dtype": dtype, "precision": precision}
    self.theta = Conv(channels, channels // 8, 1, False, **numerics)
    self.phi = Conv(channels, channels // 8, 1, False, **numerics)
    self.g = Conv(channels, channels // 2, 1, False, **numerics)
    self.o_conv = Conv(channels // 2, channels, 1, False, **numerics)
    self.gamma = nnx.Param(jnp.zeros(()))
    self.dtype = dtype
    self.precision = precision

  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    prec = matmul_precision(self.dtype, self.precision)
    theta = self.theta(x).reshape(b, h * w, c // 8)
    phi = max_pool_2x2(self.phi(x)).reshape(b, h * w // 4, c // 8)
    g = max_pool_2x2(self.g(x)).reshape(b, h * w // 4, c // 2)
    logits = jnp.einsum("bqc,bkc->bqk", theta, phi, precision=prec,
                        preferred_element_type=jnp.float32)
    attn = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    o = jnp.einsum("bqk,bkc->bqc", attn, g, precision=prec)
    o = self.o_conv(o.reshape(b, h, w, c // 2))
    return x + self.gamma[...].astype(self.dtype) * o


class BigGAN(nnx.Module):
  """z [B, z_dim] -> images [B, H, W, 3] float32 in [-1, 1].

  The constructor holds placeholder values (zero kernels, identity BN); the
  real values come from the converter or from `init_params`. `precision`:
  of the float32 matmuls and convolutions (`float32_precision`).
  """

  def __init__(self, spec: BigGANSpec, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    self.spec = spec
    self.dtype = dtype
    numerics = {"dtype": dtype, "precision": precision}
    first_channels = spec.block_channels[0][0]
    self.embedding = nnx.Param(jnp.zeros((spec.shared_dim,)))
    self.z_linear = Dense(spec.chunk_size,
                          BOTTOM_WIDTH * BOTTOM_WIDTH * first_channels,
                          **numerics)
    self.blocks = nnx.List([
        GBlock(cin, cout, spec.cond_dim, spec.bn_eps, **numerics)
        for cin, cout in spec.block_channels])
    self.attention = (SelfAttention(spec.attention_channels, **numerics)
                      if spec.attention_block >= 0 else None)
    last_channels = spec.block_channels[-1][1]
    self.out_bn = BatchNorm(last_channels, spec.bn_eps, dtype=dtype)
    self.out_conv = Conv(last_channels, 3, 3, True, **numerics)

  def __call__(self, z: jax.Array) -> jax.Array:
    spec = self.spec
    z = z.astype(jnp.float32)
    chunks = jnp.split(z, spec.num_blocks + 1, axis=-1)
    embedding = jnp.broadcast_to(self.embedding[...],
                                 (z.shape[0], spec.shared_dim))
    h = self.z_linear(chunks[0]).reshape(
        z.shape[0], BOTTOM_WIDTH, BOTTOM_WIDTH, spec.block_channels[0][0])
    h = h.astype(self.dtype)
    for index, block in enumerate(self.blocks):
      h = block(h, jnp.concatenate([chunks[index + 1], embedding], axis=-1))
      if index == spec.attention_block:
        h = self.attention(h)
    h = self.out_conv(jax.nn.relu(self.out_bn(h)))
    return jnp.tanh(h.astype(jnp.float32))


def _unit_spectral_norm(rng: np.random.Generator,
                        shape: tuple[int, ...]) -> np.ndarray:
  """N(0, 1) weights divided by the top singular value of [fan_in, out]."""
  w = rng.standard_normal(shape, dtype=np.float32)
  mat = w.reshape(-1, shape[-1])
  u = np.full(shape[-1], shape[-1] ** -0.5, np.float32)
  for _ in range(_INIT_POWER_ITERATIONS):
    v = mat @ u
    v /= np.linalg.norm(v)
    u = v @ mat
    u /= np.linalg.norm(u)
  return w / np.float32(v @ mat @ u)


def init_params(spec: BigGANSpec, seed: int) -> Params:
  """Fresh random parameters, drawn with numpy (fast on CPU at full width).

  Kernels (conv, dense, HyperBN maps) are N(0, 1) divided by their spectral
  norm, which like BigGAN's orthogonal init gives valid converted (already
  spectrally normalised) weights; the embedding is N(0, 1); biases, attention
  gamma and BN statistics keep the identity values of the constructor.
  """
  rng = np.random.default_rng(seed)
  params = nnx.to_pure_dict(nnx.state(BigGAN(spec)))

  def draw(path, leaf):
    name = path[-1].key
    if name in ("kernel", "gamma_kernel", "beta_kernel"):
      return jnp.asarray(_unit_spectral_norm(rng, leaf.shape))
    if name == "embedding":
      return jnp.asarray(rng.standard_normal(leaf.shape, dtype=np.float32))
    return leaf

  return jax.tree_util.tree_map_with_path(draw, params)


def abstract_params(spec: BigGANSpec) -> Params:
  """Shapes and dtypes of the parameters, nothing allocated."""
  model = nnx.eval_shape(lambda: BigGAN(spec))
  return nnx.to_pure_dict(nnx.state(model))


def latent_projection(params: Params) -> np.ndarray:
  """Every linear map that reads z, as one matrix [n_out, z_dim] (for SeFa).

  Rows of z_linear (chunk 0) and the z rows of every HyperBN's gamma and beta
  maps (chunk i + 1 for block i), each placed in its chunk's columns, zeros
  elsewhere: W^T W is then block-diagonal, one block per chunk.
  """
  kernel = np.asarray(params["z_linear"]["kernel"])  # [chunk, n]
  chunk = kernel.shape[0]
  blocks = params["blocks"]
  z_dim = chunk * (len(blocks) + 1)
  parts = [(0, kernel.T)]
  for index in sorted(blocks):
    for bn in ("bn0", "bn1"):
      for name in ("gamma_kernel", "beta_kernel"):
        w = np.asarray(blocks[index][bn][name])[:chunk]  # z rows come first.
        parts.append((chunk * (index + 1), w.T))
  rows = []
  for start, w in parts:
    block = np.zeros((w.shape[0], z_dim), np.float32)
    block[:, start:start + chunk] = w
    rows.append(block)
  return np.concatenate(rows)


def make_generate(spec: BigGANSpec, dtype: str = "float32",
                  precision: str = "highest"
                  ) -> Callable[[Params, jax.Array], jax.Array]:
  """A pure `generate(params, z) -> images` (jit it at the call site).

  dtype: config.generator.dtype; precision: the name in
  config.generator.matmul_precision (`float32_precision`).
  """
  act_dtype = activation_dtype(dtype)
  float32 = float32_precision(precision, act_dtype)
  graphdef, abstract_state = nnx.split(nnx.eval_shape(
      lambda: BigGAN(spec, dtype=act_dtype, precision=float32)))

  def generate(params: Params, z: jax.Array) -> jax.Array:
    state = jax.tree.map(lambda leaf: leaf, abstract_state)
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)(z)

  return generate
