"""The U-Net of models/unet.py against the architecture of docs/method.md §7."""
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from gansseg_jax.models import unet


def _unet(width, dtype=jnp.float32, seed=0):
  """A U-Net initialised with the 'rbg' PRNG (fast eager init on CPU)."""
  return unet.UNet(width, dtype=dtype, bn_momentum=0.9, bn_eps=1e-5,
                   rngs=nnx.Rngs(jax.random.key(seed, impl="rbg")))


def test_param_count_is_the_papers_unet():
  """DoubleConvs 3-64-128-256-512-512, ups 1024-256-128-64-64, 1x1 -> 2."""
  double_convs = [(3, 64), (64, 128), (128, 256), (256, 512), (512, 512),
                  (1024, 256), (512, 128), (256, 64), (128, 64)]
  # Two 3x3 convs without bias, each followed by BatchNorm (scale, bias).
  want = sum(9 * cin * cout + 9 * cout * cout + 4 * cout
             for cin, cout in double_convs) + 64 * 2 + 2
  model = nnx.eval_shape(lambda: _unet(64))
  got = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert got == want == 13_391_426


def test_upsampling_is_bilinear_with_aligned_corners():
  """torch's Upsample(x2, bilinear, align_corners=True) via scipy."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
  got = np.asarray(unet.upsample_bilinear_x2(jnp.asarray(x)))
  assert got.shape == (2, 6, 10, 4)
  rows = np.arange(6) * (3 - 1) / (6 - 1)
  cols = np.arange(10) * (5 - 1) / (10 - 1)
  grid = np.stack(np.meshgrid(rows, cols, indexing="ij"))
  for b in range(2):
    for c in range(4):
      want = ndimage.map_coordinates(x[b, :, :, c].astype(np.float64), grid,
                                     order=1)
      np.testing.assert_allclose(got[b, :, :, c], want, atol=1e-5)
  # A 1-pixel map is repeated.
  one = np.asarray(unet.upsample_bilinear_x2(jnp.ones((1, 1, 1, 2))))
  np.testing.assert_array_equal(one, np.ones((1, 2, 2, 2)))


@nnx.jit
def _apply(model, images):
  return model(images)


def test_any_image_size_gives_per_pixel_logits():
  model = _unet(2)
  logits = _apply(model, jnp.zeros((2, 37, 45, 3)))
  assert logits.shape == (2, 37, 45, unet.NUM_LOGITS)
  assert logits.dtype == jnp.float32


def test_foreground_probability_is_the_softmax_of_class_1():
  logits = np.random.default_rng(1).normal(size=(3, 4, 5, 2)) * 4
  e = np.exp(logits - logits.max(-1, keepdims=True))
  want = e[..., 1] / e.sum(-1)
  np.testing.assert_allclose(unet.foreground_probability(logits), want,
                             rtol=1e-5, atol=1e-7)


def test_batchnorm_statistics_use_only_the_masked_in_samples():
  model = _unet(2)
  rng = np.random.default_rng(2)
  images = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  keep = np.array([True, True, False, False])
  out = model(images, sample_mask=keep)
  # The first BatchNorm's running mean moved by 0.1 * (batch mean of kept).
  conv = np.asarray(model.inc.conv1(images))
  np.testing.assert_allclose(model.inc.norm1.mean[...],
                             0.1 * conv[keep].mean(axis=(0, 1, 2)), atol=1e-5)
  # Whatever the left-out samples hold, the kept outputs are the same.
  model = _unet(2)
  images[2:] = rng.normal(size=(2, 16, 16, 3)) * 50
  again = model(images, sample_mask=keep)
  np.testing.assert_allclose(again[:2], out[:2], atol=1e-5)


def test_bfloat16_activations_keep_float32_params_and_logits():
  x = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (2, 16, 16, 3)),
                  jnp.float32)
  full, half = _unet(2), _unet(2, jnp.bfloat16)
  half.eval()
  full.eval()
  assert all(p.dtype == jnp.float32
             for p in jax.tree.leaves(nnx.state(half, nnx.Param)))
  got, want = _apply(half, x), _apply(full, x)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, atol=0.05 * float(jnp.abs(want).max()))
