"""Mask rules and affine colour maps vs numpy loops (docs/method.md §3-4)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gansseg_jax.infra.errors import UserError
from gansseg_jax.synth import affine
from gansseg_jax.synth import masks


def _images(seed, shape=(3, 6, 7, 3)):
  rng = np.random.default_rng(seed)
  return (rng.uniform(-1, 1, shape).astype(np.float32),
          rng.uniform(-1, 1, shape).astype(np.float32))


def _gray_ref(img):
  img = img.astype(np.float64)
  return 0.2989 * img[..., 0] + 0.5870 * img[..., 1] + 0.1140 * img[..., 2]


def _random_maps(seed):
  rng = np.random.default_rng(seed)
  maps = np.zeros((2, 3, 4), np.float32)
  maps[:, :, :3] = np.eye(3) + 0.6 * rng.normal(size=(2, 3, 3))
  maps[:, :, 3] = 0.5 * rng.normal(size=(2, 3))
  return maps


def test_gray_matches_formula():
  image, _ = _images(0)
  np.testing.assert_allclose(masks.gray(image), _gray_ref(image), atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_lighting_and_mean_thr_match_numpy(seed):
  image, shifted = _images(seed)
  want = _gray_ref(shifted) > _gray_ref(image)
  got = np.asarray(masks.lighting_mask(image, shifted))
  # Pixels whose two grays differ by less than float32 rounding may flip.
  close = np.abs(_gray_ref(shifted) - _gray_ref(image)) < 1e-6
  assert np.array_equal(got[~close], want[~close])
  g = _gray_ref(shifted)
  want = np.stack([gi > gi.mean() for gi in g])
  got = np.asarray(masks.mean_thr_mask(shifted))
  close = np.abs(g - g.mean(axis=(1, 2), keepdims=True)) < 1e-6
  assert np.array_equal(got[~close], want[~close])
  assert np.array_equal(masks.make_mask("lighting", image, shifted),
                        masks.lighting_mask(image, shifted))


def test_apply_affine_matches_loop():
  maps = _random_maps(1)
  pixels = np.random.default_rng(2).uniform(-1, 1, (4, 5, 3)).astype(np.float32)
  got = np.asarray(affine.apply_affine(maps, pixels))
  assert got.shape == (2, 4, 5, 3)
  for i in range(2):
    for y in range(4):
      for x in range(5):
        want = np.clip(maps[i, :, :3].astype(np.float64) @ pixels[y, x]
                       + maps[i, :, 3], -1, 1)
        np.testing.assert_allclose(got[i, y, x], want, atol=1e-5)


def _class_ref(maps, image, shifted):
  out = np.zeros(image.shape[:-1], np.int32)
  for idx in np.ndindex(*image.shape[:-1]):
    c, c2 = image[idx].astype(np.float64), shifted[idx].astype(np.float64)
    d = [np.linalg.norm(np.clip(maps[i, :, :3] @ c + maps[i, :, 3], -1, 1) - c2)
         for i in range(2)]
    out[idx] = int(np.argmin(d))
  return out


@pytest.mark.parametrize("seed", range(3))
def test_affine_class_map_and_mask_match_loop(seed):
  maps = _random_maps(seed)
  image, shifted = _images(seed + 10, (2, 6, 7, 3))
  got = np.asarray(affine.affine_class_map(maps, image, shifted))
  want = _class_ref(maps, image, shifted)
  assert got.dtype == np.int32
  assert np.mean(got == want) > 0.99  # float ties only
  classes = got == 1
  mask = np.asarray(masks.affine_mask(maps, image, shifted))
  for b in range(2):
    border = np.ones_like(classes[b])
    border[1:-1, 1:-1] = False
    ones_on_border = np.sum(classes[b] & border)
    zeros_on_border = np.sum(~classes[b] & border)
    if ones_on_border != zeros_on_border:
      one_fg = ones_on_border < zeros_on_border
    else:
      one_fg = classes[b].sum() <= (~classes[b]).sum()
    assert np.array_equal(mask[b], classes[b] if one_fg else ~classes[b])


def test_affine_mask_picks_the_class_inside_the_frame():
  # A_0 = identity, A_1 = brighten by 0.5: a bright square inside a dark frame.
  maps = np.zeros((2, 3, 4), np.float32)
  maps[:, :, :3] = np.eye(3)
  maps[1, :, 3] = 0.5
  image = np.full((8, 8, 3), -0.5, np.float32)
  shifted = image.copy()
  shifted[2:5, 3:6] += 0.5  # The object brightens: class 1 there.
  mask = np.asarray(masks.affine_mask(maps, image, shifted))
  want = np.zeros((8, 8), bool)
  want[2:5, 3:6] = True
  assert np.array_equal(mask, want)
  # The same object as class 0 (maps swapped) is still the foreground.
  mask = np.asarray(masks.affine_mask(maps[::-1], image, shifted))
  assert np.array_equal(mask, want)


def test_bad_rule_and_missing_maps_raise():
  image, shifted = _images(0)
  with pytest.raises(UserError, match="config.synth.mask_rule"):
    masks.make_mask("brightest", image, shifted)
  with pytest.raises(UserError, match="config.synth.mask_rule"):
    masks.make_mask("affine", image, shifted)


def test_affine_is_jittable_and_vmappable():
  maps = _random_maps(3)
  image, shifted = _images(4)
  direct = affine.affine_class_map(maps, image, shifted)
  mapped = jax.jit(jax.vmap(affine.affine_class_map, in_axes=(None, 0, 0)))(
      maps, jnp.asarray(image), jnp.asarray(shifted))
  assert np.array_equal(direct, mapped)
