"""The class-conditional ImageNet BigGAN generator (Brock et al. 2019), NNX.

TF-Hub deepmind/biggan-{128,256,512}/2 and BigGAN-PyTorch's `Generator`
(G_ch 96, shared_dim 128, hier, G_shared; z_dim 120 / 140 / 128 for 128 / 256 /
512 px, i.e. chunks of 20 / 20 / 16). The block structure is the BigBiGAN
generator's, so the layers are `gansseg_jax.models.biggan`'s; what differs:

  e = y W_shared          y [B, n_classes]: one-hot or a class mixture
  block i reads c_i = concat(z chunk i+1, e)   (TF order; PyTorch's is [e, z])
  the output BN has its own epsilon (BigGAN-PyTorch: 1e-5, TF-Hub: 1e-4)

Truncation is not an input of the network: TF-Hub's biggan-*/2 modules (and
BigGAN-PyTorch's sampler) draw z from a normal truncated to [-2, 2] and scale
it by the truncation (`truncated_z`). `sample_classes` draws y: one class, a
list of classes or all classes, one per latent.

Parameters are those of `biggan.BigGAN` with `shared` [n_classes, shared_dim]
in place of BigBiGAN's single `embedding` row; SeFa's `latent_projection` is
BigBiGAN's (the z rows of every map that reads z).
"""
import dataclasses
from typing import Any, Callable

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.models import biggan

Params = dict[str, Any]
TRUNCATION_BOUND = 2.0  # z ~ N(0, 1) truncated to [-2, 2], times truncation.

# The published networks: (z_dim, attention side) per resolution.
PUBLISHED = {128: (120, 64), 256: (140, 128), 512: (128, 64)}


@dataclasses.dataclass(frozen=True)
class ImageNetBigGANSpec:
  """Architecture of one ImageNet BigGAN; raises ValueError naming a field."""
  resolution: int  # Output side in pixels.
  z_dim: int  # Latent size, split into num_blocks + 1 equal chunks.
  ch: int = 96  # Base channel width (G_ch).
  shared_dim: int = 128  # Width of the shared class embedding.
  n_classes: int = 1000  # Rows of the class embedding (length of y).
  attention_resolution: int = 64  # Attention after this block side; 0 = none.
  bn_eps: float = 1e-4  # Epsilon of the block (conditional) batch norms.
  output_bn_eps: float = 1e-4  # Epsilon of the last batch norm.

  def __post_init__(self):
    if self.n_classes <= 0:
      raise ValueError(f"n_classes: {self.n_classes} must be positive")
    if self.bn_eps <= 0 or self.output_bn_eps <= 0:
      raise ValueError(f"bn_eps: {self.bn_eps} and output_bn_eps "
                       f"{self.output_bn_eps} must be positive")
    _ = self.backbone  # BigGANSpec validates the other fields.

  @property
  def backbone(self) -> biggan.BigGANSpec:
    """The block structure, as the BigBiGAN generator's spec."""
    return biggan.BigGANSpec(
        resolution=self.resolution, z_dim=self.z_dim, ch=self.ch,
        shared_dim=self.shared_dim,
        attention_resolution=self.attention_resolution, bn_eps=self.bn_eps)

  @classmethod
  def published(cls, resolution: int, **overrides) -> "ImageNetBigGANSpec":
    """The TF-Hub / BigGAN-PyTorch architecture at `resolution`."""
    if resolution not in PUBLISHED:
      raise ValueError(f"resolution: {resolution} is not one of "
                       f"{sorted(PUBLISHED)}")
    z_dim, attention = PUBLISHED[resolution]
    values = dict(resolution=resolution, z_dim=z_dim,
                  attention_resolution=attention)
    values.update(overrides)
    return cls(**values)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> "ImageNetBigGANSpec":
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


class ImageNetBigGAN(nnx.Module):
  """(z [B, z_dim], y [B, n_classes]) -> images [B, H, W, 3] in [-1, 1]."""

  def __init__(self, spec: ImageNetBigGANSpec, dtype=jnp.float32,
               precision=jax.lax.Precision.HIGHEST):
    backbone = spec.backbone
    self.spec = spec
    self.dtype = dtype
    self.precision = precision  # Of float32 matmuls (biggan.float32_precision).
    numerics = {"dtype": dtype, "precision": precision}
    first_channels = backbone.block_channels[0][0]
    self.shared = nnx.Param(jnp.zeros((spec.n_classes, spec.shared_dim)))
    side = biggan.BOTTOM_WIDTH
    self.z_linear = biggan.Dense(backbone.chunk_size,
                                 side * side * first_channels, **numerics)
    self.blocks = nnx.List([
        biggan.GBlock(cin, cout, backbone.cond_dim, spec.bn_eps, **numerics)
        for cin, cout in backbone.block_channels])
    self.attention = (
        biggan.SelfAttention(backbone.attention_channels, **numerics)
        if backbone.attention_block >= 0 else None)
    last_channels = backbone.block_channels[-1][1]
    self.out_bn = biggan.BatchNorm(last_channels, spec.output_bn_eps,
                                   dtype=dtype)
    self.out_conv = biggan.Conv(last_channels, 3, 3, True, **numerics)

  def __call__(self, z: jax.Array, y: jax.Array) -> jax.Array:
    backbone = self.spec.backbone
    z = z.astype(jnp.float32)
    embedding = jnp.dot(y.astype(jnp.float32), self.shared[...],
                        precision=self.precision)
    chunks = jnp.split(z, backbone.num_blocks + 1, axis=-1)
    side = biggan.BOTTOM_WIDTH
    h = self.z_linear(chunks[0]).reshape(z.shape[0], side, side,
                                         backbone.block_channels[0][0])
    h = h.astype(self.dtype)
    for index, block in enumerate(self.blocks):
      h = block(h, jnp.concatenate([chunks[index + 1], embedding], axis=-1))
      if index == backbone.attention_block:
        h = self.attention(h)
    h = self.out_conv(jax.nn.relu(self.out_bn(h)))
    return jnp.tanh(h.astype(jnp.float32))


def init_params(spec: ImageNetBigGANSpec, seed: int) -> Params:
  """Random weights: the BigBiGAN init (spectrally normalised N(0, 1) kernels)
  and an N(0, 1) class embedding matrix, drawn with numpy from `seed`."""
  params = biggan.init_params(spec.backbone, seed)
  del params["embedding"]
  rng = np.random.default_rng([seed, 1])
  params["shared"] = jnp.asarray(rng.standard_normal(
      (spec.n_classes, spec.shared_dim), dtype=np.float32))
  return params


def abstract_params(spec: ImageNetBigGANSpec) -> Params:
  """Shapes and dtypes of the parameters, nothing allocated."""
  model = nnx.eval_shape(lambda: ImageNetBigGAN(spec))
  return nnx.to_pure_dict(nnx.state(model))


def latent_projection(params: Params) -> np.ndarray:
  """Every linear map that reads z, [n_out, z_dim] (see biggan's)."""
  return biggan.latent_projection(params)


def truncated_z(key: jax.Array, batch: int, z_dim: int,
                truncation: float) -> jax.Array:
  """z = truncation * N(0, 1) truncated to [-2, 2], [batch, z_dim] float32."""
  if not 0.0 < truncation <= 1.0:
    raise ValueError(f"truncation: {truncation} is not in (0, 1]")
  return truncation * jax.random.truncated_normal(
      key, -TRUNCATION_BOUND, TRUNCATION_BOUND, (batch, z_dim), jnp.float32)


def one_hot(classes, n_classes: int) -> jax.Array:
  """Class indices [B] -> y [B, n_classes] float32."""
  return jax.nn.one_hot(jnp.asarray(classes), n_classes, dtype=jnp.float32)


def sample_classes(key: jax.Array, batch: int, classes,
                   n_classes: int) -> jax.Array:
  """y [batch, n_classes] one-hot, a class drawn per latent.

  `classes`: None for all classes (uniform), an int for that class, or a
  list of class indices drawn from uniformly. ValueError names a bad index.
  """
  if classes is None:
    pool = np.arange(n_classes)
  else:
    pool = np.atleast_1d(np.asarray(classes))
    if pool.size == 0 or pool.ndim != 1 or not np.issubdtype(
        pool.dtype, np.integer):
      raise ValueError(f"classes: {classes!r} is not a class index or a "
                       "non-empty list of them")
    bad = pool[(pool < 0) | (pool >= n_classes)]
    if bad.size:
      raise ValueError(f"classes: {int(bad[0])} is not in [0, {n_classes})")
  drawn = jax.random.choice(key, jnp.asarray(pool), (batch,))
  return one_hot(drawn, n_classes)


def make_generate(spec: ImageNetBigGANSpec, dtype: str = "float32",
                  precision: str = "highest"
                  ) -> Callable[[Params, jax.Array, jax.Array], jax.Array]:
  """A pure `generate(params, z, y) -> images` (jit it at the call site).

  dtype, precision: as biggan.make_generate's.
  """
  act_dtype = biggan.activation_dtype(dtype)
  float32 = biggan.float32_precision(precision, act_dtype)
  graphdef, abstract_state = nnx.split(nnx.eval_shape(
      lambda: ImageNetBigGAN(spec, dtype=act_dtype, precision=float32)))

  def generate(params: Params, z: jax.Array, y: jax.Array) -> jax.Array:
    state = jax.tree.map(lambda leaf: leaf, abstract_state)
    nnx.replace_by_pure_dict(state, params)
    return nnx.merge(graphdef, state)(z, y)

  return generate
