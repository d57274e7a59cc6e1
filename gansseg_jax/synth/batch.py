"""A fixed-size batch of filtered (image, mask) pairs, built on device.

`synthesize` (docs/method.md §4-6, docs/architecture.md "fused training step"):

  1. n = ceil(batch_size * oversample) latents z from `sample_latents`;
  2. G(z) and G(z + h), h = r * direction / ||direction||, in one
     generator call on the 2n stacked latents; r = shift_radius times the
     spread of the generator's latent prior (shift_units 'spread', the
     default: 1 for N(0, I)) or shift_radius itself ('absolute');
  3. masks by `spec.mask_rule`;
  4. filters in the authors' order: connected components (edits the mask),
     then the size and histogram filters (reject samples); an empty mask
     passes, as in the authors' code;
  5. a stable argsort on "rejected" moves the kept samples to the front in
     their original order; the first `batch_size` are returned. Slots left
     without a kept sample carry a rejected sample with weight 0.

With `spec.max_rounds` R > 1, steps 1-5 are round 0 of a `lax.while_loop`
that runs rounds r = 1, 2, ... while slots are unfilled and r < R: round r
makes n new candidates from fold_in(key, r) and copies its kept ones, in
order, into the next free slots. The authors' code likewise generates until
the batch is full (up to 100 rounds of B, then it fails). A batch that round
0 fills holds the samples of R = 1 (to float rounding: the generator compiles
differently inside the loop); R = 1 runs steps 1-5 alone, with no loop, as
before the loop existed.

Everything has fixed shapes and stays on device. Batches still unfilled after
R rounds are counted (`stats`) and `UnfilledWarning` says so once; when
nearly every slot goes unfilled for many batches in a row, the host's
`StarvationGuard` stops the run with an error naming the filter to blame.
"""
import dataclasses
import functools
import math
from typing import Callable, Dict, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra.errors import UserError
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import filters
from gansseg_jax.synth import latents as latents_lib
from gansseg_jax.synth import masks as masks_lib

# Filters that reject samples: stats key -> (switch, knob) config fields.
REJECTING_FILTERS = {
    "rejected_size": ("config.synth.size_filter",
                      "config.synth.max_foreground"),
    "rejected_histogram": ("config.synth.histogram_filter",
                           "config.synth.histogram_rule"),
}

# Stats that combine over a step's chunks by max (the rest add up).
MAX_OVER_CHUNKS = frozenset({"rounds"})

Generate = Callable[..., jax.Array]


@dataclasses.dataclass(frozen=True)
class SynthSpec:
  """The static settings of mask synthesis, from `config.synth` (hashable)."""
  mask_rule: str
  shift_radius: float
  oversample: float
  size_filter: bool
  max_foreground: float
  strict_size: bool
  histogram_filter: bool
  histogram_rule: str
  histogram_bins: int
  histogram_window: int
  components_filter: bool
  connectivity: int
  min_component_ratio: float
  strict_ratio: bool
  fill_holes: bool
  starved_fraction: float
  max_starved_batches: int
  max_rounds: int
  shift_units: str = "spread"  # shift_radius in prior spreads, or 'absolute'.

  @classmethod
  def from_config(cls, synth_config: ml_collections.ConfigDict) -> "SynthSpec":
    """Reads and checks `config.synth`; a bad field raises UserError."""
    names = [field.name for field in dataclasses.fields(cls)]
    spec = cls(**{name: synth_config[name] for name in names})
    spec.check()
    return spec

  def check(self) -> None:
    masks_lib.check_mask_rule(self.mask_rule)
    if self.shift_units not in latent.SHIFT_UNITS:
      raise UserError(f"config.synth.shift_units: {self.shift_units!r} is not "
                      f"one of {', '.join(latent.SHIFT_UNITS)}")
    filters.check_histogram(self.histogram_rule, self.histogram_bins,
                            self.histogram_window)
    filters.check_connectivity(self.connectivity)
    filters.as_fraction(self.max_foreground, "config.synth.max_foreground")
    filters.as_fraction(self.min_component_ratio,
                        "config.synth.min_component_ratio")
    filters.as_fraction(self.starved_fraction, "config.synth.starved_fraction")
    if not self.shift_radius > 0:
      raise UserError(f"config.synth.shift_radius: must be > 0, got "
                      f"{self.shift_radius!r}")
    if not self.oversample >= 1:
      raise UserError(f"config.synth.oversample: must be >= 1, got "
                      f"{self.oversample!r}")
    if not (isinstance(self.max_starved_batches, int)
            and self.max_starved_batches >= 1):
      raise UserError(f"config.synth.max_starved_batches: must be an integer "
                      f">= 1, got {self.max_starved_batches!r}")
    if not (isinstance(self.max_rounds, int) and self.max_rounds >= 1):
      raise UserError(f"config.synth.max_rounds: must be an integer >= 1, "
                      f"got {self.max_rounds!r}")

  def num_candidates(self, batch_size: int) -> int:
    """ceil(batch_size * oversample) samples generated per batch."""
    return int(math.ceil(batch_size * self.oversample - 1e-9))


class Candidates(NamedTuple):
  """Every generated sample with its filter outcomes (before compaction)."""
  images: jax.Array  # [n, H, W, 3] G(z) in [-1, 1].
  masks: jax.Array  # [n, H, W] bool, after the components filter (and fill_holes).
  size_ok: jax.Array  # [n] bool; True when the size filter is off.
  histogram_ok: jax.Array  # [n] bool; True when the histogram filter is off.
  pruned_pixels: jax.Array  # [n] int32 removed by the components filter.
  keep: jax.Array  # [n] bool = size_ok & histogram_ok.


class SynthBatch(NamedTuple):
  images: jax.Array  # [B, H, W, 3] float32 in [-1, 1].
  masks: jax.Array  # [B, H, W] float32 in {0, 1}.
  weights: jax.Array  # [B] float32: 1 = kept sample, 0 = unfilled slot.
  stats: Dict[str, jax.Array]  # int32 scalars, see `synthesize`.


def shift_vector(direction: jax.Array, radius: float) -> jax.Array:
  """h = r * direction / ||direction||_2 (docs/method.md §4)."""
  direction = direction.astype(jnp.float32)
  return radius * direction / jnp.linalg.norm(direction)


def make_candidates(z: jax.Array, generate: Generate, gen_params,
                    direction: jax.Array, spec: SynthSpec,
                    affine_maps: Optional[jax.Array] = None) -> Candidates:
  """G(z), G(z + h), masks and filter outcomes for latents z [n, z_dim]."""
  n = z.shape[0]
  h = shift_vector(direction, latent.shift_length(
      spec.shift_radius, spec.shift_units, generate,
      "config.synth.shift_units"))
  both = generate(gen_params, jnp.concatenate(
      [z, latent.shift(z, h[None])], axis=0))
  images, shifted = both[:n], both[n:]
  masks = masks_lib.make_mask(spec.mask_rule, images, shifted, affine_maps)
  pruned_pixels = jnp.zeros((n,), jnp.int32)
  if spec.components_filter:
    filtered = filters.connected_components_filter(
        masks, connectivity=spec.connectivity,
        min_ratio=spec.min_component_ratio, strict=spec.strict_ratio)
    pruned_pixels = jnp.sum(masks & ~filtered, axis=(1, 2), dtype=jnp.int32)
    masks = filtered
  if spec.fill_holes:
    masks = filters.fill_holes(masks)
  size_ok = jnp.ones((n,), bool)
  if spec.size_filter:
    size_ok = filters.size_filter(masks, max_foreground=spec.max_foreground,
                                  strict=spec.strict_size)
  histogram_ok = jnp.ones((n,), bool)
  if spec.histogram_filter:
    histogram_ok = filters.histogram_filter(
        shifted, rule=spec.histogram_rule, bins=spec.histogram_bins,
        window=spec.histogram_window)
  return Candidates(images, masks, size_ok, histogram_ok, pruned_pixels,
                    size_ok & histogram_ok)


def candidate_stats(cand: Candidates) -> Dict[str, jax.Array]:
  """Counts of one round's candidates (int32 scalars, see `synthesize`)."""
  return {
      "generated": jnp.array(cand.keep.shape[0], jnp.int32),
      "kept": jnp.sum(cand.keep, dtype=jnp.int32),
      "rejected_size": jnp.sum(~cand.size_ok, dtype=jnp.int32),
      "rejected_histogram": jnp.sum(~cand.histogram_ok, dtype=jnp.int32),
      "pruned_samples": jnp.sum(cand.pruned_pixels > 0, dtype=jnp.int32),
  }


def fill_slots(images: jax.Array, masks: jax.Array, filled: jax.Array,
               cand: Candidates, count: jax.Array):
  """Slots filled..filled+count-1 <- the candidates in kept-first order.

  Slot j (filled <= j < filled + count) takes candidate order[j - filled],
  order = stable argsort of "rejected" (kept ones first, in their order);
  every other slot keeps its content. Fixed shapes: a gather and a select.
  """
  order = jnp.argsort(~cand.keep, stable=True)
  offset = jnp.arange(images.shape[0]) - filled
  new = (offset >= 0) & (offset < count)
  source = order[jnp.clip(offset, 0, order.shape[0] - 1)]
  images = jnp.where(new[:, None, None, None], cand.images[source], images)
  masks = jnp.where(new[:, None, None], cand.masks[source], masks)
  return images, masks


@functools.partial(
    jax.jit,
    static_argnames=("generate", "sample_latents", "spec", "batch_size"))
def synthesize(key: jax.Array, generate: Generate, gen_params,
               direction: jax.Array, sample_latents: latents_lib.Sampler,
               spec: SynthSpec, batch_size: int,
               affine_maps: Optional[jax.Array] = None) -> SynthBatch:
  """One fixed-size batch of filtered synthetic pairs (module docstring).

  Args:
    key: PRNG key; the batch is a pure function of it.
    generate: `generate(params, z [m, z_dim]) -> images [m, H, W, 3]`.
    gen_params: the generator's parameters (a pytree).
    direction: [z_dim] the raw background direction h_bg.
    sample_latents: `sample(key, n) -> z [n, z_dim]` (latents.make_sampler).
    spec: SynthSpec.from_config(config.synth); spec.max_rounds caps the rounds.
    batch_size: B, the slots returned.
    affine_maps: [2, 3, 4] the two affine maps, for mask_rule='affine' only.

  Returns:
    SynthBatch; stats (int32 scalars), summed over the rounds run: generated
    (n per round), kept (samples passing every filter, may exceed B),
    rejected_size / rejected_histogram (samples each filter rejects, counted
    independently, 0 when off), pruned_samples (samples whose mask the
    components filter changed); and filled (slots holding a kept sample,
    min(kept, B)), unfilled (B - filled), rounds (rounds run, 1..max_rounds).
  """
  n = spec.num_candidates(batch_size)

  def candidates(round_key):
    z = latent.draw(generate, gen_params, round_key, (n,),
                    direction.shape[-1], base=sample_latents)
    return make_candidates(z, generate, gen_params, direction, spec,
                           affine_maps)

  if spec.max_rounds == 1:
    cand = candidates(key)
    order = jnp.argsort(~cand.keep, stable=True)[:batch_size]
    stats = candidate_stats(cand)
    filled = jnp.minimum(stats["kept"], batch_size)
    stats.update(filled=filled, unfilled=batch_size - filled,
                 rounds=jnp.array(1, jnp.int32))
    return SynthBatch(images=cand.images[order],
                      masks=cand.masks[order].astype(jnp.float32),
                      weights=cand.keep[order].astype(jnp.float32),
                      stats=stats)

  def round_key(r):
    """`key` for round 0 (the batch of max_rounds=1), fold_in(key, r) after."""
    data = jax.random.key_data(key)
    folded = jax.random.key_data(jax.random.fold_in(key, r))
    return jax.random.wrap_key_data(jnp.where(r == 0, data, folded),
                                    impl=jax.random.key_impl(key))

  def unfinished(carry):
    r, filled = carry[0], carry[1]
    return (r < spec.max_rounds) & (filled < batch_size)

  def one_round(carry):
    r, filled, images, masks, totals = carry
    cand = candidates(round_key(r))
    counts = candidate_stats(cand)
    # Round 0 fills every slot as the one-round batch does (kept samples,
    # then rejected ones with weight 0); later rounds add kept ones only.
    count = jnp.where(r == 0, batch_size, counts["kept"])
    images, masks = fill_slots(images, masks, filled, cand, count)
    filled = jnp.minimum(filled + counts["kept"], batch_size)
    totals = {k: totals[k] + v for k, v in counts.items()}
    return r + 1, filled, images, masks, totals

  shapes = jax.eval_shape(candidates, key)
  zeros = lambda x: jnp.zeros((batch_size,) + x.shape[1:], x.dtype)
  start = (jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
           zeros(shapes.images), zeros(shapes.masks),
           jax.tree.map(lambda x: jnp.zeros((), x.dtype),
                        jax.eval_shape(candidate_stats, shapes)))
  rounds, filled, images, masks, stats = jax.lax.while_loop(
      unfinished, one_round, start)
  stats.update(filled=filled, unfilled=batch_size - filled, rounds=rounds)
  weights = (jnp.arange(batch_size) < filled).astype(jnp.float32)
  return SynthBatch(images=images, masks=masks.astype(jnp.float32),
                    weights=weights, stats=stats)


class StarvationGuard:
  """Stops a run whose filters leave nearly every slot empty, batch after batch.

  Call `check(stats, batches)` with the `stats` of `synthesize` (device or
  host values) summed over the last `batches` batches, at every log step.
  When fewer than `spec.starved_fraction` of the slots were filled over
  checks that together cover `spec.max_starved_batches` consecutive batches
  or more, it raises UserError naming the filter that rejected the most
  samples over those checks. Counting batches, not checks, makes the limit
  independent of how often the loop logs.
  """

  def __init__(self, spec: SynthSpec):
    self._fraction = spec.starved_fraction
    self._limit = spec.max_starved_batches
    self._streak = 0
    self._generated = 0
    self._rejected = dict.fromkeys(REJECTING_FILTERS, 0)

  @property
  def streak(self) -> int:
    """Consecutive starved batches so far."""
    return self._streak

  def check(self, stats: Mapping[str, jax.Array], batches: int = 1) -> None:
    filled = int(np.asarray(stats["filled"]))
    slots = filled + int(np.asarray(stats["unfilled"]))
    if filled >= self._fraction * slots:
      self._streak, self._generated = 0, 0
      self._rejected = dict.fromkeys(REJECTING_FILTERS, 0)
      return
    self._streak += batches
    self._generated += int(np.asarray(stats["generated"]))
    for name in REJECTING_FILTERS:
      self._rejected[name] += int(np.asarray(stats[name]))
    if self._streak >= self._limit:
      raise UserError(self._message())

  def _message(self) -> str:
    worst = max(REJECTING_FILTERS, key=lambda name: self._rejected[name])
    switch, knob = REJECTING_FILTERS[worst]
    return (f"{switch}: rejected {self._rejected[worst]} of {self._generated} "
            f"samples over {self._streak} batches in a row with fewer than "
            f"{self._fraction:.0%} of batch slots filled (config.synth."
            f"max_starved_batches); relax {knob}, turn the filter off, or "
            f"check the background direction and config.synth.mask_rule")


class UnfilledWarning:
  """Says once, with the numbers, that batches stayed unfilled at the cap.

  Call `check(stats, batches)` as `StarvationGuard.check` (stats summed over
  the last `batches` batches). The first time any slot of them is unfilled
  it returns the warning text (slots unfilled, rounds cap, the filters' keep
  rate p = kept / generated and the mean rounds a batch needs at that rate,
  1 / (oversample * p)); otherwise, and ever after, None.
  """

  def __init__(self, spec: SynthSpec):
    self._spec = spec
    self._warned = False

  def check(self, stats: Mapping[str, jax.Array],
            batches: int = 1) -> Optional[str]:
    unfilled = int(np.asarray(stats["unfilled"]))
    if self._warned or unfilled == 0:
      return None
    self._warned = True
    slots = unfilled + int(np.asarray(stats["filled"]))
    kept = int(np.asarray(stats["kept"]))
    generated = int(np.asarray(stats["generated"]))
    rate = kept / max(generated, 1)
    need = (f"needs {1 / (self._spec.oversample * rate):.1f} rounds on "
            f"average" if rate > 0 else "never fills")
    return (f"config.synth.max_rounds: {unfilled} of {slots} batch slots "
            f"({unfilled / slots:.1%}) stayed unfilled over {batches} batches "
            f"after up to {self._spec.max_rounds} rounds of "
            f"{self._spec.oversample:g} x the batch; the filters kept {kept} "
            f"of {generated} candidates ({rate:.1%}), at which a batch {need}. "
            f"Unfilled slots have loss weight 0 (a smaller effective batch); "
            f"raise config.synth.max_rounds or relax the filters (warned once)")
