"""Random translation of synthetic pairs against numpy's reflect padding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gansseg_jax.train import augment


@pytest.mark.parametrize("dy, dx", [(0, 0), (2, -3), (-3, 3), (1, 0)])
def test_translate_matches_numpy(dy, dx):
  rng = np.random.default_rng(0)
  image = rng.random((7, 9, 3)).astype(np.float32)
  mask = rng.random((7, 9)) > 0.5
  got_image, got_mask = augment.translate(jnp.asarray(image), jnp.asarray(mask),
                                          dy, dx, 3)
  pad = ((3, 3), (3, 3))
  ref_image = np.pad(image, pad + ((0, 0),), mode="reflect")
  ref_mask = np.pad(mask, pad, mode="reflect")
  for y in range(7):
    for x in range(9):
      np.testing.assert_array_equal(got_image[y, x], ref_image[y + 3 - dy, x + 3 - dx])
      assert got_mask[y, x] == ref_mask[y + 3 - dy, x + 3 - dx]


def test_random_translate_moves_image_and_mask_together():
  rng = np.random.default_rng(1)
  masks = np.zeros((16, 12, 12), np.float32)
  masks[:, 4:7, 5:8] = 1.0
  images = np.where(masks[..., None] > 0, 1.0, -1.0) * np.ones((1, 1, 1, 3))
  images = images + 0.01 * rng.random(images.shape)
  out_images, out_masks = augment.random_translate(
      jax.random.key(0), jnp.asarray(images, jnp.float32), jnp.asarray(masks),
      0.25)
  out_images, out_masks = np.asarray(out_images), np.asarray(out_masks)
  np.testing.assert_array_equal(out_images[..., 0] > 0, out_masks > 0)
  np.testing.assert_array_equal(out_masks.sum((1, 2)), masks.sum((1, 2)))
  centres = [np.argwhere(m).mean(0) for m in out_masks]
  assert len({tuple(c) for c in centres}) > 4  # Different offsets per sample.
  assert np.max(np.abs(np.array(centres) - [5, 6])) <= 3


def test_zero_fraction_is_the_identity():
  images, masks = jnp.ones((2, 8, 8, 3)), jnp.zeros((2, 8, 8))
  out = augment.random_translate(jax.random.key(0), images, masks, 0.0)
  assert out[0] is images and out[1] is masks



def _relight_loop(images, p):
  """The docstring formula of augment.relight, pixel by pixel."""
  luma = np.asarray(augment.LUMA)
  out = np.empty_like(images)
  n, h, w, _ = images.shape
  for i in range(n):
    a, theta, b, c, sat = (float(np.asarray(f)[i].squeeze()) for f in p)
    x1 = np.empty((h, w, 3))
    for y in range(h):
      for x in range(w):
        u, v = -1 + 2 * x / (w - 1), -1 + 2 * y / (h - 1)
        x1[y, x] = (images[i, y, x] + 1) / 2 * np.exp(
            b / 2 + a * (np.cos(theta) * u + np.sin(theta) * v))
    m = np.mean([x1[y, x] @ luma for y in range(h) for x in range(w)])
    for y in range(h):
      for x in range(w):
        x2 = m + np.exp(c) * (x1[y, x] - m)
        g = x2 @ luma
        out[i, y, x] = np.clip(g + sat * (x2 - g), 0, 1) * 2 - 1
  return out


def test_relight_matches_its_formula_pixel_by_pixel():
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (3, 5, 7, 3)).astype(np.float32)
  col = lambda *v: jnp.asarray(v, jnp.float32)[:, None, None, None]
  p = augment.Lighting(slope=col(0.8, -0.3, 0.0), angle=col(0.4, 2.5, 5.0),
                       gain=col(-0.6, 0.2, 0.9), contrast=col(0.3, -0.4, 0.0),
                       saturation=col(0.0, 1.7, 1.0))
  got = np.asarray(augment.relight(jnp.asarray(images), p))
  np.testing.assert_allclose(got, _relight_loop(images, p), atol=2e-6)
  assert (got == 1).any() or (got == -1).any()  # The clip is exercised.


def test_draw_lighting_stays_in_its_ranges_and_fills_them():
  s = 0.6
  p = augment.draw_lighting(jax.random.key(0), 4000, s)
  ranges = {"slope": (-s, s), "angle": (0, 2 * np.pi), "gain": (-s, s),
            "contrast": (-s / 2, s / 2), "saturation": (1 - s, 1 + s)}
  for name, (low, high) in ranges.items():
    values = np.asarray(getattr(p, name)).ravel()
    assert values.shape == (4000,)
    assert values.min() >= low and values.max() <= high, name
    span = high - low
    assert values.min() < low + 0.01 * span and values.max() > high - 0.01 * span
  assert np.corrcoef(np.asarray(p.slope).ravel(),
                     np.asarray(p.gain).ravel())[0, 1] < 0.1  # Independent.
  full = augment.draw_lighting(jax.random.key(0), 100, 1.5)
  assert float(np.min(full.saturation)) >= 0  # Never a negative saturation.


def test_photometric_is_relight_of_its_draw_and_keeps_the_range():
  rng = np.random.default_rng(1)
  images = jnp.asarray(rng.uniform(-1, 1, (6, 8, 8, 3)), jnp.float32)
  key = jax.random.key(7)
  out = augment.photometric(key, images, 0.8)
  np.testing.assert_array_equal(
      out, augment.relight(images, augment.draw_lighting(key, 6, 0.8)))
  assert float(out.min()) >= -1 and float(out.max()) <= 1
  assert not np.allclose(out, images)


def test_photometric_strength_zero_is_the_identity():
  images = jnp.ones((2, 8, 8, 3)) * 0.3
  assert augment.photometric(jax.random.key(0), images, 0.0) is images
