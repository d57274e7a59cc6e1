"""StyleGAN2 config F (Karras et al. 2020) in Flax NNX, as NVlabs' code runs it.

Mapping (NVlabs training/networks.py MappingNetwork):
  w = fc_L(... fc_1(normalize_2nd_moment(z))),
  fc(x) = lrelu_0.2(x W + b) sqrt(2)
  normalize_2nd_moment(z) = z / sqrt(mean(z^2) + 1e-8)
The learning-rate multiplier (0.01) and the equalised-lr gains (1/sqrt(fan_in))
are pre-folded into the parameters by the converters (`W = W_stored *
lr_mul / sqrt(in)`, `b = b_stored * lr_mul`): the parameters here are the
effective weights, which is all inference needs. `w_avg` is the tracked mean
of w; truncation is w' = w_avg + psi (w - w_avg) on the first `cutoff` ws.

Synthesis, `num_ws` = 2 log2(R) - 2 vectors w_0.. (one per layer):
  x = const [4, 4, C_4]
  layer l (3x3 modulated conv; the first of each block from 8 px on upsamples):
    s = w_l A + b_A                                 (style, affine map)
    y = conv(x * s, W) * d,  d_o = 1/sqrt(sum_{i,k} (W_iko s_i)^2 + 1e-8)
    y = y + strength * noise                        ([H, W] map per layer)
    x = clamp(lrelu_0.2(y + b) sqrt(2), +-conv_clamp)
  toRGB of block j (skip architecture), style from w_{2j+1}:
    img = up(img) + clamp(conv1x1(x * s, W_rgb) + b, +-conv_clamp)
Up-sampling (NVlabs conv2d_resample / upfirdn2d): a stride-2 transposed 3x3
conv followed by the [1,3,3,1] FIR filter (outer product / 64, gain 4) with
one pixel of padding; the skip image is up-sampled by zero insertion and the
same filter with padding (2, 1). The modulated conv is computed unfused
(activations scaled by s before, by d after one shared conv), which equals
NVlabs' fused grouped conv up to float rounding.

Latent spaces of `make_generate` (`LATENT_SPACES`): 'z' [B, z_dim] (mapping,
truncation, synthesis), 'w' [B, w_dim] (one w for every layer) and 'w+'
[B, num_ws * w_dim] (per-layer ws, flattened so the pipeline keeps 2-D
latents). Noise: 'const' uses the stored per-layer buffers, 'random' draws
N(0, 1) maps from a key (one key for the batch, or one key per row: row i's
maps are then those of a batch of one drawn from key i), 'none' adds nothing
(NVlabs' noise_mode).

Parameters stay float32; `dtype` is the activation dtype. In float32 every
matmul/conv asks for `precision` (config.generator.matmul_precision,
biggan.float32_precision), full precision by default.
"""
import dataclasses
import math
from typing import Any, Callable, Optional

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.models import biggan

LATENT_SPACES = ("z", "w", "w+")
NOISE_MODES = ("const", "random", "none")
ARCHITECTURE = "skip"  # Config F's generator; the only one implemented.
RESAMPLE_FILTER = (1.0, 3.0, 3.0, 1.0)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
NORMALIZE_EPS = 1e-8  # normalize_2nd_moment and demodulation.
BOTTOM = 4  # Side of the constant input.

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class StyleGAN2Spec:
  """Architecture of one StyleGAN2 generator; ValueError names a bad field."""
  resolution: int  # Output side, a power of 2 in [4, 1024].
  z_dim: int  # Input latent size.
  w_dim: int  # Intermediate latent size (also the mapping layers' width).
  mapping_layers: int  # Fully connected layers of the mapping network.
  channel_base: int  # Channels at side r: min(channel_base // r, channel_max).
  channel_max: int
  conv_clamp: Optional[float] = None  # Clamp of conv outputs; None = off.

  def __post_init__(self):
    r = self.resolution
    if r < BOTTOM or r > 1024 or r & (r - 1):
      raise ValueError(f"resolution: {r} is not a power of 2 in [4, 1024]")
    for name in ("z_dim", "w_dim", "mapping_layers", "channel_max"):
      if getattr(self, name) <= 0:
        raise ValueError(f"{name}: {getattr(self, name)} must be positive")
    if self.channel_base // r <= 0:
      raise ValueError(f"channel_base: {self.channel_base} leaves no channels "
                       f"at {r} px")
    if self.conv_clamp is not None and self.conv_clamp <= 0:
      raise ValueError(f"conv_clamp: {self.conv_clamp} must be positive or "
                       "None")

  @property
  def block_resolutions(self) -> tuple[int, ...]:
    return tuple(2 ** i for i in range(2, int(math.log2(self.resolution)) + 1))

  def channels(self, side: int) -> int:
    return min(self.channel_base // side, self.channel_max)

  @property
  def num_layers(self) -> int:
    """Modulated 3x3 conv layers: 1 at 4 px, 2 per block above."""
    return 2 * len(self.block_resolutions) - 1

  @property
  def num_ws(self) -> int:
    return self.num_layers + 1

  def layer_shapes(self) -> tuple[tuple[int, int, int, bool], ...]:
    """(in channels, out channels, output side, upsamples) of each layer."""
    shapes = [(self.channels(BOTTOM), self.channels(BOTTOM), BOTTOM, False)]
    for side in self.block_resolutions[1:]:
      cin, cout = self.channels(side // 2), self.channels(side)
      shapes += [(cin, cout, side, True), (cout, cout, side, False)]
    return tuple(shapes)

  def latent_dim(self, latent_space: str) -> int:
    check_latent_space(latent_space)
    return {"z": self.z_dim, "w": self.w_dim,
            "w+": self.num_ws * self.w_dim}[latent_space]

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> "StyleGAN2Spec":
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)
                  if f.name in values})


def check_latent_space(latent_space: str) -> None:
  if latent_space not in LATENT_SPACES:
    raise ValueError(f"latent_space: {latent_space!r} is not one of "
                     f"{LATENT_SPACES}")


def _fir_kernel(channels: int, gain: float, dtype) -> jax.Array:
  """The [1,3,3,1] outer-product filter / its sum * gain, depthwise HWIO."""
  f = np.asarray(RESAMPLE_FILTER, np.float32)
  f = np.outer(f, f)
  f = f / f.sum() * gain
  f = f[::-1, ::-1]  # upfirdn2d convolves (flips); the filter is symmetric.
  return jnp.asarray(np.tile(f[:, :, None, None], (1, 1, 1, channels)), dtype)


def _depthwise(x: jax.Array, kernel: jax.Array, padding, precision,
               lhs_dilation=(1, 1)) -> jax.Array:
  return jax.lax.conv_general_dilated(
      x, kernel, (1, 1), padding, lhs_dilation=lhs_dilation,
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=x.shape[-1],
      precision=biggan.matmul_precision(x.dtype, precision))


def upsample_image(img: jax.Array, precision=jax.lax.Precision.HIGHEST
                   ) -> jax.Array:
  """NVlabs upsample2d: zeros after each pixel, pad (2, 1), FIR with gain 4.

  lhs_dilation inserts zeros between pixels only, so the trailing zero row
  and column become one more pixel of padding after: (2, 2).
  """
  kernel = _fir_kernel(img.shape[-1], 4.0, img.dtype)
  return _depthwise(img, kernel, ((2, 2), (2, 2)), precision,
                    lhs_dilation=(2, 2))


def lrelu_gain_clamp(x: jax.Array, clamp: Optional[float]) -> jax.Array:
  """NVlabs bias_act 'lrelu' after the bias: lrelu(x) * sqrt(2), clamped."""
  x = jnp.where(x >= 0, x, x * LRELU_SLOPE) * LRELU_GAIN
  return x if clamp is None else jnp.clip(x, -clamp, clamp)


class Dense(nnx.Module):
  """y = x W + b in float32, W [in, out] (effective weights, gains folded)."""

  def __init__(self, in_features: int, out_features: int, precision):
    self.kernel = nnx.Param(jnp.zeros((in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.precision = precision

  def __call__(self, x: jax.Array) -> jax.Array:
    return (jnp.dot(x.astype(jnp.float32), self.kernel[...],
                    precision=self.precision) + self.bias[...])


class MappingNetwork(nnx.Module):
  """z [B, z_dim] -> w [B, w_dim] (normalize, then fc + lrelu * sqrt(2))."""

  def __init__(self, spec: StyleGAN2Spec, precision):
    widths = [spec.z_dim] + [spec.w_dim] * spec.mapping_layers
    self.layers = nnx.List([Dense(a, b, precision)
                            for a, b in zip(widths, widths[1:])])

  def __call__(self, z: jax.Array) -> jax.Array:
    x = z.astype(jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=1, keepdims=True)
                          + NORMALIZE_EPS)
    for layer in self.layers:
      x = lrelu_gain_clamp(layer(x), None)
    return x


class SynthesisLayer(nnx.Module):
  """Modulated, demodulated 3x3 conv (optionally x2 up) + noise + bias + act."""

  def __init__(self, in_channels: int, out_channels: int, w_dim: int,
               side: int, up: bool, clamp: Optional[float], dtype, precision):
    self.affine = Dense(w_dim, in_channels, precision)
    self.weight = nnx.Param(jnp.zeros((3, 3, in_channels, out_channels)))
    self.bias = nnx.Param(jnp.zeros((out_channels,)))
    self.noise_strength = nnx.Param(jnp.zeros(()))
    self.noise_const = nnx.Param(jnp.zeros((side, side)))
    self.up = up
    self.clamp = clamp
    self.dtype = dtype
    self.precision = precision

  def __call__(self, x: jax.Array, w: jax.Array,
               noise: Optional[jax.Array]) -> jax.Array:
    styles = self.affine(w)  # [B, in]
    weight = self.weight[...]
    dcoefs = jax.lax.rsqrt(jnp.einsum(
        "bi,hwio->bo", styles * styles, weight * weight,
        precision=self.precision) + NORMALIZE_EPS)  # [B, out]
    x = x * styles[:, None, None, :].astype(self.dtype)
    prec = biggan.matmul_precision(self.dtype, self.precision)
    if self.up:  # Transposed conv = dilated input, flipped kernel, pad k-1.
      x = jax.lax.conv_general_dilated(
          x, weight[::-1, ::-1].astype(self.dtype), (1, 1), ((2, 2), (2, 2)),
          lhs_dilation=(2, 2), dimension_numbers=("NHWC", "HWIO", "NHWC"),
          precision=prec)
      x = _depthwise(x, _fir_kernel(x.shape[-1], 4.0, self.dtype),
                     ((1, 1), (1, 1)), self.precision)
    else:
      x = jax.lax.conv_general_dilated(
          x, weight.astype(self.dtype), (1, 1), ((1, 1), (1, 1)),
          dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=prec)
    x = x * dcoefs[:, None, None, :].astype(self.dtype)
    if noise is not None:
      x = x + (noise * self.noise_strength[...])[..., None].astype(self.dtype)
    return lrelu_gain_clamp(x + self.bias[...].astype(self.dtype), self.clamp)


class ToRGB(nnx.Module):
  """Modulated 1x1 conv to RGB without demodulation, + bias, clamped."""

  def __init__(self, in_channels: int, w_dim: int, clamp: Optional[float],
               dtype, precision):
    self.affine = Dense(w_dim, in_channels, precision)
    self.weight = nnx.Param(jnp.zeros((in_channels, 3)))
    self.bias = nnx.Param(jnp.zeros((3,)))
    self.clamp = clamp
    self.dtype = dtype
    self.precision = precision

  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    styles = self.affine(w)
    x = x * styles[:, None, None, :].astype(self.dtype)
    y = jnp.einsum("bhwi,io->bhwo", x, self.weight[...].astype(self.dtype),
                   precision=biggan.matmul_precision(self.dtype,
                                                     self.precision),
                   preferred_element_type=jnp.float32) + self.bias[...]
    return y if self.clamp is None else jnp.clip(y, -self.clamp, self.clamp)


class StyleGAN2(nnx.Module):
  """Mapping + synthesis; `synthesize(ws, noise)` -> images [B, R, R, 3].

  The constructor holds placeholder zeros; the real values come from a
  converter or `init_params`. `precision`: of the float32 matmuls and
  convolutions (biggan.float32_precision).
  """

  def __init__(self, spec: StyleGAN2Spec, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    self.spec = spec
    self.dtype = dtype
    self.precision = precision
    self.mapping = MappingNetwork(spec, precision)
    self.w_avg = nnx.Param(jnp.zeros((spec.w_dim,)))
    self.const = nnx.Param(jnp.zeros((BOTTOM, BOTTOM, spec.channels(BOTTOM))))
    self.layers = nnx.List([
        SynthesisLayer(cin, cout, spec.w_dim, side, up, spec.conv_clamp, dtype,
                       precision)
        for cin, cout, side, up in spec.layer_shapes()])
    self.torgbs = nnx.List([
        ToRGB(spec.channels(side), spec.w_dim, spec.conv_clamp, dtype,
              precision)
        for side in spec.block_resolutions])

  def truncate(self, ws: jax.Array, psi: float,
               cutoff: Optional[int]) -> jax.Array:
    """w_avg + psi (w - w_avg) on ws[:, :cutoff] (all when cutoff is None)."""
    if psi == 1:
      return ws
    w_avg = self.w_avg[...]
    truncated = w_avg + psi * (ws - w_avg)
    if cutoff is None:
      return truncated
    return ws.at[:, :cutoff].set(truncated[:, :cutoff])

  def synthesize(self, ws: jax.Array,
                 noise: Optional[list[jax.Array]]) -> jax.Array:
    """ws [B, num_ws, w_dim], noise: one [B or 1, side, side] per layer."""
    ws = ws.astype(jnp.float32)
    x = jnp.broadcast_to(self.const[...].astype(self.dtype),
                         (ws.shape[0],) + self.const.shape)
    img = None
    for index, layer in enumerate(self.layers):
      x = layer(x, ws[:, index], None if noise is None else noise[index])
      if index % 2 == 0:  # The last layer of block index // 2.
        block = index // 2
        y = self.torgbs[block](x, ws[:, 2 * block + 1])
        img = y if img is None else upsample_image(img, self.precision) + y
    return img.astype(jnp.float32)


def _per_row(key: jax.Array) -> bool:
  """Whether `key` is one typed key per row ([B] of jax.random.key)."""
  return (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
          and key.ndim == 1)


def _noise_maps(model: StyleGAN2, mode: str, batch: int,
                key: Optional[jax.Array]) -> Optional[list[jax.Array]]:
  if mode == "none":
    return None
  if mode == "const":
    return [layer.noise_const[...][None] for layer in model.layers]
  if key is None:
    raise ValueError("noise_key: noise_mode 'random' needs a key")
  sides = [layer.noise_const.shape[0] for layer in model.layers]
  size = sum(s * s for s in sides)
  if _per_row(key):
    if key.shape != (batch,):
      raise ValueError(f"noise_key: {key.shape[0]} keys for {batch} rows")
    flat = jax.vmap(lambda k: jax.random.normal(k, (1, size))[0])(key)
  else:
    flat = jax.random.normal(key, (batch, size))
  offsets = np.cumsum([0] + [s * s for s in sides])
  return [flat[:, a:b].reshape(batch, s, s)
          for a, b, s in zip(offsets, offsets[1:], sides)]


def make_generate(spec: StyleGAN2Spec, dtype: str = "float32",
                  latent_space: str = "w", truncation_psi: float = 1.0,
                  truncation_cutoff: Optional[int] = None,
                  noise_mode: str = "const", clip_output: bool = True,
                  precision: str = "highest") -> Callable[..., jax.Array]:
  """A pure `generate(params, latents, noise_key=None) -> images [B, R, R, 3]`.

  latents are in `latent_space` ([B, spec.latent_dim(latent_space)]);
  truncation applies only in 'z' (in 'w'/'w+' the sampler truncates,
  `make_sample_latents`). StyleGAN2 has no output tanh: its raw RGB is
  nominally [-1, 1] and overshoots; with `clip_output` (the default) it is
  clipped to [-1, 1], as NVlabs' generate.py clamps when it saves images.
  `noise_key` is needed only with noise_mode 'random': one key for the
  batch, or typed keys [B] (jax.random.key), one per row. dtype, precision:
  as biggan.make_generate's.
  """
  check_latent_space(latent_space)
  if noise_mode not in NOISE_MODES:
    raise ValueError(f"noise_mode: {noise_mode!r} is not one of {NOISE_MODES}")
  act_dtype = biggan.activation_dtype(dtype)
  float32 = biggan.float32_precision(precision, act_dtype)
  graphdef, abstract_state = nnx.split(nnx.eval_shape(
      lambda: StyleGAN2(spec, dtype=act_dtype, precision=float32)))

  def generate(params: Params, latents: jax.Array,
               noise_key: Optional[jax.Array] = None) -> jax.Array:
    state = jax.tree.map(lambda leaf: leaf, abstract_state)
    nnx.replace_by_pure_dict(state, params)
    model = nnx.merge(graphdef, state)
    latents = latents.astype(jnp.float32)
    batch = latents.shape[0]
    if latent_space == "z":
      ws = jnp.broadcast_to(model.mapping(latents)[:, None],
                            (batch, spec.num_ws, spec.w_dim))
      ws = model.truncate(ws, truncation_psi, truncation_cutoff)
    elif latent_space == "w":
      ws = jnp.broadcast_to(latents[:, None], (batch, spec.num_ws, spec.w_dim))
    else:
      ws = latents.reshape(batch, spec.num_ws, spec.w_dim)
    images = model.synthesize(ws, _noise_maps(model, noise_mode, batch,
                                              noise_key))
    return jnp.clip(images, -1.0, 1.0) if clip_output else images

  return generate


def make_mapping(spec: StyleGAN2Spec, dtype: str = "float32",
                 precision: str = "highest"
                 ) -> Callable[[Params, jax.Array], jax.Array]:
  """A pure `mapping(params, z [B, z_dim]) -> w [B, w_dim]` (no truncation).

  The mapping runs in float32 at the precision that `make_generate(spec,
  dtype, precision=precision)` gives it.
  """
  float32 = biggan.float32_precision(precision,
                                     biggan.activation_dtype(dtype))
  graphdef, abstract_state = nnx.split(nnx.eval_shape(
      lambda: StyleGAN2(spec, precision=float32)))

  def mapping(params: Params, z: jax.Array) -> jax.Array:
    state = jax.tree.map(lambda leaf: leaf, abstract_state)
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state).mapping(z)

  return mapping


def make_sample_latents(spec: StyleGAN2Spec, latent_space: str,
                        psi: float = 1.0, cutoff: Optional[int] = None
                        ) -> Callable[[Params, jax.Array, int], jax.Array]:
  """`sample(params, key, n) -> latents [n, spec.latent_dim(latent_space)]`.

  z ~ N(0, I); 'z' returns z (generate truncates); 'w' returns
  w_avg + psi (mapping(z) - w_avg); 'w+' the same w for every layer (ws
  beyond `cutoff` untruncated), flattened to [n, num_ws * w_dim].
  """
  check_latent_space(latent_space)
  mapping = make_mapping(spec)

  def sample(params: Params, key: jax.Array, n: int) -> jax.Array:
    z = jax.random.normal(key, (n, spec.z_dim))
    if latent_space == "z":
      return z
    w = mapping(params, z)
    w_avg = jnp.asarray(params["w_avg"])
    truncated = w_avg + psi * (w - w_avg)
    if latent_space == "w":
      return truncated
    ws = jnp.broadcast_to(w[:, None], (n, spec.num_ws, spec.w_dim))
    limit = spec.num_ws if cutoff is None else cutoff
    ws = ws.at[:, :limit].set(truncated[:, None])
    return ws.reshape(n, spec.num_ws * spec.w_dim)

  return sample


def init_params(spec: StyleGAN2Spec, key) -> Params:
  """Random weights with the reference's initial distribution (effective form).

  Mapping kernels N(0, 1/fan_in); style affine maps N(0, 1/w_dim), bias 1
  (the toRGB ones also times 1/sqrt(in channels), NVlabs' folded gain);
  conv weights, const input and noise buffers N(0, 1); w_avg, conv biases
  and noise strengths 0, as an untrained network has them. Drawn with numpy
  seeded from `key` (a jax key or an int; fast on CPU at full width; not
  traceable).
  """
  if isinstance(key, jax.Array) and jax.dtypes.issubdtype(
      key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  rng = np.random.default_rng(np.asarray(key, np.uint32).ravel())

  def draw(path, leaf):
    names = [getattr(p, "key", getattr(p, "idx", None)) for p in path]
    name = names[-1]
    if name == "kernel":
      value = rng.standard_normal(leaf.shape) / math.sqrt(leaf.shape[0])
      if names[0] == "torgbs":
        value = value / math.sqrt(leaf.shape[1])
    elif name == "bias" and "affine" in names:
      value = np.ones(leaf.shape)
      if names[0] == "torgbs":
        value = value / math.sqrt(leaf.shape[0])
    elif name in ("weight", "const", "noise_const"):
      value = rng.standard_normal(leaf.shape)
    else:
      value = np.zeros(leaf.shape)
    return jnp.asarray(value, jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, abstract_params(spec))


def abstract_params(spec: StyleGAN2Spec) -> Params:
  """Shapes and dtypes of the parameters, nothing allocated."""
  return nnx.to_pure_dict(nnx.state(nnx.eval_shape(lambda: StyleGAN2(spec))))


def latent_projection(params: Params, latent_space: str = "w") -> np.ndarray:
  """The style (affine) weights that read w, as rows [n_out, latent_dim] (SeFa).

  As SeFa does for StyleGAN2 (genforce/sefa `factorize_weight`, layers
  'all'): the affine maps of every modulated conv layer and of the last toRGB
  layer, each output unit one row; sefa_directions then normalises the rows.
  'w': [n_out, w_dim]. 'w+': each layer's rows in the columns of the w it
  reads (conv layer l reads w_l, the last toRGB w_{num_ws - 1}), zeros
  elsewhere, so W^T W is block-diagonal as for BigGAN's chunks. 'z' has no
  linear map to read (the mapping network is not linear): ValueError.
  """
  check_latent_space(latent_space)
  if latent_space == "z":
    raise ValueError("latent_space: SeFa reads StyleGAN2's style weights in "
                     "'w' or 'w+', not 'z'")
  layers, torgbs = params["layers"], params["torgbs"]
  blocks = [np.asarray(layers[i]["affine"]["kernel"]).T
            for i in sorted(layers)]
  blocks.append(np.asarray(torgbs[max(torgbs)]["affine"]["kernel"]).T)
  if latent_space == "w":
    return np.concatenate(blocks).astype(np.float32)
  w_dim, num_ws = blocks[0].shape[1], len(blocks)
  rows = []
  for index, block in enumerate(blocks):
    placed = np.zeros((block.shape[0], num_ws * w_dim), np.float32)
    placed[:, index * w_dim:(index + 1) * w_dim] = block
    rows.append(placed)
  return np.concatenate(rows)
