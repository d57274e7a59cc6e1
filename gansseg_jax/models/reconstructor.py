"""Reconstructors of latent-direction discovery (Voynov & Babenko 2020).

The reconstructor R sees an image pair (G(z), G(z + A(eps e_k))) stacked along
channels ([B, H, W, 6]) and predicts which of the K directions moved z (K
logits) and by how much (the scalar eps) — docs/method.md section 2.

Two architectures, as in the authors' GANLatentDiscovery code:
- `LeNetReconstructor` for small images: three 5x5 convolutions of width
  3w, 8w, 60w (w = `width`, 2 in the authors' code), each followed by batch
  norm and ReLU, the first two by a 2x2 max pool; a global mean over space;
  two linear heads. Convolutions use 'SAME' padding (the authors' 'VALID'
  LeNet needs >= 32 px inputs; 'SAME' works for any size >= 4).
- `ResNet18Reconstructor` for 128 px images: torchvision's ResNet-18 with a
  6-channel stem (7x7 stride-2 convolution, batch norm, ReLU, 3x3 stride-2 max
  pool; four stages of two basic blocks, widths w, 2w, 4w, 8w with w = 64,
  strides 1, 2, 2, 2; global average pool) and the same two heads.

Both return `(logits [B, K], shift [B])` and are in training mode (batch
statistics) by default; batch-norm momentum and epsilon are arguments.
"""
import flax.nnx as nnx
import jax
import jax.numpy as jnp


class LeNetReconstructor(nnx.Module):
  """LeNet-style R: pair [B, H, W, 6] -> (logits [B, K], shift [B])."""

  def __init__(self, num_directions: int, width: int, bn_momentum: float,
               bn_eps: float, *, rngs: nnx.Rngs):
    widths = (3 * width, 8 * width, 60 * width)
    in_widths = (6,) + widths[:-1]
    self.convs = nnx.List([
        nnx.Conv(i, o, (5, 5), padding="SAME", rngs=rngs)
        for i, o in zip(in_widths, widths)])
    self.norms = nnx.List([
        nnx.BatchNorm(o, momentum=bn_momentum, epsilon=bn_eps, rngs=rngs)
        for o in widths])
    self.logits_head = nnx.Linear(widths[-1], num_directions, rngs=rngs)
    self.shift_head = nnx.Linear(widths[-1], 1, rngs=rngs)

  def __call__(self, pair: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = pair
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      x = nnx.relu(norm(conv(x)))
      if i < len(self.convs) - 1:
        x = nnx.max_pool(x, (2, 2), strides=(2, 2))
    features = jnp.mean(x, axis=(1, 2))
    return self.logits_head(features), self.shift_head(features)[:, 0]


class BasicBlock(nnx.Module):
  """ResNet basic block: two 3x3 conv + BN, identity or 1x1-conv shortcut."""

  def __init__(self, in_features: int, out_features: int, stride: int,
               bn_momentum: float, bn_eps: float, *, rngs: nnx.Rngs):
    def norm(features):
      return nnx.BatchNorm(features, momentum=bn_momentum, epsilon=bn_eps,
                           rngs=rngs)
    self.conv1 = nnx.Conv(in_features, out_features, (3, 3), (stride, stride),
                          padding=1, use_bias=False, rngs=rngs)
    self.norm1 = norm(out_features)
    self.conv2 = nnx.Conv(out_features, out_features, (3, 3), padding=1,
                          use_bias=False, rngs=rngs)
    self.norm2 = norm(out_features)
    if stride != 1 or in_features != out_features:
      self.shortcut_conv = nnx.Conv(in_features, out_features, (1, 1),
                                    (stride, stride), use_bias=False, rngs=rngs)
      self.shortcut_norm = norm(out_features)
    else:
      self.shortcut_conv = None
      self.shortcut_norm = None

  def __call__(self, x: jax.Array) -> jax.Array:
    y = nnx.relu(self.norm1(self.conv1(x)))
    y = self.norm2(self.conv2(y))
    if self.shortcut_conv is not None:
      x = self.shortcut_norm(self.shortcut_conv(x))
    return nnx.relu(x + y)


class ResNet18Reconstructor(nnx.Module):
  """ResNet-18 R with a 6-channel stem: pair -> (logits [B, K], shift [B])."""

  def __init__(self, num_directions: int, width: int, bn_momentum: float,
               bn_eps: float, *, rngs: nnx.Rngs):
    self.stem = nnx.Conv(6, width, (7, 7), (2, 2), padding=3, use_bias=False,
                         rngs=rngs)
    self.stem_norm = nnx.BatchNorm(width, momentum=bn_momentum, epsilon=bn_eps,
                                   rngs=rngs)
    blocks = []
    in_features = width
    for stage, out_features in enumerate((width, 2 * width, 4 * width,
                                          8 * width)):
      for block in range(2):
        stride = 2 if stage > 0 and block == 0 else 1
        blocks.append(BasicBlock(in_features, out_features, stride,
                                 bn_momentum, bn_eps, rngs=rngs))
        in_features = out_features
    self.blocks = nnx.List(blocks)
    self.logits_head = nnx.Linear(in_features, num_directions, rngs=rngs)
    self.shift_head = nnx.Linear(in_features, 1, rngs=rngs)

  def __call__(self, pair: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = nnx.relu(self.stem_norm(self.stem(pair)))
    x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for block in self.blocks:
      x = block(x)
    features = jnp.mean(x, axis=(1, 2))
    return self.logits_head(features), self.shift_head(features)[:, 0]
