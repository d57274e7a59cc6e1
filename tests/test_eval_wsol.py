"""MaxBoxAcc and PxAP against brute-force loops (and sklearn for pooled AP)."""
import collections

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from gansseg_jax.eval import metrics
from gansseg_jax.eval import wsol


def flood_fill_components(binary, connectivity):
  """Components as pixel lists by breadth-first search, in raster order."""
  h, w = binary.shape
  steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
  if connectivity == 8:
    steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
  seen = np.zeros_like(binary, bool)
  components = []
  for r in range(h):
    for c in range(w):
      if binary[r, c] and not seen[r, c]:
        seen[r, c] = True
        queue, pixels = collections.deque([(r, c)]), []
        while queue:
          y, x = queue.popleft()
          pixels.append((y, x))
          for dy, dx in steps:
            ny, nx = y + dy, x + dx
            inside = 0 <= ny < h and 0 <= nx < w
            if inside and binary[ny, nx] and not seen[ny, nx]:
              seen[ny, nx] = True
              queue.append((ny, nx))
        components.append(pixels)
  return components


def brute_box(binary, connectivity):
  components = flood_fill_components(binary, connectivity)
  if not components:
    return None
  largest = components[0]
  for pixels in components[1:]:  # Strictly larger wins: ties keep the first.
    if len(pixels) > len(largest):
      largest = pixels
  rows = [p[0] for p in largest]
  cols = [p[1] for p in largest]
  return np.array([min(rows), min(cols), max(rows) + 1, max(cols) + 1], float)


def brute_iou(a, b):
  """IoU of two boxes by counting covered cells of a fine grid."""
  scale = 4  # Boxes here have edges on multiples of 1/4.
  size = int(max(a[2], a[3], b[2], b[3]) * scale) + 1
  ga, gb = _paint(a, size, scale), _paint(b, size, scale)
  union = (ga | gb).sum()
  return (ga & gb).sum() / union if union else 0.0


def _paint(box, size, scale):
  out = np.zeros((size, size), bool)
  y0, x0, y1, x1 = (int(round(v * scale)) for v in box)
  out[y0:y1, x0:x1] = True
  return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([4, 8]))
def test_largest_component_box_matches_flood_fill(seed, connectivity):
  rng = np.random.default_rng(seed)
  h, w = rng.integers(1, 16, size=2)
  binary = rng.random((h, w)) < rng.random()
  box = wsol.largest_component_box(binary,
                                   wsol.connectivity_structure(connectivity))
  expected = brute_box(binary, connectivity)
  if expected is None:
    assert box is None
  else:
    np.testing.assert_array_equal(box, expected)


def test_connectivity_4_vs_8_planted():
  binary = np.zeros((5, 5), bool)
  binary[0, 0] = binary[1, 1] = binary[2, 2] = True  # A diagonal line.
  binary[4, 3:5] = True  # Two pixels side by side.
  four = wsol.largest_component_box(binary, wsol.connectivity_structure(4))
  eight = wsol.largest_component_box(binary, wsol.connectivity_structure(8))
  np.testing.assert_array_equal(four, [4, 3, 5, 5])
  np.testing.assert_array_equal(eight, [0, 0, 3, 3])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_box_iou_matches_grid_count(seed):
  rng = np.random.default_rng(seed)
  corners = rng.integers(0, 40, size=(2, 4)) / 4.0
  a, b = (np.concatenate([np.minimum(c[:2], c[2:]), np.maximum(c[:2], c[2:])])
          for c in corners)
  expected = brute_iou(a, b)
  assert wsol.box_iou(a, b[None])[0] == pytest.approx(expected, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([4, 8]))
def test_max_box_acc_matches_brute_force(seed, connectivity):
  rng = np.random.default_rng(seed)
  num_thresholds = 10
  thresholds = np.arange(num_thresholds, dtype=np.float32) / np.float32(
      num_thresholds)
  acc = wsol.BoxAccuracy(num_thresholds, 0.5, connectivity)
  correct = np.zeros(num_thresholds)
  images = rng.integers(1, 5)
  for _ in range(images):
    h, w = rng.integers(2, 14, size=2)
    scores = rng.integers(0, 11, (h, w)).astype(np.float32) / 10
    y0, x0 = rng.integers(0, h), rng.integers(0, w)
    gt = np.array([[y0, x0, rng.integers(y0 + 1, h + 1),
                    rng.integers(x0 + 1, w + 1)]], float)
    acc.add(scores, gt)
    for k, t in enumerate(thresholds):
      box = brute_box(scores >= t, connectivity)
      correct[k] += box is not None and brute_iou(box, gt[0]) >= 0.5
  result = acc.result()
  assert result["MaxBoxAcc"] == pytest.approx((correct / images).max())
  assert result["box_images"] == images


def test_max_box_acc_planted_threshold():
  """A bright square on a dimmer, larger square: only high thresholds fit."""
  scores = np.zeros((20, 20), np.float32)
  scores[2:18, 2:18] = 0.3
  scores[5:10, 5:10] = 0.9
  acc = wsol.BoxAccuracy(10, 0.5, 8)
  acc.add(scores, np.array([[5, 5, 10, 10]], float))
  result = acc.result()
  assert result["MaxBoxAcc"] == 1.0
  assert result["MaxBoxAcc_threshold"] == pytest.approx(0.4)


def brute_pxap_images(probs_list, truths, num_thresholds):
  thresholds = np.arange(num_thresholds, dtype=np.float32) / np.float32(
      num_thresholds)
  precision, recall = np.zeros(num_thresholds), np.zeros(num_thresholds)
  for probs, truth in zip(probs_list, truths):
    for k, t in enumerate(thresholds):
      pred = probs > t
      tp, pp, g = (pred & truth).sum(), pred.sum(), truth.sum()
      precision[k] += tp / pp if pp else 1.0
      recall[k] += tp / g if g else 1.0
  precision /= len(probs_list)
  recall /= len(probs_list)
  ap = 0.0
  for k in range(num_thresholds):
    next_recall = recall[k + 1] if k + 1 < num_thresholds else 0.0
    ap += (recall[k] - next_recall) * precision[k]
  return ap


def _curves(probs_list, truths):
  m = metrics.SaliencyMetrics(255, 0.3, 0.5, 2**22)
  for p, g in zip(probs_list, truths):
    m.add(p, g)
  return m.curves()


def test_pxap_images_matches_brute_force():
  rng = np.random.default_rng(1)
  shapes = [(12, 9), (7, 15), (20, 20)]
  probs_list = [rng.random(s, dtype=np.float32) for s in shapes]
  truths = [rng.random(s) < 0.4 for s in shapes]
  truths[1][:] = False  # Empty truth: recall 1 everywhere.
  ours = wsol.pxap(_curves(probs_list, truths), "images")
  assert ours == pytest.approx(brute_pxap_images(probs_list, truths, 255),
                               abs=1e-12)


def test_pxap_pixels_matches_sklearn_average_precision():
  """Pooled pixels on the threshold grid = sklearn's AP when every score is
  a grid value above 0 (each distinct score is then one of our thresholds)."""
  rng = np.random.default_rng(2)
  shapes = [(12, 9), (7, 15), (20, 20)]
  probs_list = [rng.integers(1, 256, s).astype(np.float32) / np.float32(255)
                for s in shapes]
  truths = [rng.random(s) < (0.2 + 0.5 * p) for s, p in zip(shapes, probs_list)]
  ours = wsol.pxap(_curves(probs_list, truths), "pixels")
  expected = sk_metrics.average_precision_score(
      np.concatenate([t.ravel() for t in truths]),
      np.concatenate([p.ravel() for p in probs_list]))
  assert ours == pytest.approx(expected, abs=1e-9)


def test_pxap_rejects_unknown_average():
  with pytest.raises(ValueError):
    wsol.pxap(_curves([np.zeros((2, 2), np.float32)], [np.ones((2, 2), bool)]),
              "boxes")
