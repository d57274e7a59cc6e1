"""The BigBiGAN encoder E (ResNet-50 trunk + MLP head) in Flax NNX.

docs/method.md sections 1 and 5. E maps images [B, H, W, 3] in [-1, 1]
(256 x 256 for BigBiGAN) to the latent distribution it was trained with:

  trunk: conv7x7/2 -> maxpool3x3/2 -> 4 groups of bottleneck units -> mean
         over H, W = `avepool_feat` [B, 4 * width * 8]
  head:  `bn_crelu_feat` = CReLU(BN(avepool_feat)) [B, 2 * 2048], then dense
         layers with ReLU between them; the last gives [B, 2 * z_dim] =
         (z_mean, s), z_stdev = softplus(s)

The module's variable names are not published, so this architecture is the
converter's hypothesis, checked against the module's own `encode` signature
before anything is written (gansseg_jax/convert/encoder_map.py): bottleneck
version 'v1' (post-activation) or 'v2' (pre-activation, final BN-ReLU), stride
2 on the 3x3 conv of the first unit of groups 2-4, 'SAME' padding, no conv
biases, BN with stored statistics. When the check fails the `embed` stage runs
the TF-Hub signature instead.
"""
import dataclasses
from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp

_HI = jax.lax.Precision.HIGHEST
VERSIONS = ("v1", "v2")


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
  """Architecture of one encoder; raises ValueError naming a field."""
  version: str  # 'v1' or 'v2' bottleneck units.
  width: int  # Stem channels; group g has width * 2^g (x4 at its output).
  blocks: tuple[int, ...]  # Units per group, (3, 4, 6, 3) for ResNet-50.
  head_widths: tuple[int, ...]  # Dense widths after bn_crelu_feat; 2 z_dim last.
  bn_eps: float

  def __post_init__(self):
    if self.version not in VERSIONS:
      raise ValueError(f"version: {self.version!r} not in {VERSIONS}")
    if not self.blocks or min(self.blocks) < 1 or self.width < 1:
      raise ValueError(f"blocks: {self.blocks} / width {self.width} invalid")
    if not self.head_widths or self.head_widths[-1] % 2:
      raise ValueError(f"head_widths: {self.head_widths} must end with an "
                       "even width (z_mean and z_stdev)")

  @property
  def z_dim(self) -> int:
    return self.head_widths[-1] // 2

  def group_channels(self, group: int) -> tuple[int, int]:
    """(bottleneck width, output channels) of a group."""
    mid = self.width * 2 ** group
    return mid, 4 * mid

  @property
  def feature_dim(self) -> int:
    return self.group_channels(len(self.blocks) - 1)[1]

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> "EncoderSpec":
    return cls(version=values["version"], width=values["width"],
               blocks=tuple(values["blocks"]),
               head_widths=tuple(values["head_widths"]),
               bn_eps=values["bn_eps"])


class Conv(nnx.Module):
  """'SAME' convolution without bias, kernel HWIO."""

  def __init__(self, cin: int, cout: int, size: int, stride: int):
    self.kernel = nnx.Param(jnp.zeros((size, size, cin, cout)))
    self.stride = stride

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, self.kernel[...], (self.stride, self.stride), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HI)


class BatchNorm(nnx.Module):
  """(x - mean) / sqrt(var + eps) * scale + offset, stored statistics."""

  def __init__(self, channels: int, eps: float):
    self.scale = nnx.Param(jnp.ones((channels,)))
    self.offset = nnx.Param(jnp.zeros((channels,)))
    self.mean = nnx.Param(jnp.zeros((channels,)))
    self.var = nnx.Param(jnp.ones((channels,)))
    self.eps = eps

  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.scale[...] * jax.lax.rsqrt(self.var[...] + self.eps)
    return x * scale + (self.offset[...] - self.mean[...] * scale)


class Dense(nnx.Module):

  def __init__(self, cin: int, cout: int):
    self.kernel = nnx.Param(jnp.zeros((cin, cout)))
    self.bias = nnx.Param(jnp.zeros((cout,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.dot(x, self.kernel[...], precision=_HI) + self.bias[...]


class Bottleneck(nnx.Module):
  """1x1 -> 3x3 (stride) -> 1x1 with a projection shortcut when needed.

  v1: out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + sc(x)),
      sc = shortcut_bn(shortcut(x)) or x.
  v2: p = relu(preact_bn(x));
      out = conv3(relu(bn2(conv2(relu(bn1(conv1(p))))))) + sc,
      sc = shortcut(p) or x.
  """

  def __init__(self, version: str, cin: int, mid: int, cout: int, stride: int,
               eps: float):
    self.version = version
    if version == "v2":
      self.preact_bn = BatchNorm(cin, eps)
    self.conv1 = Conv(cin, mid, 1, 1)
    self.bn1 = BatchNorm(mid, eps)
    self.conv2 = Conv(mid, mid, 3, stride)
    self.bn2 = BatchNorm(mid, eps)
    self.conv3 = Conv(mid, cout, 1, 1)
    if version == "v1":
      self.bn3 = BatchNorm(cout, eps)
    self.projection = cin != cout or stride != 1
    if self.projection:
      self.shortcut = Conv(cin, cout, 1, stride)
      if version == "v1":
        self.shortcut_bn = BatchNorm(cout, eps)

  def __call__(self, x: jax.Array) -> jax.Array:
    relu = jax.nn.relu
    if self.version == "v2":
      p = relu(self.preact_bn(x))
      sc = self.shortcut(p) if self.projection else x
      h = relu(self.bn1(self.conv1(p)))
      h = relu(self.bn2(self.conv2(h)))
      return self.conv3(h) + sc
    sc = self.shortcut_bn(self.shortcut(x)) if self.projection else x
    h = relu(self.bn1(self.conv1(x)))
    h = relu(self.bn2(self.conv2(h)))
    return relu(self.bn3(self.conv3(h)) + sc)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1),
                               (1, 2, 2, 1), "SAME")


class Encoder(nnx.Module):
  """images [B, H, W, 3] in [-1, 1] -> dict of the module's `encode` outputs.

  Keys: avepool_feat, bn_crelu_feat, z_mean, z_stdev.

  The constructor holds placeholder values; real ones come from the converter.
  """

  def __init__(self, spec: EncoderSpec):
    self.spec = spec
    self.stem = Conv(3, spec.width, 7, 2)
    if spec.version == "v1":
      self.stem_bn = BatchNorm(spec.width, spec.bn_eps)
    units = []
    cin = spec.width
    for group, count in enumerate(spec.blocks):
      mid, cout = spec.group_channels(group)
      for unit in range(count):
        stride = 2 if group > 0 and unit == 0 else 1
        units.append(Bottleneck(spec.version, cin, mid, cout, stride,
                                spec.bn_eps))
        cin = cout
    self.units = nnx.List(units)
    if spec.version == "v2":
      self.final_bn = BatchNorm(spec.feature_dim, spec.bn_eps)
    self.feature_bn = BatchNorm(spec.feature_dim, spec.bn_eps)
    widths = (2 * spec.feature_dim,) + spec.head_widths
    self.head = nnx.List([Dense(a, b) for a, b in zip(widths, widths[1:])])

  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    x = self.stem(images.astype(jnp.float32))
    if self.spec.version == "v1":
      x = jax.nn.relu(self.stem_bn(x))
    x = max_pool_3x3_s2(x)
    for unit in self.units:
      x = unit(x)
    if self.spec.version == "v2":
      x = jax.nn.relu(self.final_bn(x))
    avepool = x.mean(axis=(1, 2))
    b = self.feature_bn(avepool)
    h = crelu = jnp.concatenate([jax.nn.relu(b), jax.nn.relu(-b)], axis=-1)
    for index, dense in enumerate(self.head):
      h = dense(h)
      if index < len(self.head) - 1:
        h = jax.nn.relu(h)
    z_mean, s = jnp.split(h, 2, axis=-1)
    return {"avepool_feat": avepool, "bn_crelu_feat": crelu,
            "z_mean": z_mean, "z_stdev": jax.nn.softplus(s)}


def layer_slots(spec: EncoderSpec) -> list[tuple[tuple[Any, ...], str, tuple]]:
  """[(Flax path of a layer, 'conv' | 'bn' | 'dense', shape)] in graph order.

  Shape is the kernel's for conv/dense and (channels,) for bn. Within a unit
  the order is the conventional naming order (conv1..3, then the shortcut).
  """
  slots = [(("stem",), "conv", (7, 7, 3, spec.width))]
  if spec.version == "v1":
    slots.append((("stem_bn",), "bn", (spec.width,)))
  cin, index = spec.width, 0
  for group, count in enumerate(spec.blocks):
    mid, cout = spec.group_channels(group)
    for unit in range(count):
      stride = 2 if group > 0 and unit == 0 else 1
      path = ("units", index)
      if spec.version == "v2":
        slots.append((path + ("preact_bn",), "bn", (cin,)))
      slots += [(path + ("conv1",), "conv", (1, 1, cin, mid)),
                (path + ("bn1",), "bn", (mid,)),
                (path + ("conv2",), "conv", (3, 3, mid, mid)),
                (path + ("bn2",), "bn", (mid,)),
                (path + ("conv3",), "conv", (1, 1, mid, cout))]
      if spec.version == "v1":
        slots.append((path + ("bn3",), "bn", (cout,)))
      if cin != cout or stride != 1:
        slots.append((path + ("shortcut",), "conv", (1, 1, cin, cout)))
        if spec.version == "v1":
          slots.append((path + ("shortcut_bn",), "bn", (cout,)))
      cin, index = cout, index + 1
  if spec.version == "v2":
    slots.append((("final_bn",), "bn", (spec.feature_dim,)))
  slots.append((("feature_bn",), "bn", (spec.feature_dim,)))
  widths = (2 * spec.feature_dim,) + spec.head_widths
  slots += [(("head", i), "dense", (a, b))
            for i, (a, b) in enumerate(zip(widths, widths[1:]))]
  return slots


def abstract_params(spec: EncoderSpec) -> dict[str, Any]:
  model = nnx.eval_shape(lambda: Encoder(spec))
  return nnx.to_pure_dict(nnx.state(model))


Encode = Callable[[dict[str, Any], jax.Array], dict[str, jax.Array]]


def make_encode(spec: EncoderSpec) -> Encode:
  """A pure `encode(params, images) -> outputs` (jit it at the call site)."""
  graphdef, abstract_state = nnx.split(nnx.eval_shape(lambda: Encoder(spec)))

  def encode(params, images):
    state = jax.tree.map(lambda leaf: leaf, abstract_state)
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)(images)

  return encode
