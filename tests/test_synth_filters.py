"""Filters of docs/method.md §6 against scipy / numpy references.

Connected components: the labelling must give the same partition as
scipy.ndimage.label with the matching structure, on random masks
(hypothesis) and on adversarial ones (spirals, serpentines, checkerboards,
diagonal chains, single pixels, empty and full masks).
"""
import functools
import itertools

from hypothesis import given, settings, strategies as st
import jax
import numpy as np
import pytest
from scipy import ndimage

from configs import default
from gansseg_jax.infra.errors import UserError
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import filters

STRUCTURES = {4: ndimage.generate_binary_structure(2, 1),
              8: ndimage.generate_binary_structure(2, 2)}
HYPOTHESIS = settings(max_examples=25, deadline=None, derandomize=True)


# ---------------------------------------------------------------- references


def same_partition(labels, reference, mask):
  """True iff `labels` and `reference` split mask's pixels the same way."""
  if not np.array_equal(labels >= 0, mask):
    return False
  a, b = labels[mask], reference[mask]
  pairs = set(zip(a.tolist(), b.tolist()))
  return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def cc_filter_ref(mask, connectivity, ratio, strict):
  """The authors' loop, with `<` (paper) or `<=` (strict) removal."""
  comp, num = ndimage.label(mask, structure=STRUCTURES[connectivity])
  if num == 0:
    return np.zeros_like(mask, bool)
  sizes = np.bincount(comp.ravel())[1:]
  largest = sizes.max()
  out = np.zeros_like(mask, bool)
  for i, size in enumerate(sizes, start=1):
    removed = size <= ratio * largest if strict else size < ratio * largest
    if not removed:
      out[comp == i] = True
  return out


def plateau_runs(s):
  runs, start = [], 0
  for k in range(1, len(s) + 1):
    if k == len(s) or s[k] != s[start]:
      runs.append((start, k - 1))
      start = k
  return runs


def paper_histogram_ref(shifted, bins=12, window=3):
  g = (0.2989 * shifted[..., 0].astype(np.float64)
       + 0.5870 * shifted[..., 1] + 0.1140 * shifted[..., 2])
  hist, _ = np.histogram(g, bins=bins, range=(-1, 1))
  s = np.convolve(hist, np.ones(window), mode="same")
  for a, b in plateau_runs(s):
    left_lower = a > 0 and s[a - 1] < s[a]
    right_lower = b < len(s) - 1 and s[b + 1] < s[b]
    if left_lower and right_lower:
      return False  # an interior maximum: drop
  return True


def authors_histogram_ref(shifted, bins=12, window=3):
  hist, _ = np.histogram(shifted.astype(np.float64), bins=bins, range=(-1, 1))
  s = np.convolve(hist, np.ones(window), mode="same")
  maxes = (np.r_[True, s[1:] >= s[:-1]] & np.r_[s[:-1] >= s[1:], True])
  return int(maxes.sum()) >= 2


# ------------------------------------------------------ adversarial masks


def spiral(n):
  """One 4-connected square spiral, ~n*n/2 pixels long."""
  m = np.zeros((n, n), bool)
  lo, hi = 0, n - 1
  while lo <= hi:
    m[lo, lo:hi + 1] = True
    m[lo:hi + 1, hi] = True
    m[hi, lo:hi + 1] = True
    if lo + 2 <= hi:
      m[lo + 2:hi + 1, lo] = True
      m[lo + 2, lo:lo + 3] = True
    lo += 2
    hi -= 2
  return m


def serpentine(h, w):
  """Rows joined alternately at the right and left ends: one long path."""
  m = np.zeros((h, w), bool)
  m[::2] = True
  for i, y in enumerate(range(1, h, 2)):
    m[y, w - 1 if i % 2 == 0 else 0] = True
  return m


def diagonal_chains(n):
  """Diagonal and anti-diagonal staircases: one piece each in 8-conn only."""
  m = np.zeros((n, n), bool)
  idx = np.arange(n)
  m[idx, idx] = True
  m[idx[: n // 2], n - 1 - 2 * idx[: n // 2]] = True
  zig = np.arange(0, n, 2)
  m[n - 1 - (zig % 4 == 0), zig] = True  # a zigzag along the bottom rows
  return m


def adversarial_masks(n=32):
  sp = spiral(n)
  checker = (np.add.outer(np.arange(n), np.arange(n)) % 2).astype(bool)
  single = np.zeros((n, n), bool)
  single[n // 3, n - 1] = True
  corners = np.zeros((n, n), bool)
  corners[[0, 0, -1, -1], [0, -1, 0, -1]] = True
  return {
      "spiral": sp, "spiral_flipped": sp[::-1, ::-1], "spiral_t": sp.T,
      "serpentine": serpentine(n, n), "serpentine_t": serpentine(n, n).T[::-1],
      "checkerboard": checker, "checker_inv": ~checker,
      "diagonals": diagonal_chains(n),
      "diagonals_flipped": diagonal_chains(n)[:, ::-1],
      "single": single, "corners": corners,
      "empty": np.zeros((n, n), bool), "full": np.ones((n, n), bool),
  }


# ------------------------------------------------------------ labelling


METHODS = ("sweep", "hook")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("connectivity", [4, 8])
def test_labels_exact_on_adversarial_masks(connectivity, method):
  named = adversarial_masks()
  batch = np.stack(list(named.values()))
  labels, rounds = filters.label_components(batch, connectivity=connectivity,
                                            method=method)
  labels = np.asarray(labels)
  for i, (name, mask) in enumerate(named.items()):
    ref, _ = ndimage.label(mask, structure=STRUCTURES[connectivity])
    assert same_partition(labels[i], ref, mask), name
    # Labels are the smallest row-major index of each component.
    fg = np.flatnonzero(mask)
    flat = labels[i].ravel()
    for comp in np.unique(ref[mask]):
      members = np.flatnonzero(ref.ravel() == comp)
      assert np.all(flat[members] == members.min()), name
    assert np.all(flat[~np.isin(np.arange(mask.size), fg)] == -1)
  # A 512-pixel-long spiral needs few hooking rounds, not its length; the
  # sweeps stop at SWEEP_ROUNDS and leave it to hooking.
  assert int(rounds) <= 12 + (filters.SWEEP_ROUNDS if method == "sweep"
                              else 0)


@pytest.mark.parametrize("method", METHODS)
def test_checkerboard_and_diagonals_differ_by_connectivity(method):
  checker = adversarial_masks(8)["checkerboard"]
  l4, _ = filters.label_components(checker, connectivity=4, method=method)
  l8, _ = filters.label_components(checker, connectivity=8, method=method)
  assert len(np.unique(np.asarray(l4)[checker])) == checker.sum()
  assert len(np.unique(np.asarray(l8)[checker])) == 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 3)])
def test_labels_exact_on_thin_shapes(shape):
  rng = np.random.default_rng(sum(shape))
  batch = rng.random((6,) + shape) < 0.6
  batch[0] = True
  batch[1] = False
  for connectivity, method in itertools.product((4, 8), METHODS):
    labels, _ = filters.label_components(batch, connectivity=connectivity,
                                         method=method)
    for mask, lab in zip(batch, np.asarray(labels)):
      ref, _ = ndimage.label(mask, structure=STRUCTURES[connectivity])
      assert same_partition(lab, ref, mask)


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), density=st.floats(0.05, 0.95),
       connectivity=st.sampled_from([4, 8]), smooth=st.booleans(),
       method=st.sampled_from(METHODS))
def test_labels_exact_on_random_masks(seed, density, connectivity, smooth,
                                      method):
  rng = np.random.default_rng(seed)
  noise = rng.random((4, 24, 20))
  if smooth:
    noise = ndimage.uniform_filter(noise, size=(1, 3, 3))
  batch = noise < np.quantile(noise, density)
  labels, _ = filters.label_components(batch, connectivity=connectivity,
                                       method=method)
  for mask, lab in zip(batch, np.asarray(labels)):
    ref, _ = ndimage.label(mask, structure=STRUCTURES[connectivity])
    assert same_partition(lab, ref, mask)


def test_few_rounds_on_ordinary_masks():
  """Smooth masks: a few hooking rounds, or sweeps alone (no hooking)."""
  rng = np.random.default_rng(0)
  smooth = ndimage.gaussian_filter(rng.normal(size=(8, 64, 64)), (0, 3, 3))
  _, hooks = filters.label_components(smooth > 0, connectivity=4,
                                      method="hook")
  assert int(hooks) <= 10
  _, sweeps = filters.label_components(smooth > 0, connectivity=4,
                                       method="sweep")
  assert int(sweeps) < filters.SWEEP_ROUNDS


def test_auto_hooks_on_cpu_and_sweeps_when_lowered_for_tpu():
  batch = np.stack(list(adversarial_masks().values()))  # With the spiral.
  auto = filters.label_components(batch, connectivity=4)
  hook = filters.label_components(batch, connectivity=4, method="hook")
  sweep = filters.label_components(batch, connectivity=4, method="sweep")
  assert int(auto[1]) == int(hook[1]) != int(sweep[1])
  np.testing.assert_array_equal(auto[0], sweep[0])
  # Lowered for TPU (no TPU needed to lower), only the sweep loop is left
  # beside the hooking fallback: two while loops, and `auto` picks the
  # branch at lowering (no runtime conditional on the platform).
  text = jax.jit(functools.partial(filters.label_components, connectivity=4)
                 ).trace(batch).lower(lowering_platforms=("tpu",)).as_text()
  assert text.count("stablehlo.while") == 2
  text = jax.jit(functools.partial(filters.label_components, connectivity=4)
                 ).trace(batch).lower(lowering_platforms=("cpu",)).as_text()
  assert text.count("stablehlo.while") == 1


def test_labelling_is_vmappable_and_jittable():
  rng = np.random.default_rng(1)
  batch = rng.random((5, 10, 12)) < 0.5
  direct, _ = filters.label_components(batch, connectivity=8)
  mapped, _ = jax.jit(jax.vmap(
      functools.partial(filters.label_components, connectivity=8)))(batch)
  assert np.array_equal(direct, mapped)


# ---------------------------------------------------- components filter


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), connectivity=st.sampled_from([4, 8]),
       strict=st.booleans(), ratio=st.sampled_from([0.0, 0.2, 1.0]))
def test_components_filter_matches_reference(seed, connectivity, strict, ratio):
  rng = np.random.default_rng(seed)
  batch = rng.random((4, 16, 16)) < rng.uniform(0.1, 0.7)
  got = np.asarray(filters.connected_components_filter(
      batch, connectivity=connectivity, min_ratio=ratio, strict=strict))
  for mask, out in zip(batch, got):
    assert np.array_equal(out, cc_filter_ref(mask, connectivity, ratio,
                                             strict))


@pytest.mark.parametrize("strict", [False, True])
def test_components_filter_ratio_exactly_at_threshold(strict):
  mask = np.zeros((12, 12), bool)
  mask[0, :10] = True  # |M_1| = 10
  mask[3, :2] = True  # |M_2| = 2 = 0.2 * 10: kept by the paper, not strictly
  mask[6, :1] = True  # |M_3| = 1 < 2: removed by both
  mask[9, 0] = mask[10, 1] = True  # diagonal pair: 2 pixels in 8-conn only
  for connectivity in (4, 8):
    out = np.asarray(filters.connected_components_filter(
        mask, connectivity=connectivity, min_ratio=0.2, strict=strict))
    assert np.array_equal(out, cc_filter_ref(mask, connectivity, 0.2, strict))
    assert out[3, :2].all() == (not strict)
    assert not out[6, 0]
    assert out[9, 0] == (connectivity == 8 and not strict)


def test_unrolled_rounds_run_exactly_that_many_rounds():
  """unrolled_rounds (for costing one round) runs the given rounds in place
  of the loops: enough of them give the exact filter, one sweep alone leaves
  a spiral split into pieces, so the filter drops some of it."""
  batch = np.stack([spiral(24), np.eye(24, dtype=bool)])
  exact = [cc_filter_ref(m, 4, 0.2, False) for m in batch]
  kwargs = dict(connectivity=4, min_ratio=0.2, strict=False, method="sweep")
  enough = np.asarray(filters.connected_components_filter(
      batch, unrolled_rounds=(2, 12), **kwargs))
  one_sweep = np.asarray(filters.connected_components_filter(
      batch, unrolled_rounds=(1, 0), **kwargs))
  assert all(np.array_equal(g, e) for g, e in zip(enough, exact))
  assert not np.array_equal(one_sweep[0], exact[0])
  assert one_sweep[0].sum() < exact[0].sum()


def test_components_filter_keeps_empty_and_full():
  batch = np.stack([np.zeros((6, 6), bool), np.ones((6, 6), bool)])
  out = np.asarray(filters.connected_components_filter(
      batch, connectivity=4, min_ratio=0.2, strict=True))
  assert np.array_equal(out, batch)


# ---------------------------------------------------------- size filter


def test_size_filter_matches_numpy_including_equality():
  batch = np.zeros((5, 4, 5), bool)
  for i, count in enumerate([0, 9, 10, 11, 20]):
    batch[i].ravel()[:count] = True
  got = np.asarray(filters.size_filter(batch, max_foreground=0.5))
  assert got.tolist() == [True, True, True, False, False]
  rng = np.random.default_rng(3)
  batch = rng.random((20, 7, 9)) < rng.random((20, 1, 1))
  got = np.asarray(filters.size_filter(batch, max_foreground=0.3))
  assert np.array_equal(got, batch.mean(axis=(1, 2)) <= 0.3)


def test_strict_size_filter_drops_exactly_half_as_the_authors_code():
  batch = np.zeros((4, 128, 128), bool)
  for i, count in enumerate([8191, 8192, 8193, 0]):  # 8192 = half of 16384.
    batch[i].ravel()[:count] = True
  authors = batch.mean(axis=(1, 2)) < 0.5  # Their `mask.mean() < 0.5`.
  got = np.asarray(filters.size_filter(batch, max_foreground=0.5,
                                       strict=True))
  assert np.array_equal(got, authors) and got.tolist() == [True, False,
                                                           False, True]
  # 0.4999 reads as 1/2: no substitute for strict.
  assert np.asarray(filters.size_filter(batch, max_foreground=0.4999))[1]
  spec = synth_batch.SynthSpec.from_config(
      dict(default.get_config().synth, strict_size=True))
  assert spec.strict_size


# ----------------------------------------------------- histogram filter


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1),
       rule=st.sampled_from(["paper", "authors"]),
       modes=st.integers(1, 3), spread=st.floats(0.02, 0.8),
       extremes=st.booleans())
def test_histogram_filter_matches_reference(seed, rule, modes, spread,
                                            extremes):
  rng = np.random.default_rng(seed)
  centres = rng.uniform(-1.1, 1.1, (6, 1, 1, modes, 3))
  if extremes:  # dark background, bright object: what the paper keeps
    centres = np.broadcast_to(0.97 * np.sign(centres[..., :1]), centres.shape)
  which = rng.integers(0, modes, (6, 10, 10, 1, 1))
  base = np.take_along_axis(centres.repeat(10, 1).repeat(10, 2), which, axis=3)
  shifted = (base[..., 0, :] + spread * rng.normal(size=(6, 10, 10, 3)))
  shifted = np.clip(shifted, -1.05, 1.05).astype(np.float32)
  got = np.asarray(filters.histogram_filter(shifted, rule=rule, bins=12,
                                            window=3))
  ref = paper_histogram_ref if rule == "paper" else authors_histogram_ref
  assert got.tolist() == [ref(s) for s in shifted]


def test_histogram_filter_hand_made_cases():
  def image_with_grays(values):
    # Gray images (R = G = B = v): gray(v) = 0.9999 v.
    return np.repeat(np.asarray(values, np.float32).reshape(1, -1, 1), 3, -1)

  bimodal = image_with_grays([-0.95] * 60 + [0.95] * 60)
  unimodal = image_with_grays([0.0] * 80 + [-0.95] * 20 + [0.95] * 20)
  # 10 per bin; zero padding lowers the end bins, so bins 1-10 form one
  # interior plateau maximum.
  flat = image_with_grays(np.linspace(-0.99, 0.99, 120))
  # Exactly -1 and 1 (saturated tanh) fall in the first and last bins.
  saturated = image_with_grays([-1.0] * 60 + [1.0] * 60)
  batch = np.stack([bimodal, unimodal, flat, saturated])
  paper = filters.histogram_filter(batch, rule="paper", bins=12, window=3)
  assert np.asarray(paper).tolist() == [True, False, False, True]
  assert [paper_histogram_ref(b) for b in batch] == [True, False, False, True]
  authors = filters.histogram_filter(batch, rule="authors", bins=12, window=3)
  assert np.asarray(authors).tolist() == [
      authors_histogram_ref(b) for b in batch]
  assert bool(authors[0])


def test_filters_reject_bad_settings():
  mask = np.zeros((4, 4), bool)
  with pytest.raises(UserError, match="config.synth.connectivity"):
    filters.label_components(mask, connectivity=6)
  with pytest.raises(UserError, match="config.synth.min_component_ratio"):
    filters.connected_components_filter(mask, connectivity=4, min_ratio=1.5,
                                        strict=False)
  with pytest.raises(UserError, match="config.synth.histogram_rule"):
    filters.histogram_filter(np.zeros((4, 4, 3)), rule="x", bins=12, window=3)
  with pytest.raises(UserError, match="config.synth.histogram_window"):
    filters.histogram_filter(np.zeros((4, 4, 3)), rule="paper", bins=12,
                             window=2)


def test_histogram_counts_are_exact_at_bin_edges():
  edges = np.float32([-1 + 2 * k / 12 for k in range(13)])  # -1 + k/6 in fp32
  values = np.concatenate([edges, np.nextafter(edges, -2), np.nextafter(
      edges, 2), [-1.5, 1.5, 0.3]]).astype(np.float32)
  # XLA on CPU flushes subnormals (next to the edge 0) to zero: left out.
  values = values[(values == 0) | (np.abs(values) > 1e-30)]
  got = np.asarray(filters.histogram(values[None], 12))[0]
  want, _ = np.histogram(values, bins=edges)
  assert np.array_equal(got, want)


def test_histogram_is_numpy_histogram_of_float32_values_near_edges():
  """1-4 float32 steps either side of every edge: numpy's bins, exactly."""
  edges = np.float32([-1 + 2 * k / 12 for k in range(13)])
  near = [edges]
  for direction in (-2, 2):
    step = edges
    for _ in range(4):
      step = np.nextafter(step, np.float32(direction))
      near.append(step)
  values = np.concatenate(near).astype(np.float32)
  values = values[(values == 0) | (np.abs(values) > 1e-30)]  # No subnormals.
  got = np.asarray(filters.histogram(values[None], 12))[0]
  want, _ = np.histogram(values, bins=12, range=(-1, 1))
  assert np.array_equal(got, want)
  # float64 edges would bin some of these values differently: the test
  # discriminates.
  float64, _ = np.histogram(values.astype(np.float64), bins=12, range=(-1, 1))
  assert not np.array_equal(got, float64)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("density", [0.45, 0.6])
def test_fill_holes_matches_scipy_on_random_masks(connectivity, density):
  rng = np.random.default_rng(int(density * 100) + connectivity)
  masks = rng.random((24, 17, 23)) < density
  masks[:4] = ndimage.binary_dilation(masks[:4], iterations=1)
  structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4
                                                else 2)
  reference = np.stack([ndimage.binary_fill_holes(m, structure=structure)
                        for m in masks])
  got = np.asarray(filters.fill_holes(masks, connectivity=connectivity))
  np.testing.assert_array_equal(got, reference)


def test_fill_holes_planted_ring_and_border_notch():
  ring = np.zeros((9, 9), bool)
  ring[2:7, 2:7] = True
  ring[4, 4] = False  # A hole: filled.
  ring[0:3, 5] = False  # A notch open to the border: kept.
  ring[0:2, :] = False
  expected = ring.copy()
  expected[4, 4] = True
  np.testing.assert_array_equal(filters.fill_holes(ring), expected)
  empty, full = np.zeros((5, 5), bool), np.ones((5, 5), bool)
  np.testing.assert_array_equal(filters.fill_holes(empty), empty)
  np.testing.assert_array_equal(filters.fill_holes(full), full)
