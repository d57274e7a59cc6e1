"""data/scenes.py: determinism, resolution independence and variety statistics."""
import numpy as np
import pytest

from gansseg_jax.data import scenes


def _gray(images):
  return (0.2989 * images[..., 0] + 0.5870 * images[..., 1]
          + 0.1140 * images[..., 2])


@pytest.fixture(scope="module")
def many():
  return scenes.render_scenes(seed=11, count=600, resolution=32, chunk=300)


def test_same_seed_same_scenes_whatever_the_slicing():
  whole = scenes.render_scenes(seed=3, count=10, resolution=24, chunk=4)
  again = scenes.render_scenes(seed=3, count=10, resolution=24, chunk=10)
  part = scenes.render_scenes(seed=3, count=5, resolution=24, start=4)
  repeat = scenes.render_scenes(seed=3, count=10, resolution=24, chunk=4)
  np.testing.assert_array_equal(whole.images, repeat.images)
  # Other batch shapes compile differently: float rounding, same masks.
  np.testing.assert_array_equal(whole.masks, again.masks)
  np.testing.assert_allclose(whole.images, again.images, atol=1e-5)
  np.testing.assert_array_equal(whole.masks[4:9], part.masks)
  np.testing.assert_allclose(whole.images[4:9], part.images, atol=1e-5)
  other = scenes.render_scenes(seed=4, count=10, resolution=24, chunk=10)
  assert not np.any(np.all(other.masks == whole.masks, axis=(1, 2)))


def test_any_resolution_renders_the_same_scene():
  low = scenes.render_scenes(seed=5, count=16, resolution=24)
  high = scenes.render_scenes(seed=5, count=16, resolution=72)
  assert high.images.shape == (16, 72, 72, 3)
  # Each low-res pixel centre is the centre of a 3x3 block of high-res pixels;
  # the two grids' float32 coordinates may differ in the last bit, which can
  # flip a pixel lying on an outline.
  same = high.masks[:, 1::3, 1::3] == low.masks
  assert np.sum(~same) <= 3
  np.testing.assert_allclose(high.images[:, 1::3, 1::3][same], low.images[same],
                             atol=5e-4)


def test_every_outline_kind_and_pattern_occurs(many):
  kinds = np.bincount(many.layouts.kind, minlength=3) / len(many.masks)
  assert np.all((kinds > 0.25) & (kinds < 0.42)), kinds
  for field, names in (("object_pattern", scenes.OBJECT_PATTERNS),
                       ("background_pattern", scenes.BACKGROUND_PATTERNS)):
    share = np.bincount(getattr(many.layouts, field),
                        minlength=len(names)) / len(many.masks)
    assert np.all((share > 0.8 / len(names)) & (share < 1.2 / len(names)))


def test_object_sizes_stay_in_the_segmentable_range(many):
  area = many.masks.mean(axis=(1, 2))
  assert area.min() > 0.01
  # Above half the image the size filter would drop a mask: rare here.
  assert np.mean(area >= 0.5) < 0.02
  assert 0.1 < np.median(area) < 0.3


def test_object_is_lighter_or_darker_than_background_about_equally_often(many):
  gray = _gray(many.images)
  m = many.masks
  inside = (gray * m).sum((1, 2)) / m.sum((1, 2))
  outside = (gray * (1 - m)).sum((1, 2)) / (1 - m).sum((1, 2))
  assert 0.35 < np.mean(inside > outside) < 0.65
  # The contrast factor c drives that difference, and it is a strong factor.
  log_ratio = np.log(many.layouts.object_gain / many.layouts.background_gain)
  assert np.corrcoef(log_ratio, inside - outside)[0, 1] > 0.7


def test_object_and_background_appearance_are_independent(many):
  m = many.masks[..., None]
  obj = (many.images * m).sum((1, 2)) / m.sum((1, 2))
  bg = (many.images * (1 - m)).sum((1, 2)) / (1 - m).sum((1, 2))
  # Colours (chromaticity: illumination is a grey gain, so it cancels) are
  # drawn independently; brightness is not: the contrast factor c lights the
  # object and darkens the background together (see the module docstring).
  unit_obj, unit_bg = (obj + 1) / 2, (bg + 1) / 2
  chroma_obj = unit_obj / unit_obj.sum(axis=1, keepdims=True)
  chroma_bg = unit_bg / unit_bg.sum(axis=1, keepdims=True)
  for channel in range(3):
    assert abs(np.corrcoef(chroma_obj[:, channel],
                           chroma_bg[:, channel])[0, 1]) < 0.2
  # ... and both vary a lot from scene to scene.
  assert np.all(obj.std(axis=0) > 0.25) and np.all(bg.std(axis=0) > 0.25)
  # Textured: colour varies within the background of most scenes.
  spread = np.array([many.images[i][many.masks[i] == 0].std(axis=0).max()
                     for i in range(100)])
  assert np.mean(spread > 0.05) > 0.8
