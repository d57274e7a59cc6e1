"""The paper's U-Net (Ronneberger 2015) as the authors used it, in Flax NNX.

docs/method.md section 7. With `width` = w (64 in the paper):

  inc   DoubleConv(3 -> w)
  down  max-pool 2, DoubleConv: w -> 2w -> 4w -> 8w -> 8w
  up    bilinear x2 (align_corners=True, as torch's nn.Upsample in the authors'
        code), pad to the skip's size, concat [skip, up], DoubleConv:
        16w -> 4w, 8w -> 2w, 4w -> w, 2w -> w
  head  1x1 conv, w -> 2 logits

DoubleConv = (3x3 conv, BatchNorm, ReLU) twice. The 3x3 convs have no bias:
the BatchNorm shift right after makes one redundant (the authors' PyTorch
convs carry an unused one).

Two logits, softmax (the authors' `n_classes=2`): channel 1 is the
foreground. P(fg) = softmax(l)_1 = sigmoid(l_1 - l_0), so it is the same model
family as one sigmoid logit (the loss, 2-class cross-entropy, equals the
binary cross-entropy of l_1 - l_0); two logits keep the authors' head.
Initialisation is Flax's default (LeCun normal kernels), not PyTorch's.

Any input size works: max-pool floors odd sizes and the upsampled map is
zero-padded to its skip connection's size (as in the authors' code).

Mixed precision: `dtype` is the activation dtype; params are float32; the
logits come back in float32 so the loss is computed in float32.
"""
from typing import Optional

from flax import nnx
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

# Logit channels: 0 = background, 1 = foreground.
NUM_LOGITS = 2


class DoubleConv(nnx.Module):
  """(3x3 conv -> BatchNorm -> ReLU) x 2."""

  def __init__(self, in_channels: int, out_channels: int, *, dtype,
               bn_momentum: float, bn_eps: float, rngs: nnx.Rngs):
    def conv(cin):
      return nnx.Conv(cin, out_channels, (3, 3), padding="SAME",
                      use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                      rngs=rngs)

    def norm():
      return nnx.BatchNorm(out_channels, momentum=bn_momentum,
                           epsilon=bn_eps, dtype=dtype,
                           param_dtype=jnp.float32, rngs=rngs)

    self.conv1, self.norm1 = conv(in_channels), norm()
    self.conv2, self.norm2 = conv(out_channels), norm()

  def __call__(self, x: jax.Array, mask: Optional[jax.Array]) -> jax.Array:
    x = jax.nn.relu(self.norm1(self.conv1(x), mask=mask))
    return jax.nn.relu(self.norm2(self.conv2(x), mask=mask))


def _align_corners_matrix(n_in):
  """[2n, n] linear interpolation: output i samples input i (n-1) / (2n-1).

  A numpy constant for a known size; for a symbolic one (a shape-polymorphic
  export, gansseg_jax/export/) the same weights computed in the program.
  """
  if not isinstance(n_in, int):
    return _symbolic_align_corners_matrix(n_in)
  n_out = 2 * n_in
  pos = np.arange(n_out) * ((n_in - 1) / max(n_out - 1, 1))
  lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  frac = pos - lo
  m = np.zeros((n_out, n_in), np.float32)
  m[np.arange(n_out), lo] += 1.0 - frac
  m[np.arange(n_out), hi] += frac
  return m


def _symbolic_align_corners_matrix(n_in) -> jax.Array:
  """`_align_corners_matrix` of a symbolic size, in float32: the tent weights
  max(0, 1 - |pos_i - j|), which are 1 - frac at lo and frac at hi."""
  n_out = 2 * n_in
  scale = (jnp.asarray(n_in - 1, jnp.float32)
           / jnp.asarray(n_out - 1, jnp.float32))
  pos = lax.broadcasted_iota(jnp.float32, (n_out, n_in), 0) * scale
  inputs = lax.broadcasted_iota(jnp.float32, (n_out, n_in), 1)
  return jnp.maximum(0.0, 1.0 - jnp.abs(pos - inputs))


def upsample_bilinear_x2(x: jax.Array) -> jax.Array:
  """Bilinear x2 of NHWC `x` with align_corners=True (torch semantics).

  Separable: rows then columns, each a small constant matrix product.
  """
  rows = jnp.asarray(_align_corners_matrix(x.shape[1]), x.dtype)
  cols = jnp.asarray(_align_corners_matrix(x.shape[2]), x.dtype)
  # einsum's "ih,bhwc->biwc" and "jw,biwc->bijc" as the dot_general and
  # transpose it lowers to (jax2onnx's einsum fails on symbolic sizes).
  x = jnp.transpose(lax.dot_general(x, rows, (((1,), (1,)), ((), ()))),
                    (0, 3, 1, 2))
  return jnp.transpose(lax.dot_general(x, cols, (((2,), (1,)), ((), ()))),
                       (0, 1, 3, 2))


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, of NHWC `x`; odd known sizes are floored.

  Symbolic sizes (a shape-polymorphic export) must be even: there the pool
  is a reshape and a max, the same maxima, since jax2onnx's replacements for
  nnx.max_pool and reduce_window mistake the shape of symbolic sizes.
  """
  height, width = x.shape[1], x.shape[2]
  if isinstance(height, int) and isinstance(width, int):
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
  pairs = x.reshape(x.shape[0], height // 2, 2, width // 2, 2, x.shape[3])
  return jnp.max(pairs, axis=(2, 4))


def _pad_to(x: jax.Array, height: int, width: int) -> jax.Array:
  """Zero-pads NHWC `x` to `height` x `width`, the odd pixel at the end."""
  dh, dw = height - x.shape[1], width - x.shape[2]
  return jnp.pad(x, ((0, 0), (dh // 2, dh - dh // 2),
                     (dw // 2, dw - dw // 2), (0, 0)))


class UNet(nnx.Module):
  """The paper's U-Net; `width` = channels of the first DoubleConv (64)."""

  def __init__(self, width: int, *, dtype=jnp.float32, bn_momentum: float,
               bn_eps: float, rngs: nnx.Rngs):
    w = width
    kw = dict(dtype=dtype, bn_momentum=bn_momentum, bn_eps=bn_eps, rngs=rngs)
    self.dtype = dtype
    self.inc = DoubleConv(3, w, **kw)
    self.downs = nnx.List([DoubleConv(w, 2 * w, **kw),
                           DoubleConv(2 * w, 4 * w, **kw),
                           DoubleConv(4 * w, 8 * w, **kw),
                           DoubleConv(8 * w, 8 * w, **kw)])
    self.ups = nnx.List([DoubleConv(16 * w, 4 * w, **kw),
                         DoubleConv(8 * w, 2 * w, **kw),
                         DoubleConv(4 * w, w, **kw),
                         DoubleConv(2 * w, w, **kw)])
    self.head = nnx.Conv(w, NUM_LOGITS, (1, 1), dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)

  def __call__(self, images: jax.Array,
               sample_mask: Optional[jax.Array] = None) -> jax.Array:
    """Logits [B, H, W, 2] (float32) of `images` [B, H, W, 3] in [-1, 1].

    `sample_mask` [B] bool: in training mode, only these samples enter the
    BatchNorm batch statistics (filtered-out slots of a synthetic batch must
    not); None = all. Ignored with running averages (`model.eval()`).
    """
    mask = None if sample_mask is None else sample_mask[:, None, None, None]
    x = self.inc(images.astype(self.dtype), mask)
    skips = [x]
    for down in self.downs:
      x = down(max_pool_2x2(x), mask)
      skips.append(x)
    skips.pop()
    for up in self.ups:
      skip = skips.pop()
      x = _pad_to(upsample_bilinear_x2(x), skip.shape[1], skip.shape[2])
      x = up(jnp.concatenate([skip, x], axis=-1), mask)
    return self.head(x).astype(jnp.float32)


def foreground_probability(logits: jax.Array) -> jax.Array:
  """P(foreground) [B, H, W] = softmax(logits)[..., 1] = sigmoid(l_1 - l_0)."""
  return jax.nn.sigmoid(logits[..., 1] - logits[..., 0])
