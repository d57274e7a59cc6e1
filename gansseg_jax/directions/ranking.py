"""The paper's ranking rule over scored candidates, and the ranking tables.

docs/method.md section 3: drop every candidate whose class map puts
>= max_one_class of the pixels in one class (and any with non-finite
scores); of the rest keep the top `top_fraction` by D_h (at least one), and
order those by L_h, lowest first — the first `top_k` are the paper's
shortlist. The remaining kept candidates follow, by D_h descending.

The paper lists its shortlist by L_h but chose, for BigBiGAN, "the highest D
with a small L" (docs/method.md section 3). `order_by='loss'` (the default) puts
the lowest L_h first; `order_by='separation'` orders the same shortlist by
D_h, highest first, so rank 1 is that choice.

The tables also carry, for the shortlist, where the kept masks lie
(directions/objectness.py, our addition): the share of pairs kept, of the
border and of the central quarter their masks cover, and whether that is
object-like.
"""
import csv
import io
import math

import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.directions import objectness
from gansseg_jax.directions import score as score_lib

SHORTLIST_ORDERS = ("loss", "separation")
COLUMNS = ("rank", "index", "L_h", "D_h", "area", "brightening_area",
           "lighting_area", "border_lighting", "inner_lighting", "sign",
           "kept", "kept_border", "kept_centre", "object_like", "status")


def check_config(score: ml_collections.ConfigDict) -> None:
  """UserError for ranking fields out of range."""
  if not 0.0 < score.top_fraction <= 1.0:
    raise errors.UserError(
        f"config.score.top_fraction: must be in (0, 1], got "
        f"{score.top_fraction}")
  if not 0.5 < score.max_one_class <= 1.0:
    raise errors.UserError(
        f"config.score.max_one_class: must be in (0.5, 1], got "
        f"{score.max_one_class}")
  if score.top_k <= 0:
    raise errors.UserError(
        f"config.score.top_k: must be positive, got {score.top_k}")
  if score.order_by not in SHORTLIST_ORDERS:
    raise errors.UserError(
        f"config.score.order_by: {score.order_by!r} is not one of "
        f"{', '.join(SHORTLIST_ORDERS)}")


def statuses(scores: score_lib.CandidateScores,
             max_one_class: float) -> np.ndarray:
  """'kept', 'dropped: one class' or 'dropped: not finite' per candidate."""
  finite = (np.isfinite(scores.restoration_loss)
            & np.isfinite(scores.separation)
            & np.isfinite(scores.dominant_area))
  return np.where(~finite, "dropped: not finite",
                  np.where(scores.dominant_area >= max_one_class,
                           "dropped: one class", "kept"))


def rank_candidates(scores: score_lib.CandidateScores, max_one_class: float,
                    top_fraction: float, top_k: int = 10,
                    order_by: str = "loss") -> np.ndarray:
  """Ranks int [N]: 1 = best, 0 = dropped (see the module docstring)."""
  kept = np.flatnonzero(statuses(scores, max_one_class) == "kept")
  by_separation = kept[np.argsort(-scores.separation[kept], kind="stable")]
  # round() keeps e.g. 0.2 * 15 = 3.0000000000000004 from becoming 4.
  num_top = min(len(kept), max(1, math.ceil(round(top_fraction * len(kept),
                                                   9))))
  top = by_separation[:num_top]
  top = top[np.argsort(scores.restoration_loss[top], kind="stable")]
  if order_by == "separation":
    shortlist = top[:top_k]
    shortlist = shortlist[np.argsort(-scores.separation[shortlist],
                                     kind="stable")]
    top = np.concatenate([shortlist, top[top_k:]])
  order = np.concatenate([top, by_separation[num_top:]]).astype(int)
  ranks = np.zeros(len(scores.separation), dtype=int)
  ranks[order] = np.arange(1, len(order) + 1)
  return ranks


def _share(value: float) -> str:
  return "" if np.isnan(value) else f"{value:.4f}"


def _rows(scores: score_lib.CandidateScores, ranks: np.ndarray,
          max_one_class: float, top_fraction: float,
          placement: objectness.Placement, likes: np.ndarray) -> list[dict]:
  """Table rows: ranked candidates by rank, then dropped ones by index."""
  status = statuses(scores, max_one_class)
  num_top = max(1, math.ceil(round(top_fraction * int((ranks > 0).sum()), 9)))
  order = sorted(range(len(ranks)),
                 key=lambda i: (ranks[i] == 0, ranks[i], i))
  rows = []
  for i in order:
    label = status[i]
    if ranks[i] and ranks[i] <= num_top:
      label = f"top {top_fraction:.0%} by D_h"
    rows.append({
        "rank": int(ranks[i]) if ranks[i] else "",
        "index": i,
        "L_h": f"{scores.restoration_loss[i]:.6f}",
        "D_h": f"{scores.separation[i]:.6f}",
        "area": f"{scores.dominant_area[i]:.4f}",
        "brightening_area": f"{scores.brightening_area[i]:.4f}",
        "lighting_area": f"{scores.lighting_area[i]:.4f}",
        "border_lighting": f"{scores.border_lighting[i]:.4f}",
        "inner_lighting": f"{scores.inner_lighting[i]:.4f}",
        "sign": f"{int(scores.sign[i]):+d}",
        "kept": _share(placement.kept[i]),
        "kept_border": _share(placement.border[i]),
        "kept_centre": _share(placement.centre[i]),
        "object_like": ("" if np.isnan(placement.kept[i])
                        else "yes" if likes[i] else "no"),
        "status": label,
    })
  return rows


def ranking_csv(scores: score_lib.CandidateScores, ranks: np.ndarray,
                max_one_class: float, top_fraction: float,
                placement: objectness.Placement, likes: np.ndarray) -> str:
  """ranking.csv: one row per candidate, columns `COLUMNS`."""
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
  writer.writeheader()
  writer.writerows(_rows(scores, ranks, max_one_class, top_fraction,
                         placement, likes))
  return buffer.getvalue()


def rule_description(max_one_class: float, top_fraction: float, top_k: int,
                     order_by: str, choose: str = "paper",
                     rule: objectness.Rule = objectness.Rule(0.0, 0.0)
                     ) -> str:
  """The ranking and choice rules, in words (ranking.md, the report)."""
  floor = (f" and they cover at least {rule.min_centre:.0%} of the central "
           "quarter" if rule.min_centre else "")
  chosen = (
      f" The direction used is the best-ranked of the first {top_k} whose "
      "kept masks are object-like (config.score.choose=objectness, our "
      f"addition: they cover at most {rule.max_border:.0%} of the border and "
      f"their central-quarter share is at least {rule.min_centre_ratio:g} x "
      f"their border share{floor}), rank 1 when none is."
      if choose == "objectness" else
      " The direction used is rank 1 (config.score.choose=paper).")
  return (
      f"Dropped: >= {max_one_class:.0%} of pixels in one class. Of the rest, "
      f"the top {top_fraction:.0%} by D_h (separation of the two affine maps), "
      "ordered by L_h (restoration loss, lower is better)"
      + (f", the first {top_k} of them then by D_h (highest first)"
         if order_by == "separation" else "")
      + "; then the other kept candidates by D_h." + chosen)


def chosen_description(scores: score_lib.CandidateScores, ranks: np.ndarray,
                       chosen: int, how: str) -> str:
  """'index 5 (rank 1, sign -1, L_h 0.31, D_h 1.2, ...)': the direction used."""
  rank = f"rank {ranks[chosen]}" if ranks[chosen] else "dropped by the rule"
  return (f"index {chosen} ({how}, {rank}; sign {int(scores.sign[chosen]):+d}, "
          f"L_h {scores.restoration_loss[chosen]:.4f}, D_h "
          f"{scores.separation[chosen]:.4f}; the lighting mask covers "
          f"{scores.lighting_area[chosen]:.1%} of the pixels, "
          f"{scores.border_lighting[chosen]:.1%} of the border)")


def ranking_markdown(scores: score_lib.CandidateScores, ranks: np.ndarray,
                     score_config: ml_collections.ConfigDict, chosen: int,
                     how: str, placement: objectness.Placement,
                     likes: np.ndarray, warning: str = "",
                     notes: tuple[str, ...] = ()) -> str:
  """ranking.md: a warning, the rules, the chosen candidate, `notes`, table."""
  c = score_config
  lines = [
      "# Segmenting-direction ranking (paper appendix B)",
      "",
      *((f"**Warning:** {warning}.", "") if warning else ()),
      rule_description(c.max_one_class, c.top_fraction, c.top_k, c.order_by,
                       c.choose, objectness.Rule.from_config(c))
      + " `index` is the row of directions.npy; `sign` the orientation "
      "applied (foreground = what brightens); `area` the share of pixels in "
      "the larger class; `kept`, `kept_border`, `kept_centre`: the share of "
      "synthetic pairs the filters keep and the border and central-quarter "
      "shares of their masks (shortlist only).",
      "",
      (f"Chosen: {chosen_description(scores, ranks, chosen, how)}; "
       "written to the workdir (the background direction)." if chosen >= 0
       else "Chosen: none — every candidate was dropped; set "
       "config.score.index."),
      "",
      *(line for note in notes for line in (note, "")),
      "| " + " | ".join(COLUMNS) + " |",
      "|" + "---|" * len(COLUMNS),
  ]
  for row in _rows(scores, ranks, c.max_one_class, c.top_fraction, placement,
                   likes):
    lines.append("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
  return "\n".join(lines) + "\n"
