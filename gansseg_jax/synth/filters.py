"""The three mask filters of docs/method.md §6, jitted and vmappable.

Every function takes one sample or a batch: leading axes before [H, W]
(masks) or [H, W, 3] (images) are batch axes, handled natively, so a batch
can be filtered with one call (faster on CPU than `jax.vmap`, which also
works). Settings are keyword-only static arguments; pass them from
`SynthSpec` (gansseg_jax/synth/batch.py), which reads them from
`config.synth`.

- `size_filter`: keep a sample iff its foreground fraction <= max_foreground
  (< with `strict`, the authors' code).
- `histogram_filter`: the paper's rule ('paper') or the authors' code rule
  ('authors') on the histogram of G(z + h).
- `connected_components_filter`: remove components smaller than
  ratio x the largest; `label_components` is the exact labelling under it.
- `fill_holes` (not in the paper; `config.synth.fill_holes`): solid object
  masks, every background region the mask encloses made foreground.

Threshold ratios (max_foreground, min_component_ratio) are read as the
nearest fraction num/den with den <= 1000 and compared in integers, so
equality cases (|M_i| == 0.2 |M_1|) are decided exactly.
"""
import fractions
import functools
from typing import Tuple

import jax
from jax import lax
import jax.numpy as jnp

from gansseg_jax.infra.errors import UserError
from gansseg_jax.synth import masks as masks_lib

HISTOGRAM_RULES = ("paper", "authors")
CONNECTIVITIES = (4, 8)
_MAX_DENOMINATOR = 1000  # Keeps size * den inside int32 up to 1024x1024.
# Larger than every flat pixel index of a batch (B * H * W < 2**30).
_NO_LABEL = 2**30
_EDGE_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))
_CORNER_OFFSETS = ((-1, -1), (-1, 1), (1, -1), (1, 1))
# Labelling methods (_root_labels) and the most sweep rounds before 'sweep'
# falls back to hooking.
LABEL_METHODS = ("auto", "sweep", "hook")
SWEEP_ROUNDS = 16


def as_fraction(value: float, field: str) -> Tuple[int, int]:
  """`value` in [0, 1] as (num, den), den <= 1000; UserError names `field`."""
  if not 0.0 <= float(value) <= 1.0:
    raise UserError(f"{field}: must be in [0, 1], got {value!r}")
  fraction = fractions.Fraction(float(value)).limit_denominator(
      _MAX_DENOMINATOR)
  return fraction.numerator, fraction.denominator


def check_connectivity(connectivity: int) -> None:
  if connectivity not in CONNECTIVITIES:
    raise UserError(
        f"config.synth.connectivity: must be 4 or 8, got {connectivity!r}")


def check_histogram(rule: str, bins: int, window: int) -> None:
  if rule not in HISTOGRAM_RULES:
    raise UserError(f"config.synth.histogram_rule: must be one of "
                    f"{HISTOGRAM_RULES}, got {rule!r}")
  if not isinstance(bins, int) or bins < 3:
    raise UserError(
        f"config.synth.histogram_bins: must be an integer >= 3, got {bins!r}")
  if not isinstance(window, int) or window < 1 or window % 2 == 0:
    raise UserError(f"config.synth.histogram_window: must be an odd integer "
                    f">= 1, got {window!r}")


# ----------------------------------------------------------------------------
# Size filter.


@functools.partial(jax.jit, static_argnames=("max_foreground", "strict"))
def size_filter(mask: jax.Array, *, max_foreground: float,
                strict: bool = False) -> jax.Array:
  """Keep iff |M| / (H W) <= max_foreground (docs/method.md §6; paper: 0.5).

  The paper drops fractions > 0.5 (default); the authors' code keeps only
  < 0.5 (`strict=True`), so the two differ on masks of exactly half the
  image. Lowering max_foreground is no substitute for `strict`: it is read
  as the nearest fraction with a denominator <= 1000, so 0.4999 is 1/2.

  Args:
    mask: [..., H, W] bool or {0, 1}.
    max_foreground: the largest foreground fraction kept.
    strict: drop a fraction equal to max_foreground too.

  Returns:
    bool [...]: True = keep.
  """
  num, den = as_fraction(max_foreground, "config.synth.max_foreground")
  height, width = mask.shape[-2:]
  area = jnp.sum(mask.astype(jnp.int32), axis=(-2, -1))
  if strict:
    return area * den < num * height * width
  return area * den <= num * height * width


# ----------------------------------------------------------------------------
# Histogram filter.


def histogram(values: jax.Array, bins: int) -> jax.Array:
  """Counts of `values` [..., N] in `bins` equal bins on [-1, 1]: [..., bins].

  Bins are [e_k, e_{k+1}) except the last, which is closed [e_{bins-1}, 1],
  with e_k = -1 + 2k / bins rounded to float32; values outside [-1, 1] are
  not counted. This is exactly `numpy.histogram(x, bins, range=(-1, 1))` of
  the float32 values x (numpy builds its edges in the values' dtype and
  compares each value with them), tested on values 1-4 float32 steps on
  either side of every edge. It is not numpy on float64 values (float64
  edges) nor torch.histc (the authors' code), which put some values a few
  float32 steps below an edge in other bins. The bin index
  floor((x + 1) bins / 2) is corrected by one comparison with each
  neighbouring edge, so rounding never moves a value across an edge; counts
  are one scatter-add over all samples.
  """
  lower = jnp.array([-1.0 + 2.0 * k / bins for k in range(bins)], jnp.float32)
  upper = jnp.concatenate([lower[1:], jnp.array([jnp.inf], jnp.float32)])
  leading, length = values.shape[:-1], values.shape[-1]
  values = values.reshape(-1, length).astype(jnp.float32)
  index = jnp.floor((values + 1.0) * (bins / 2)).astype(jnp.int32)
  index = jnp.clip(index, 0, bins - 1)
  index = index - (values < lower[index]) + (values >= upper[index])
  index = jnp.clip(index, 0, bins - 1)
  inside = (values >= -1.0) & (values <= 1.0)
  sample = jnp.arange(values.shape[0], dtype=jnp.int32)[:, None]
  counts = jnp.zeros(values.shape[0] * bins, jnp.int32).at[
      (sample * bins + index).reshape(-1)].add(
          inside.reshape(-1).astype(jnp.int32), mode="promise_in_bounds")
  return counts.reshape(leading + (bins,))


def _moving_sum(hist: jax.Array, window: int) -> jax.Array:
  """Sum over a centred window, zeros outside ('same' length).

  Proportional to the moving average, so it has the same maxima, and stays
  an exact integer.
  """
  half = window // 2
  padded = jnp.pad(hist, [(0, 0)] * (hist.ndim - 1) + [(half, half)])
  bins = hist.shape[-1]
  return sum(padded[..., k:k + bins] for k in range(window))


def _has_interior_maximum(smooth: jax.Array) -> jax.Array:
  """Whether a plateau maximum lies away from both end bins: [..., n] -> [...].

  A local maximum is a maximal run of equal values whose neighbours on both
  sides are lower; it is interior when the run touches neither the first nor
  the last bin. Equivalently, in the sequence of non-zero steps
  d_k = s_k - s_{k-1}, an up-step is directly followed by a down-step.
  """
  steps = jnp.sign(smooth[..., 1:] - smooth[..., :-1])
  next_sign = jnp.zeros(steps.shape[:-1], steps.dtype)
  found = jnp.zeros(steps.shape[:-1], bool)
  # Right to left: next_sign is the first non-zero step after position k.
  for k in range(steps.shape[-1] - 1, -1, -1):
    found = found | ((steps[..., k] > 0) & (next_sign < 0))
    next_sign = jnp.where(steps[..., k] != 0, steps[..., k], next_sign)
  return found


def _count_maxima_with_plateaus(smooth: jax.Array) -> jax.Array:
  """Bins k with s_k >= s_{k-1} and s_k >= s_{k+1}, ends compared one-sided."""
  left = jnp.concatenate(
      [jnp.ones_like(smooth[..., :1], bool),
       smooth[..., 1:] >= smooth[..., :-1]], axis=-1)
  right = jnp.concatenate(
      [smooth[..., :-1] >= smooth[..., 1:],
       jnp.ones_like(smooth[..., :1], bool)], axis=-1)
  return jnp.sum(left & right, axis=-1)


@functools.partial(jax.jit, static_argnames=("rule", "bins", "window"))
def histogram_filter(shifted: jax.Array, *, rule: str, bins: int,
                     window: int) -> jax.Array:
  """Histogram filter on the shifted image G(z + h) (docs/method.md §6).

  'paper': histogram of gray(G(z + h)) with `bins` bins over [-1, 1],
  moving average over `window` bins (zero padded, same length); drop the
  sample if it has a local maximum (a plateau counts as one) away from the
  first and last bins, i.e. keep the bimodal dark/bright ones.
  'authors' (the authors' code): the same histogram of all three channels'
  values; keep the sample iff it has at least two bins k with
  s_k >= s_{k-1} and s_k >= s_{k+1} (the ends compared with their one
  neighbour), so plateaus count bin by bin.

  Args:
    shifted: [..., H, W, 3] in [-1, 1].
    rule: 'paper' or 'authors'.
    bins: number of bins (12).
    window: moving-average window, odd (3).

  Returns:
    bool [...]: True = keep.
  """
  check_histogram(rule, bins, window)
  if rule == "paper":
    values = masks_lib.gray(shifted)
    values = values.reshape(values.shape[:-2] + (-1,))
  else:
    values = shifted.reshape(shifted.shape[:-3] + (-1,))
  smooth = _moving_sum(histogram(values, bins), window)
  if rule == "paper":
    return ~_has_interior_maximum(smooth)
  return _count_maxima_with_plateaus(smooth) >= 2


# ----------------------------------------------------------------------------
# Connected components.


def _neighbour_min(labels: jax.Array, foreground: jax.Array,
                   connectivity: int) -> jax.Array:
  """Min label over each foreground pixel and its foreground neighbours."""
  offsets = _EDGE_OFFSETS + (_CORNER_OFFSETS if connectivity == 8 else ())
  height, width = labels.shape[-2:]
  values = jnp.where(foreground, labels, _NO_LABEL)
  padded = jnp.pad(values, [(0, 0)] * (values.ndim - 2) + [(1, 1), (1, 1)],
                   constant_values=_NO_LABEL)
  smallest = values
  for dy, dx in offsets:
    smallest = jnp.minimum(
        smallest, padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width])
  return jnp.where(foreground, smallest, labels)


def _run_lengths(foreground: jax.Array, axis: int,
                 reverse: bool) -> jax.Array:
  """Foreground pixels before each pixel in its run along `axis` (after it
  with `reverse`); 0 at the run's first pixel and on background."""
  n = foreground.shape[axis]
  position = lax.broadcasted_iota(jnp.int32, foreground.shape, axis)
  if reverse:
    position = n - 1 - position
  last_background = lax.cummax(jnp.where(foreground, -1, position), axis=axis,
                               reverse=reverse)
  return jnp.where(foreground, position - last_background - 1, 0)


def _shift_along(array: jax.Array, k: int, axis: int, fill) -> jax.Array:
  """out[i] = array[i - k] along `axis` (so k < 0 reads i + |k|), `fill`
  where that falls outside."""
  n = array.shape[axis]
  pad = [(0, 0)] * array.ndim
  pad[axis] = (k, 0) if k > 0 else (0, -k)
  padded = jnp.pad(array, pad, constant_values=fill)
  start = 0 if k > 0 else -k
  return lax.slice_in_dim(padded, start, start + n, axis=axis)


def _run_min(values: jax.Array, before: jax.Array, after: jax.Array,
             axis: int) -> jax.Array:
  """Min of `values` over each pixel's run along `axis`, by doubling: after
  the step of shift k, prefix(p) = min over the last 2k pixels of p's run up
  to p (suffix likewise); `before`/`after` are _run_lengths."""
  prefix, suffix, k = values, values, 1
  while k < values.shape[axis]:
    prefix = jnp.where(before >= k, jnp.minimum(
        prefix, _shift_along(prefix, k, axis, _NO_LABEL)), prefix)
    suffix = jnp.where(after >= k, jnp.minimum(
        suffix, _shift_along(suffix, -k, axis, _NO_LABEL)), suffix)
    k *= 2
  return jnp.minimum(prefix, suffix)


def _loop(cond, body, state, unrolled: int | None):
  """lax.while_loop(cond, body, state), or `unrolled` bodies in a row.

  Unrolled, a round's cost is what the compiled program's cost analysis
  counts (benchmarks/aot_tpu.py: one round = two programs' difference);
  the labels are then exact only if that many rounds suffice.
  """
  if unrolled is None:
    return lax.while_loop(cond, body, state)
  for _ in range(unrolled):
    state = body(state)
  return state


def _sweeps(foreground: jax.Array, labels: jax.Array, runs: dict,
            connectivity: int, unrolled: int | None
            ) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """Sweep rounds until no label changes or SWEEP_ROUNDS: each sets l to its
  min over p's horizontal run, then its vertical run, then (connectivity 8)
  p's foreground neighbours. Returns (labels, changed in the last round,
  rounds)."""

  def sweep(state):
    labels, _, rounds = state
    swept = jnp.where(foreground, labels, _NO_LABEL)
    for axis, (before, after) in runs.items():
      swept = _run_min(swept, before, after, axis)
    if connectivity == 8:
      swept = _neighbour_min(swept, foreground, connectivity)
    swept = jnp.where(foreground, swept, labels)
    return swept, jnp.any(swept != labels), rounds + 1

  return _loop(
      lambda state: state[1] & (state[2] < SWEEP_ROUNDS), sweep,
      (labels, jnp.array(True), jnp.array(0, jnp.int32)), unrolled)


def _hooking(foreground: jax.Array, labels: jax.Array, unsettled: jax.Array,
             rounds: jax.Array, connectivity: int, unrolled: int | None
             ) -> Tuple[jax.Array, jax.Array]:
  """Hooking rounds while `unsettled` (see _root_labels); (labels, rounds)."""

  def hook(state):
    labels, _, rounds = state
    smallest = _neighbour_min(labels.reshape(foreground.shape), foreground,
                              connectivity).reshape(-1)
    hooked = jnp.minimum(labels, smallest).at[labels].min(
        smallest, mode="promise_in_bounds")
    jumped = hooked.at[hooked].get(mode="promise_in_bounds")
    jumped = jumped.at[jumped].get(mode="promise_in_bounds")
    return jumped, jnp.any(jumped != labels), rounds + 1

  labels, _, rounds = _loop(
      lambda state: state[1], hook, (labels.reshape(-1), unsettled, rounds),
      unrolled)
  return labels.reshape(foreground.shape), rounds


def _root_labels(foreground: jax.Array, connectivity: int, method: str,
                 unrolled_rounds: Tuple[int, int] | None = None
                 ) -> Tuple[jax.Array, jax.Array]:
  """Component labels of a [B, H, W] batch as flat indices into B*H*W.

  Every pixel p holds a label l(p), the flat index of a pixel of its own
  component with l(p) <= p (background pixels hold p and never change).
  Start: l(p) = the first pixel of p's horizontal run. Then, each loop until
  no label changes:

  'sweep' (dense work only; at most SWEEP_ROUNDS rounds, then 'hook' if
    labels still change): l = its min over p's horizontal run of
    foreground, then over its vertical run (`_run_min`: log2(side) shifted
    minima each way), then, with connectivity 8, over p's foreground
    neighbours. A smooth mask settles in a few rounds, about one per turn of
    its paths: 7-16 (median 8.5) for batches of 18 saliency masks at 128 px.
  'hook': each round
    m(p) = min of l over p and its foreground neighbours,
    l(p) = min(l(p), m(p)); l(l(p)) = min(l(l(p)), m(p))   (hooking),
    l(p) = l(l(p)), twice                                  (pointer jumping).
    Hooking the current root lets labels jump along long thin shapes: a
    128x128 square spiral (one 8321-pixel path, ~250 turns) takes 8 rounds,
    smooth masks 5-7.
  'auto': 'sweep' on TPU, 'hook' elsewhere (`lax.platform_dependent`). A
    hooking round is a scatter and two gathers at data-dependent indices,
    which XLA's TPU cost model charges about a memory tile per element
    (docs/tpu.md): ~45x a sweep round's bytes at 128 px. On XLA:CPU the scatter is
    cheap and the sweeps' many shifted copies are not: 'hook' is ~20x faster
    there.
  Labels only decrease and stay inside their component, so every loop ends;
  at the fixed point l is constant on each component and equals the
  component's smallest index, which makes the partition exact whichever
  method ran. `unrolled_rounds` = (sweep rounds, hooking rounds) runs
  exactly that many of each instead of the loops (cost analysis only).

  Returns:
    (labels int32 [B, H, W], rounds int32 scalar: every round run).
  """
  if method not in LABEL_METHODS:
    raise ValueError(f"method {method!r} is not one of {LABEL_METHODS}")
  batch, height, width = foreground.shape
  size = height * width
  if batch * size >= _NO_LABEL:
    raise ValueError(f"label_components: {batch} masks of {height}x{width} "
                     f"exceed 2**30 pixels per call; split the batch")
  index = (jnp.arange(batch, dtype=jnp.int32)[:, None, None] * size
           + jnp.arange(size, dtype=jnp.int32).reshape(height, width))
  runs = {axis: (_run_lengths(foreground, axis, False),
                 _run_lengths(foreground, axis, True)) for axis in (2, 1)}
  start = index - runs[2][0]

  sweeps, hooks = unrolled_rounds or (None, None)

  def sweep_then_hook(start):
    labels, unsettled, rounds = _sweeps(foreground, start, runs, connectivity,
                                        sweeps)
    return _hooking(foreground, labels, unsettled, rounds, connectivity, hooks)

  def hook_only(start):
    return _hooking(foreground, start, jnp.array(True),
                    jnp.array(0, jnp.int32), connectivity, hooks)

  if method == "auto":
    return lax.platform_dependent(start, tpu=sweep_then_hook,
                                  default=hook_only)
  return (sweep_then_hook if method == "sweep" else hook_only)(start)


@functools.partial(jax.jit, static_argnames=("connectivity", "method"))
def label_components(mask: jax.Array, *, connectivity: int,
                     method: str = "auto") -> Tuple[jax.Array, jax.Array]:
  """Exact connected-component labels, the partition of scipy.ndimage.label.

  Args:
    mask: [..., H, W] bool or {0, 1}; non-zero = foreground.
    connectivity: 4 (edges, the paper) or 8 (edges and corners, the authors'
      code via skimage's default).
    method: 'auto', 'sweep' or 'hook' (_root_labels); the labels are the
      same, only the work differs.

  Returns:
    labels: int32 [..., H, W]; each foreground pixel holds the smallest
      row-major index y * W + x of its component, background holds -1.
    rounds: int32 scalar, the propagation rounds the batch needed.
  """
  check_connectivity(connectivity)
  height, width = mask.shape[-2:]
  foreground = (mask != 0).reshape((-1, height, width))
  labels, rounds = _root_labels(foreground, connectivity, method)
  offsets = jnp.arange(foreground.shape[0], dtype=jnp.int32) * height * width
  local = jnp.where(foreground, labels - offsets[:, None, None], -1)
  return local.reshape(mask.shape), rounds


@functools.partial(jax.jit, static_argnames=("connectivity", "min_ratio",
                                             "strict", "method",
                                             "unrolled_rounds"))
def connected_components_filter(
    mask: jax.Array, *, connectivity: int, min_ratio: float, strict: bool,
    method: str = "auto",
    unrolled_rounds: Tuple[int, int] | None = None) -> jax.Array:
  """Remove components with |M_i| < min_ratio |M_1| (docs/method.md §6).

  M_1 is the largest component of the sample. `strict=True` also removes
  |M_i| == min_ratio |M_1| (the authors' code keeps ratio > 0.2). An empty
  mask stays empty; the largest component is always kept.

  Args:
    mask: [..., H, W] bool or {0, 1}.
    connectivity: 4 or 8.
    min_ratio: in [0, 1] (0.2).
    strict: see above.
    method: the labelling's ('auto', 'sweep', 'hook'; _root_labels).
    unrolled_rounds: (sweep rounds, hooking rounds) run exactly instead of
      the labelling's loops: for costing one round (benchmarks/aot_tpu.py);
      None (the default) labels exactly.

  Returns:
    bool [..., H, W], the mask without the small components.
  """
  check_connectivity(connectivity)
  num, den = as_fraction(min_ratio, "config.synth.min_component_ratio")
  height, width = mask.shape[-2:]
  foreground = (mask != 0).reshape((-1, height, width))
  labels, _ = _root_labels(foreground, connectivity, method, unrolled_rounds)
  flat_labels = labels.reshape(-1)
  sizes = jnp.zeros(flat_labels.shape, jnp.int32).at[flat_labels].add(
      foreground.reshape(-1).astype(jnp.int32), mode="promise_in_bounds")
  largest = jnp.max(sizes.reshape(foreground.shape[0], -1), axis=1)
  own_size = sizes.at[flat_labels].get(mode="promise_in_bounds").reshape(
      foreground.shape)
  scaled_size = own_size * den
  threshold = (largest * num)[:, None, None]
  big_enough = scaled_size > threshold if strict else scaled_size >= threshold
  return (foreground & big_enough).reshape(mask.shape)


@functools.partial(jax.jit, static_argnames=("connectivity", "method"))
def fill_holes(mask: jax.Array, *, connectivity: int = 4,
               method: str = "auto") -> jax.Array:
  """The mask with its holes filled, as scipy.ndimage.binary_fill_holes.

  A hole is a connected region of background (`connectivity` 4, scipy's
  default structure, or 8) that touches no image border: filled = NOT the
  background reachable from the border. The background is labelled exactly
  (`label_components`); a component is "outside" when one of its pixels
  lies on the border. Not in the paper: the lighting rule leaves the parts
  of an object that do not brighten (eyes, mouth, shadows) out of its mask.

  Args:
    mask: [..., H, W] bool or {0, 1}.
    connectivity: 4 or 8, of the background.
    method: the labelling's ('auto', 'sweep', 'hook'; _root_labels).

  Returns:
    bool [..., H, W].
  """
  check_connectivity(connectivity)
  height, width = mask.shape[-2:]
  background = (mask == 0).reshape((-1, height, width))
  labels, _ = label_components(background, connectivity=connectivity,
                               method=method)
  count, pixels = background.shape[0], height * width
  rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
  on_border = ((rows == 0) | (rows == height - 1) | (cols == 0)
               | (cols == width - 1))
  # Slot `pixels` of each image's table is a sink for pixels that are not
  # background on the border.
  seeds = jnp.where(on_border & (labels >= 0), labels, pixels)
  table = jnp.zeros((count, pixels + 1), bool).at[
      jnp.arange(count)[:, None], seeds.reshape(count, -1)].set(True)
  outside = jnp.take_along_axis(
      table, jnp.where(labels >= 0, labels, pixels).reshape(count, -1),
      axis=1).reshape(background.shape) & (labels >= 0)
  return (~outside).reshape(mask.shape)
