"""Baselines: the centre prior against its formula, wCtr against a slow,
obvious reimplementation (pixel loops, heapq Dijkstra per node, a dense
least-squares solve of eq. 9 written as residuals) on the same superpixels."""
import heapq
import os

import numpy as np
from PIL import Image
import pytest
from skimage import color
from skimage import filters

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.eval import baselines
from gansseg_jax.eval.baselines import wctr

PASCAL_S = os.environ.get("GANSSEG_PASCAL_S", "")


def test_centre_prior_is_the_gaussian_formula():
  prior = baselines.make("centre_prior", default.get_config().eval)
  for h, w in ((7, 12), (40, 31)):
    got = prior.saliency(np.zeros((h, w, 3), np.uint8))
    want = np.empty((h, w))
    for y in range(h):
      for x in range(w):
        dy, dx = y + 0.5 - h / 2, x + 0.5 - w / 2
        want[y, x] = np.exp(-dy**2 / (2 * (h / 4)**2) - dx**2 / (2 * (w / 4)**2))
    np.testing.assert_allclose(got, want, rtol=1e-6)
  assert got.dtype == np.float32


def _scene(seed, h=72, w=96):
  """A textured background with two coloured blobs (one touching the border)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  image = np.stack([60 + 30 * np.sin(xx / 7.0 + seed), 90 + 20 * np.cos(yy / 5.0),
                    70 + 0 * xx], -1) + rng.normal(0, 6, (h, w, 3))
  blob = (yy - h * 0.5) ** 2 / (h * 0.2) ** 2 + (xx - w * 0.45) ** 2 / (w * 0.18) ** 2 < 1
  image[blob] = [220, 40, 50]
  image[:10, -14:] = [30, 200, 60]
  return np.clip(image, 0, 255).astype(np.uint8), blob


def _reference(image, labels, p):
  """wCtr* per superpixel, the slow way, for both variants."""
  h, w = labels.shape
  n = labels.max() + 1
  sums, pos, count = np.zeros((n, 3)), np.zeros((n, 2)), np.zeros(n)
  adjacency = np.zeros((n, n), bool)
  boundary = set()
  for y in range(h):
    for x in range(w):
      i = labels[y, x]
      sums[i] += image[y, x]
      pos[i] += ((y + 0.5) / h, (x + 0.5) / w)
      count[i] += 1
      for yy, xx in ((y + 1, x), (y, x + 1)):
        if yy < h and xx < w and labels[yy, xx] != i:
          adjacency[i, labels[yy, xx]] = adjacency[labels[yy, xx], i] = True
      k = p.boundary_width
      if y < k or x < k or y >= h - k or x >= w - k:
        boundary.add(i)
  boundary = sorted(boundary)
  lab = np.array([color.rgb2lab((sums[i] / count[i] / 255.0)[None, None])[0, 0]
                  for i in range(n)])
  pos /= count[:, None]
  d = np.array([[np.linalg.norm(lab[i] - lab[j]) for j in range(n)] for i in range(n)])
  dpos = np.array([[np.linalg.norm(pos[i] - pos[j]) for j in range(n)] for i in range(n)])
  authors = p.variant == "authors"

  def weight(dist, sigma):
    return 0.0 if authors and dist > 3 * sigma else np.exp(-dist**2 / (2 * sigma**2))

  if authors:
    def min_over(mask):
      return np.mean([min(d[i, j] for j in range(n) if mask[i, j] and j != i)
                      for i in range(n)])
    ring2 = adjacency | ((adjacency.astype(int) @ adjacency.astype(int)) > 0)
    top = sorted((d[i, j] for i in range(n) for j in range(i) if adjacency[i, j]),
                 reverse=True)
    mean_top = np.mean(top[:max(1, round(0.01 * len(top)))])
    min1 = min_over(adjacency)
    clip, geo_sigma = min_over(ring2), max(min(10, 3 * min1, mean_top / 10), 5)
    smooth_sigma = min(3 * min1, 0.2 * mean_top, 20)
  else:
    clip, geo_sigma, smooth_sigma = 0.0, p.sigma_clr, p.sigma_clr
  edges = {i: [] for i in range(n)}
  for i in range(n):
    for j in range(n):
      linked = adjacency[i, j] or (authors and i in boundary and j in boundary)
      if i != j and linked:
        edges[i].append((j, max(0.0, d[i, j] - clip)))
  geo = np.full((n, n), np.inf)
  for source in range(n):
    heap, done = [(0.0, source)], set()
    while heap:
      dist, i = heapq.heappop(heap)
      if i in done:
        continue
      done.add(i)
      geo[source, i] = dist
      for j, wgt in edges[i]:
        if j not in done:
          heapq.heappush(heap, (dist + wgt, j))
  span = np.array([[weight(geo[i, j], geo_sigma) for j in range(n)] for i in range(n)])
  bndcon = span[:, boundary].sum(1) / np.sqrt(span.sum(1))
  bg = 1 - np.exp(-bndcon**2 / (2 * p.sigma_bndcon**2))
  spa = p.authors_sigma_spa if authors else p.sigma_spa
  ctr = np.array([sum(d[i, j] * weight(dpos[i, j], spa) * bg[j] for j in range(n))
                  for i in range(n)])
  fg = (ctr - ctr.min()) / (ctr.max() - ctr.min() + np.finfo(float).eps)
  bg_weight = bg
  if authors:
    fg = np.where(fg < filters.threshold_otsu(fg), 0.0, fg)
    bg_weight = np.where(bndcon > p.authors_high_bndcon, p.authors_high_weight, bg)
    bg_weight = bg_weight * p.authors_bg_lambda
  rows, rhs = [], []
  for i in range(n):  # sqrt(w_bg) s_i = 0 and sqrt(w_fg) (s_i - 1) = 0
    for wgt, target in ((bg_weight[i], 0.0), (fg[i], 1.0)):
      row = np.zeros(n)
      row[i] = np.sqrt(wgt)
      rows.append(row)
      rhs.append(np.sqrt(wgt) * target)
  for i in range(n):  # sqrt(w_ij) (s_i - s_j) = 0, each pair once
    for j in range(i + 1, n):
      if authors:
        near = ring2[i, j] or (i in boundary and j in boundary)
        wij = (weight(d[i, j], smooth_sigma) if near else 0.0) + p.mu * adjacency[i, j]
      else:
        wij = (np.exp(-d[i, j]**2 / (2 * smooth_sigma**2)) + p.mu) * adjacency[i, j]
      if wij:
        row = np.zeros(n)
        row[i], row[j] = np.sqrt(wij), -np.sqrt(wij)
        rows.append(row)
        rhs.append(0.0)
  s = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
  return (s - s.min()) / (s.max() - s.min() + np.finfo(float).eps)


def _images():
  images = [_scene(seed)[0] for seed in range(2)]
  if PASCAL_S and os.path.isdir(PASCAL_S):  # Optional: a few real photos.
    for name in sorted(os.listdir(os.path.join(PASCAL_S, "images")))[:2]:
      photo = Image.open(os.path.join(PASCAL_S, "images", name)).convert("RGB")
      photo.thumbnail((120, 120))
      images.append(np.asarray(photo))
  return images


@pytest.mark.parametrize("variant", ["paper", "authors"])
def test_wctr_matches_a_slow_reference_on_the_same_superpixels(variant):
  config = default.get_config().eval
  config.wctr.variant = variant
  config.wctr.pixels_per_superpixel = 150.0
  params = wctr.Params.from_config(config.wctr)
  for image in _images():
    labels = wctr.slic_labels(image, params)
    assert 20 <= labels.max() + 1 <= 80
    sp = wctr.describe(image, labels, params.boundary_width)
    got = wctr.superpixel_saliency(sp, params)
    np.testing.assert_allclose(got, _reference(image, labels, params), atol=1e-6)


def test_wctr_is_deterministic_and_finds_the_planted_object():
  config = default.get_config().eval
  baseline = baselines.make("wctr", config)
  image, blob = _scene(3, 120, 160)
  first, second = baseline.saliency(image), baseline.saliency(image)
  np.testing.assert_array_equal(first, second)
  assert first.shape == blob.shape and first.dtype == np.float32
  assert 0.0 <= first.min() and first.max() <= 1.0
  predicted = first > 0.5
  assert (predicted & blob).sum() / (predicted | blob).sum() > 0.8


def test_wctr_downscales_large_images_and_returns_their_size():
  config = default.get_config().eval
  config.wctr.max_long_side = 80
  image, _ = _scene(4, 120, 200)
  out = baselines.make("wctr", config).saliency(image)
  assert out.shape == (120, 200)
  assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("variant", ["paper", "authors"])
def test_uniform_image_gives_a_finite_map(variant):
  config = default.get_config().eval
  config.wctr.variant = variant
  out = baselines.make("wctr", config).saliency(
      np.full((40, 50, 3), 128, np.uint8))
  assert np.isfinite(out).all()


def test_baseline_config_errors_name_the_field():
  config = default.get_config().eval
  config.predictor = "hs"
  with pytest.raises(errors.UserError, match="config.eval.predictor"):
    baselines.check_config(config)
  config.predictor = "wctr"
  config.baselines = "centre_prior,nope"
  with pytest.raises(errors.UserError, match="config.eval.baselines"):
    baselines.check_config(config)
  config.baselines = ""
  config.wctr.variant = "matlab"
  with pytest.raises(errors.UserError, match="config.eval.wctr.variant"):
    baselines.check_config(config)


def test_worker_processes_give_the_in_process_maps():
  """BaselineEngine over 2 spawned workers = the baseline called directly."""
  from gansseg_jax.eval import inference  # pylint: disable=g-import-not-at-top
  config = default.get_config().eval
  baseline = baselines.make("wctr", config)
  images = [_scene(seed, 40 + 8 * seed, 60)[0] for seed in range(3)]
  engine = inference.BaselineEngine(baseline, workers=2, chunk=2)
  results = []
  for i, image in enumerate(images):
    results += engine.submit(i, image)
  results += engine.flush()
  assert [tag for tag, _ in results] == [0, 1, 2] and engine.calls == 2
  for tag, probs in results:
    np.testing.assert_array_equal(probs, baseline.saliency(images[tag]))


@pytest.mark.parametrize("size, short, minimum, cap, expected", [
    ((375, 500), 128, 256, 640, (128, 171)),  # A PASCAL-S photo at 128.
    ((100, 1000), 128, 256, 640, (64, 640)),  # The cap wins.
    ((480, 640), 0, 256, 640, (480, 640)),  # Own size (the default).
    ((700, 900), 0, 256, 640, (498, 640)),  # Only the cap.
    ((60, 80), 128, 256, 0, (128, 171)),  # short_side wins over the minimum.
    ((64, 64), 0, 256, 640, (256, 256)),  # A 64 px crop, enlarged.
    ((64, 96), 0, 256, 300, (200, 300)),  # Enlarged, then capped.
    ((64, 64), 0, 0, 640, (64, 64)),  # min_short_side 0: never enlarged.
])
def test_work_size(size, short, minimum, cap, expected):
  config = default.get_config().eval.wctr
  config.short_side, config.min_short_side = short, minimum
  config.max_long_side = cap
  assert wctr.work_size(*size, wctr.Params.from_config(config)) == expected


def _iou(saliency, truth):
  predicted = saliency > 0.5
  return (predicted & truth).sum() / (predicted | truth).sum()


def _small_photo(seed, side=64, diameter=14):
  """A photo-like scene: three noisy colour bands (sky, wall, floor) and a
  disc of another colour near the centre; (image, disc mask)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:side, 0:side]
  colours = rng.integers(40, 200, (3, 3))
  image = colours[np.minimum(3 * yy // side, 2)] + rng.normal(
      0, 8, (side, side, 3))
  cy, cx = side // 2 + rng.integers(-6, 7, 2)
  disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (diameter / 2) ** 2
  image[disc] = rng.integers(0, 255, 3)
  return np.clip(image, 0, 255).astype(np.uint8), disc


def test_defaults_find_a_small_object_in_a_small_image():
  """At 64 px the authors' 600 px per superpixel makes superpixels larger
  than a 14 px object, which then vanishes; the default min_short_side runs
  wCtr on the image enlarged to 256 px, where it is found."""
  config = default.get_config().eval
  scenes = [_small_photo(seed) for seed in range(3)]
  found = [_iou(baselines.make("wctr", config).saliency(image), disc)
           for image, disc in scenes]
  config.wctr.min_short_side = 0
  own_size = [_iou(baselines.make("wctr", config).saliency(image), disc)
              for image, disc in scenes]
  assert min(found) > 0.9, found
  assert max(own_size) < 0.2, own_size


def test_short_side_runs_at_that_size_and_returns_the_images():
  """short_side 60: wCtr of the bilinear 60 x 100 image, brought back."""
  from gansseg_jax.data import preprocess  # pylint: disable=g-import-not-at-top
  config = default.get_config().eval
  config.wctr.pixels_per_superpixel = 50.0
  config.wctr.min_short_side = 0
  image, blob = _scene(5, 120, 200)
  own_size = baselines.make("wctr", config)
  config.wctr.short_side = 60
  out = baselines.make("wctr", config).saliency(image)
  small = np.asarray(Image.fromarray(image).resize((100, 60), Image.BILINEAR))
  expected = np.clip(preprocess.resize_map(own_size.saliency(small),
                                           (120, 200)), 0, 1)
  assert out.shape == (120, 200) and out.dtype == np.float32
  np.testing.assert_array_equal(out, expected)
  predicted = out > 0.5
  assert (predicted & blob).sum() / (predicted | blob).sum() > 0.8


@pytest.mark.parametrize("field, value", [("short_side", 128),
                                          ("min_short_side", 256)])
def test_added_wctr_sizes_keep_older_workdirs_valid(field, value):
  """Added with 0 as their behaviour before: eval's hash without the fields
  (older workdirs) is the hash with them at 0; another value changes it."""
  from gansseg_jax.run import stages  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.eval.datasets = "ecssd"
  config.eval.wctr.short_side = config.eval.wctr.min_short_side = 0
  with_fields = config.to_dict()
  older = config.to_dict()
  del older["eval"]["wctr"]["short_side"], older["eval"]["wctr"]["min_short_side"]
  for name in ("eval", "segment", "report"):
    stage = stages.BY_NAME[name]
    assert stages.stage_hash(stage, older) == stages.stage_hash(stage,
                                                                with_fields)
  config.eval.wctr[field] = value
  assert stages.stage_hash(stages.BY_NAME["eval"], config.to_dict()) != (
      stages.stage_hash(stages.BY_NAME["eval"], with_fields))


def test_engines_sharing_a_memo_compute_each_image_once():
  """A second engine on the same images (another order, one repeated) runs
  the baseline on none of them, returns maps in its own queue order, and
  equal to the baseline called directly; an engine without the memo runs
  everything."""
  from gansseg_jax.eval import inference  # pylint: disable=g-import-not-at-top
  baseline = baselines.make("centre_prior", default.get_config().eval)
  images = [_scene(seed, 30 + 4 * seed, 40)[0] for seed in range(4)]
  memo = {}

  def run(order, memo):
    engine = inference.BaselineEngine(baseline, workers=1, chunk=3,
                                      memo=memo)
    results = []
    for tag in order:
      results += engine.submit(tag, images[tag])
    return results + engine.flush(), engine.calls

  first, calls = run([0, 1, 2, 3], memo)
  assert calls == 2 and len(memo) == 4
  second, calls = run([3, 1, 1, 0, 2], memo)
  assert calls == 0 and [tag for tag, _ in second] == [3, 1, 1, 0, 2]
  for tag, probs in first + second:
    np.testing.assert_array_equal(probs, baseline.saliency(images[tag]))
  _, calls = run([3, 1, 0, 2], None)
  assert calls == 2
