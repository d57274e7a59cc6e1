"""What share of synthetic pairs each filter keeps, for one direction.

docs/method.md section 6. `measure` draws `num_samples` latents with the
run's sampler, makes the candidates of `batch.make_candidates` (G(z),
G(z + h), the mask rule, the components filter, the size and histogram
filters) and counts, per filter, the samples it keeps on its own, and the
samples that pass all of them — the keep rate p that the training step's
batch filling lives on (docs/batch_filling.md: a batch needs 1 / (oversample
p) rounds on average). A filter that is off keeps everything.

`check_keep_rate` turns a keep rate below `config.train.min_kept_fraction`
into one error line naming the filter that rejects the most samples and the
settings that would change it; `check_border` refuses masks that cover more
than `config.train.max_border` of the image border on average (the
boundary prior: such masks are background or lighting, not objects;
docs/method.md section 3, "Objectness").
"""
import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.infra import artifacts
from gansseg_jax.infra import errors
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import latents as latents_lib

RATES_FILE = artifacts.FILTER_RATES  # The train stage's measurement.

# Settings that change what each rejecting filter keeps, named in errors.
RELIEF = {
    "size": ("config.synth.size_filter=False or a larger "
             "config.synth.max_foreground"),
    "histogram": ("config.synth.histogram_rule=authors (the authors' "
                  "code's rule) or config.synth.histogram_filter=False"),
}


# config.synth fields that decide what the filters keep.
SETTINGS = ("mask_rule", "shift_radius", "components_filter", "connectivity",
            "min_component_ratio", "fill_holes", "size_filter", "max_foreground",
            "histogram_filter", "histogram_rule", "latents")


def filter_settings(synth_config) -> dict:
  """The SETTINGS of `config.synth`, to store beside measured rates."""
  return {name: synth_config[name] for name in SETTINGS}


@dataclasses.dataclass(frozen=True)
class PassRates:
  """Shares of `samples` pairs; every field a float in [0, 1]."""
  samples: int
  size: float  # Kept by the size filter alone (1 when it is off).
  histogram: float  # Kept by the histogram filter alone (1 when off).
  kept: float  # Kept by every filter: the keep rate.
  pruned: float  # Pairs whose mask the components filter changed.
  foreground: float  # Mean foreground share of the kept pairs' masks.
  border: float  # Their mean foreground share of the border pixels.
  centre: float  # Their mean foreground share of the central quarter.

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def placement(masks: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Foreground shares of the border and of the centre, per mask [..., H, W].

  Border: the outermost row and column on each side. Centre: the middle
  half of the rows and of the columns (rows H//4 .. H//4 + H//2 - 1, the
  same for columns). A mask of the object of a centred subject covers the
  centre and not the border; one of the background, the reverse.
  """
  height, width = masks.shape[-2:]
  border = np.ones((height, width), bool)
  border[1:-1, 1:-1] = False
  top, left = height // 4, width // 4
  centre = masks[..., top:top + height // 2, left:left + width // 2]
  fraction = lambda x, n: jnp.sum(x, axis=(-2, -1), dtype=jnp.float32) / n
  return (fraction(masks & border, border.sum()),
          fraction(centre, (height // 2) * (width // 2)))


@functools.partial(jax.jit,
                   static_argnames=("generate", "sample_latents", "spec",
                                    "num"))
def _counts(key, generate, gen_params, direction, sample_latents, spec, num,
            affine_maps):
  """Sums over `num` candidates drawn from `key` (see `measure`)."""
  z = latent.draw(generate, gen_params, key, (num,),
                  direction.shape[-1], base=sample_latents)
  cand = batch_lib.make_candidates(z, generate, gen_params, direction, spec,
                                   affine_maps)
  area = jnp.mean(cand.masks, axis=(1, 2))
  border, centre = placement(cand.masks)
  return {
      "size": jnp.sum(cand.size_ok, dtype=jnp.int32),
      "histogram": jnp.sum(cand.histogram_ok, dtype=jnp.int32),
      "kept": jnp.sum(cand.keep, dtype=jnp.int32),
      "pruned": jnp.sum(cand.pruned_pixels > 0, dtype=jnp.int32),
      "foreground": jnp.sum(jnp.where(cand.keep, area, 0.0)),
      "border": jnp.sum(jnp.where(cand.keep, border, 0.0)),
      "centre": jnp.sum(jnp.where(cand.keep, centre, 0.0)),
  }


def measure(key: jax.Array, generate, gen_params, direction: np.ndarray,
            sample_latents: latents_lib.Sampler,
            spec: batch_lib.SynthSpec, num_samples: int,
            affine_maps: Optional[np.ndarray] = None,
            batch_size: int = 32) -> PassRates:
  """Pass rates of `num_samples` pairs, made up to `batch_size` at a time.

  The samples are those of ceil(num_samples / batch_size) calls of one
  jitted function on fold_in(key, i); a pure function of the arguments.
  """
  batch_size = min(batch_size, num_samples)
  calls = -(-num_samples // batch_size)
  direction = jnp.asarray(direction, jnp.float32)
  maps = None if affine_maps is None else jnp.asarray(affine_maps)
  totals = None
  for i in range(calls):
    counts = jax.device_get(_counts(
        jax.random.fold_in(key, i), generate, gen_params, direction,
        sample_latents, spec, batch_size, maps))
    totals = counts if totals is None else jax.tree.map(np.add, totals,
                                                        counts)
  samples = calls * batch_size
  kept = int(totals["kept"])
  return PassRates(
      samples=samples,
      size=float(totals["size"]) / samples,
      histogram=float(totals["histogram"]) / samples,
      kept=kept / samples,
      pruned=float(totals["pruned"]) / samples,
      foreground=float(totals["foreground"]) / max(kept, 1),
      border=float(totals["border"]) / max(kept, 1),
      centre=float(totals["centre"]) / max(kept, 1))


def describe(rates: PassRates) -> str:
  """'kept 12.5% (size filter alone 40.0%, histogram filter alone 30.0%, ...)'."""
  return (f"kept by every filter {rates.kept:.1%} (size filter alone "
          f"{rates.size:.1%}, histogram filter alone {rates.histogram:.1%}; "
          f"components filter changed {rates.pruned:.1%} of the masks; kept "
          f"masks cover {rates.foreground:.1%} of the image, "
          f"{rates.border:.1%} of its border and {rates.centre:.1%} of its "
          f"central quarter on average)")


def check_keep_rate(rates: PassRates, minimum: float) -> None:
  """UserError when fewer than `minimum` of the pairs pass every filter."""
  if rates.kept >= minimum:
    return
  worst = min(RELIEF, key=lambda name: getattr(rates, name))
  raise errors.UserError(
      f"config.synth.{worst}_filter: keeps {getattr(rates, worst):.1%} of "
      f"{rates.samples} pairs of this direction (all filters together "
      f"{rates.kept:.1%}, below config.train.min_kept_fraction = "
      f"{minimum:g}); set {RELIEF[worst]}, or "
      f"config.train.min_kept_fraction=0 to train anyway")


def check_border(rates: PassRates, maximum: float) -> None:
  """UserError when the kept masks cover more than `maximum` of the border."""
  if rates.kept == 0 or rates.border <= maximum:
    return
  raise errors.UserError(
      f"config.train.max_border: the kept masks of this direction cover "
      f"{rates.border:.1%} of the image border on average (above "
      f"{maximum:g}; central quarter {rates.centre:.1%}): they look like "
      "background or lighting, not objects; pick another direction with "
      "config.score.index (ranking.md lists each one's object_like), or set "
      "config.train.max_border=1 to train anyway")
