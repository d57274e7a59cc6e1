"""Exact masks of data/scenes.py, checked against independent float64 rasterisers."""
import jax
import numpy as np
import pytest

from gansseg_jax.data import scenes

RESOLUTION = 48
# Pixels this close to an outline (in the test's own units) may round either way
# between float32 (scenes.py) and float64 (the references here).
BOUNDARY_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def batch():
  return scenes.render_scenes(seed=7, count=96, resolution=RESOLUTION)


def _centres(resolution):
  t = (2.0 * np.arange(resolution) + 1.0) / resolution - 1.0
  return np.meshgrid(t, t, indexing="xy")


def _frame(layout, i, x, y):
  """Pixel centres in the object frame of scene i, divided by its semi-axes."""
  cx, cy = np.float64(layout.centre[i, 0]), np.float64(layout.centre[i, 1])
  a, b = np.float64(layout.axes[i, 0]), np.float64(layout.axes[i, 1])
  angle = np.float64(layout.angle[i])
  dx, dy = x - cx, y - cy
  return ((np.cos(angle) * dx + np.sin(angle) * dy) / a,
          (-np.sin(angle) * dx + np.cos(angle) * dy) / b)


def _winding_number(vertices, u, v):
  """Sum of signed angles subtended by the polygon's edges, / 2 pi (float64)."""
  total = np.zeros_like(u)
  for j in range(len(vertices)):
    (ua, va), (ub, vb) = vertices[j], vertices[(j + 1) % len(vertices)]
    angle_a = np.arctan2(va - v, ua - u)
    angle_b = np.arctan2(vb - v, ub - u)
    total += np.angle(np.exp(1j * (angle_b - angle_a)))
  return total / (2 * np.pi)


def _distance_to_segments(vertices, u, v):
  best = np.full_like(u, np.inf)
  for j in range(len(vertices)):
    p, q = np.asarray(vertices[j]), np.asarray(vertices[(j + 1) % len(vertices)])
    d = q - p
    t = np.clip(((u - p[0]) * d[0] + (v - p[1]) * d[1]) / max(d @ d, 1e-300),
                0, 1)
    best = np.minimum(best, np.hypot(u - p[0] - t * d[0], v - p[1] - t * d[1]))
  return best


def _indices_of(batch, kind):
  idx = np.flatnonzero(batch.layouts.kind == scenes.SHAPE_KINDS.index(kind))
  assert idx.size >= 10, f"too few {kind}s in the fixture"
  return idx


def test_ellipse_masks_equal_the_implicit_equation(batch):
  x, y = _centres(RESOLUTION)
  for i in _indices_of(batch, "ellipse"):
    u, v = _frame(batch.layouts, i, x, y)
    level = u * u + v * v
    expected = level <= 1.0
    sure = np.abs(level - 1.0) > BOUNDARY_TOLERANCE
    np.testing.assert_array_equal(batch.masks[i][sure], expected[sure])
    assert np.sum(~sure) <= 2


def test_polygon_masks_equal_the_winding_number_rule(batch):
  x, y = _centres(RESOLUTION)
  for i in _indices_of(batch, "polygon"):
    u, v = _frame(batch.layouts, i, x, y)
    vertices = batch.layouts.vertices[i].astype(np.float64)
    # Drop the repeated padding vertices: the reference sees the true polygon.
    keep = np.r_[True, np.any(np.diff(vertices, axis=0) != 0, axis=1)]
    vertices = vertices[keep]
    assert 3 <= len(vertices) <= scenes.MAX_VERTICES
    expected = np.abs(_winding_number(vertices, u, v)) > 0.5
    sure = _distance_to_segments(vertices, u, v) > BOUNDARY_TOLERANCE
    np.testing.assert_array_equal(batch.masks[i][sure], expected[sure])


def test_blob_masks_equal_the_polar_inequality(batch):
  x, y = _centres(RESOLUTION)
  for i in _indices_of(batch, "blob"):
    u, v = _frame(batch.layouts, i, x, y)
    theta = np.arctan2(v, u)
    radius = 1.0
    for k in range(scenes.BLOB_HARMONICS):
      radius = radius + batch.layouts.harmonic_amplitudes[i, k] * np.cos(
          (k + 2) * theta + batch.layouts.harmonic_phases[i, k])
    level = np.hypot(u, v) - radius
    sure = np.abs(level) > BOUNDARY_TOLERANCE
    np.testing.assert_array_equal(batch.masks[i][sure], (level <= 0)[sure])


def test_mask_is_exactly_the_region_the_object_paints(batch):
  """Changing only the object's light changes pixels inside the mask, never outside."""
  for i in range(8):
    layout = jax.tree.map(lambda a, i=i: a[i], batch.layouts)
    darker = layout._replace(object_gain=layout.object_gain * 0.5)
    image, mask = scenes.render_layout(layout, RESOLUTION)
    image_darker, mask_darker = scenes.render_layout(darker, RESOLUTION)
    mask = np.asarray(mask)
    np.testing.assert_array_equal(mask, batch.masks[i])
    np.testing.assert_array_equal(np.asarray(mask_darker), mask)
    changed = np.any(np.asarray(image_darker) != np.asarray(image), axis=-1)
    assert not np.any(changed & (mask == 0))
    # Inside, only pure-black pixels (zero shading and albedo) may stay put.
    assert np.mean(changed[mask == 1]) > 0.95


def test_masks_are_binary_and_images_in_range(batch):
  assert batch.images.shape == (96, RESOLUTION, RESOLUTION, 3)
  assert batch.images.dtype == np.float32 and batch.masks.dtype == np.float32
  assert set(np.unique(batch.masks)) <= {0.0, 1.0}
  assert batch.images.min() >= -1.0 and batch.images.max() <= 1.0
