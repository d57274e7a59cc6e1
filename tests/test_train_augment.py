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
