"""Are a candidate's masks objects? The measurement and the choice rule.

Our addition beyond the paper (docs/method.md section 3, "Objectness"). The
paper's ranking (appendix B) scores how well two affine colour maps explain
a shift, which a relighting direction (one side of the frame lit, the other
darkened) satisfies as well as an object direction. What tells them apart
is where the masks lie. For each shortlisted candidate (ranks 1..top_k),
`measure` makes `samples` synthetic pairs with the run's mask rule and
filters (synth.pass_rates) and takes, over the pairs every filter keeps,
the mean share of the border pixels their masks cover (b: the boundary
prior of salient-object detection, as the orientation rule; Wei et al.,
ECCV 2012; Zhu et al., CVPR 2014) and of the central quarter (c).

A candidate is object-like when some pairs are kept, b <= max_border and
c >= min_centre_ratio * b: its masks avoid the border and lie more inside
than on it; and, when min_centre > 0 (off by default), c >= min_centre: its
masks fill that share of the centre, as a portrait's face does. `choose`
with rule 'objectness' (the default) takes the best-ranked object-like
candidate, the paper's rank 1 when none is; 'paper' takes rank 1 whatever
its masks.
"""
import dataclasses
from typing import Optional

import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import pass_rates

CHOICES = ("objectness", "paper")


def check_config(score: ml_collections.ConfigDict) -> None:
  """UserError for objectness fields out of range."""
  if score.choose not in CHOICES:
    raise errors.UserError(f"config.score.choose: {score.choose!r} is not one "
                           f"of {', '.join(CHOICES)}")
  if not 0.0 <= score.max_border <= 1.0:
    raise errors.UserError(f"config.score.max_border: must be in [0, 1], got "
                           f"{score.max_border}")
  if not 0.0 <= score.min_centre <= 1.0:
    raise errors.UserError(f"config.score.min_centre: must be in [0, 1], got "
                           f"{score.min_centre}")
  if not score.min_centre_ratio >= 0.0:
    raise errors.UserError(f"config.score.min_centre_ratio: must be >= 0, got "
                           f"{score.min_centre_ratio}")
  if score.objectness_samples < 1:
    raise errors.UserError(f"config.score.objectness_samples: must be "
                           f">= 1, got {score.objectness_samples}")


@dataclasses.dataclass(frozen=True)
class Placement:
  """Per candidate [N]; NaN where not measured (outside the shortlist and
  not picked by hand)."""
  kept: np.ndarray  # Share of the pairs every filter keeps.
  border: np.ndarray  # Kept masks' mean share of the border pixels.
  centre: np.ndarray  # Kept masks' mean share of the central quarter.


@dataclasses.dataclass(frozen=True)
class Rule:
  """What makes a candidate's kept masks object-like (config.score)."""
  max_border: float
  min_centre_ratio: float
  min_centre: float = 0.0

  @classmethod
  def from_config(cls, score: ml_collections.ConfigDict) -> "Rule":
    return cls(float(score.max_border), float(score.min_centre_ratio),
               float(score.min_centre))

  def words(self) -> str:
    """'border <= 30% and centre >= 1.5 x border' (and the floor, if set)."""
    text = (f"border <= {self.max_border:.0%} and centre >= "
            f"{self.min_centre_ratio:g} x border")
    return text + (f" and >= {self.min_centre:.0%}" if self.min_centre else
                   "")


def object_like(placement: Placement, rule: Rule) -> np.ndarray:
  """bool [N]: kept > 0, border <= max_border, centre >= ratio * border
  and centre >= min_centre."""
  with np.errstate(invalid="ignore"):
    return ((placement.kept > 0) & (placement.border <= rule.max_border)
            & (placement.centre >= rule.min_centre_ratio * placement.border)
            & (placement.centre >= rule.min_centre))


def measure(key: jax.Array, generate, gen_params, units: np.ndarray,
            maps: np.ndarray, candidates: list[int], sampler,
            spec: synth_batch.SynthSpec, samples: int,
            affine: bool) -> Placement:
  """Placement of the `candidates` (rows of the oriented unit `units` [N, d]).

  Every candidate sees the same latents (key); `maps` [N, 2, 3, 4] are its
  fitted affine maps, used when `affine` (mask rule 'affine').
  """
  shape = (len(units),)
  kept, border, centre = (np.full(shape, np.nan) for _ in range(3))
  for index in candidates:
    rates = pass_rates.measure(key, generate, gen_params, units[index],
                               sampler, spec, samples,
                               maps[index] if affine else None)
    kept[index], border[index], centre[index] = (rates.kept, rates.border,
                                                 rates.centre)
  return Placement(kept, border, centre)


def choose(ranks: np.ndarray, likes: np.ndarray, rule: str) -> int:
  """The candidate `rule` picks: -1 when every candidate was dropped."""
  if not ranks.any():
    return -1
  rank_one = int(np.flatnonzero(ranks == 1)[0])
  if rule == "paper":
    return rank_one
  ranked = [i for i in np.argsort(np.where(ranks > 0, ranks, len(ranks) + 1))
            if ranks[i] > 0 and likes[i]]
  return int(ranked[0]) if ranked else rank_one


def describe(placement: Placement, index: int) -> str:
  """'kept 21.5%, border 14.8%, centre 87.5%' of one candidate."""
  if np.isnan(placement.kept[index]):
    return "masks not measured"
  return (f"kept {placement.kept[index]:.1%} of pairs; kept masks cover "
          f"{placement.border[index]:.1%} of the border, "
          f"{placement.centre[index]:.1%} of the central quarter")


def warning(placement: Placement, likes: np.ndarray, chosen: int,
            rule: Rule) -> Optional[str]:
  """The warning when the chosen candidate's masks are not object-like."""
  if chosen < 0 or likes[chosen]:
    return None
  others = int(np.sum(likes))
  return (f"the chosen direction (index {chosen}) may not segment objects: "
          f"{describe(placement, chosen)} (object-like: {rule.words()}); "
          + (f"{others} other shortlisted candidate(s) pass, see ranking.md"
             if others else "no shortlisted candidate passes")
          + "; inspect the strips and set config.score.index if needed")
