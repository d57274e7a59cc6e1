"""The DCGAN generator of PyTorch's DCGAN tutorial (Radford et al. 2016).

  z [B, z_dim] as a 1x1 image
  -> ConvTranspose2d(z_dim, C_1, 4, stride 1, padding 0) -> 4x4 x C_1
  -> BN -> ReLU -> ConvTranspose2d(C_1, C_2, 4, stride 2, padding 1) -> 8x8
  ...
  -> BN -> ReLU -> ConvTranspose2d(C_n, c, 4, 2, 1) -> R x R x c
  -> tanh (or sigmoid), R = 4 * 2^n, c = 3 (RGB) or 1 (gray, shown as RGB)

Batch norm runs in inference mode: y = (x - mean) / sqrt(var + eps) *
scale + offset with the stored running statistics (torch's BatchNorm2d in
eval(); eps = 1e-5, its default, which no state dict stores).

A transposed convolution with kernel k, stride s and padding p is the
ordinary convolution of the input dilated by s (s - 1 zeros between pixels),
padded by k - 1 - p on each side, with the kernel flipped in both spatial
axes and its in/out axes swapped (Dumoulin & Visin 2016, "A guide to
convolution arithmetic", section 4.5, relationship 14). The converter
(convert/dcgan_torch.py) stores the kernels already flipped and in HWIO
order, so `generate` is `lax.conv_general_dilated` with `lhs_dilation`.

Images come out in [-1, 1]: tanh as is, sigmoid mapped by 2 y - 1.
Parameters stay float32; `dtype` is the activation dtype, and float32
convolutions ask for `precision` (config.generator.matmul_precision).
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.models import biggan

KERNEL = 4  # Every layer's kernel side.
BOTTOM = 4  # Side after the first layer (1x1 latent, stride 1, padding 0).
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default.
OUTPUTS = ("tanh", "sigmoid")
OUT_CHANNELS = (3, 1)

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class DCGANSpec:
  """One DCGAN generator; ValueError names a bad field."""
  z_dim: int  # nz, the latent size.
  widths: tuple[int, ...]  # C_1 .. C_n: outputs of the hidden layers.
  out_channels: int = 3  # 3 (RGB) or 1 (gray, repeated to RGB).
  output: str = "tanh"  # The output nonlinearity: 'tanh' or 'sigmoid'.

  def __post_init__(self):
    object.__setattr__(self, "widths", tuple(int(c) for c in self.widths))
    if self.z_dim < 1 or not self.widths or min(self.widths) < 1:
      raise ValueError(f"checkpoint: nz {self.z_dim} and widths "
                       f"{self.widths} must be >= 1 (at least one hidden "
                       "layer)")
    if self.out_channels not in OUT_CHANNELS:
      raise ValueError(f"checkpoint: {self.out_channels} output channels; "
                       f"a DCGAN here makes {OUT_CHANNELS}")
    if self.output not in OUTPUTS:
      raise ValueError(f"output_activation: {self.output!r} is not one of "
                       f"{OUTPUTS}")

  @property
  def resolution(self) -> int:
    return BOTTOM * 2 ** len(self.widths)

  def layer_shapes(self) -> list[tuple[int, int]]:
    """(in, out) channels of every transposed convolution, in order."""
    ins = (self.z_dim,) + self.widths
    return list(zip(ins, self.widths + (self.out_channels,)))

  def to_dict(self) -> dict[str, Any]:
    return {"z_dim": self.z_dim, "widths": list(self.widths),
            "out_channels": self.out_channels, "output": self.output}

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "DCGANSpec":
    return cls(z_dim=int(d["z_dim"]), widths=tuple(d["widths"]),
               out_channels=int(d["out_channels"]), output=str(d["output"]))


def abstract_params(spec: DCGANSpec) -> Params:
  """Shapes and dtypes of the parameters (float32), nothing allocated.

  convs[i]: kernel [4, 4, in, out] (flipped, HWIO), bias [out];
  norms[i] (after convs[i], all but the last): scale, offset, mean, var [C].
  """
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  convs, norms = {}, {}
  for i, (cin, cout) in enumerate(spec.layer_shapes()):
    convs[i] = {"kernel": f32(KERNEL, KERNEL, cin, cout), "bias": f32(cout)}
    if i < len(spec.widths):
      norms[i] = {name: f32(cout) for name in ("scale", "offset", "mean",
                                                "var")}
  return {"convs": convs, "norms": norms}


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int, padding: int,
                   precision) -> jax.Array:
  """torch's ConvTranspose2d of NHWC x with a flipped HWIO kernel (above)."""
  edge = kernel.shape[0] - 1 - padding
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(1, 1), padding=[(edge, edge)] * 2,
      lhs_dilation=(stride, stride),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)


def _batch_norm(x: jax.Array, norm: Params) -> jax.Array:
  """Inference batch norm in float32, returned in x's dtype."""
  y = ((x.astype(jnp.float32) - norm["mean"])
       * jax.lax.rsqrt(norm["var"] + BN_EPS) * norm["scale"] + norm["offset"])
  return y.astype(x.dtype)


def forward(spec: DCGANSpec, params: Params, z: jax.Array,
            dtype=jnp.float32, precision=jax.lax.Precision.HIGHEST
            ) -> tuple[jax.Array, list[jax.Array]]:
  """(last layer's output before its nonlinearity, [each batch norm's input]).

  z [B, z_dim]; activations in `dtype`, convolutions at `precision`.
  """
  last = len(spec.widths)
  x = z.astype(dtype).reshape(z.shape[0], 1, 1, spec.z_dim)
  norm_inputs = []
  for i in range(last + 1):
    conv = params["convs"][i]
    stride, padding = (1, 0) if i == 0 else (2, 1)
    x = conv_transpose(x, conv["kernel"].astype(dtype), stride, padding,
                       precision) + conv["bias"].astype(dtype)
    if i < last:
      norm_inputs.append(x)
      x = jax.nn.relu(_batch_norm(x, params["norms"][i]))
  return x, norm_inputs


def make_generate(spec: DCGANSpec, dtype: str = "float32",
                  precision: str = "highest"
                  ) -> Callable[[Params, jax.Array], jax.Array]:
  """generate(params, z [B, z_dim]) -> images float32 [B, R, R, 3] in [-1, 1].

  dtype: activation dtype ('float32' or 'bfloat16'); precision:
  config.generator.matmul_precision (biggan.float32_precision).
  """
  act = jnp.dtype(dtype)
  conv_precision = biggan.matmul_precision(
      act, biggan.float32_precision(precision, act))

  def generate(params: Params, z: jax.Array) -> jax.Array:
    x = forward(spec, params, z, act, conv_precision)[0].astype(jnp.float32)
    images = jnp.tanh(x) if spec.output == "tanh" else (
        2.0 * jax.nn.sigmoid(x) - 1.0)
    if spec.out_channels == 1:
      images = jnp.repeat(images, 3, axis=-1)
    return images
  return generate


def latent_projection(params: Params) -> np.ndarray:
  """SeFa's W [16 C_1, z_dim]: the first layer is the only map that reads z.

  Its output pixel (i, j), channel o is sum_c z_c K[i, j, c, o], so W's rows
  are K's (i, j, o) columns (the flip only permutes rows).
  """
  kernel = np.asarray(params["convs"][0]["kernel"])  # [4, 4, z_dim, C_1]
  return kernel.transpose(0, 1, 3, 2).reshape(-1, kernel.shape[2])
