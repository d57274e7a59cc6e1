"""The largest batch that compiles within a chip's memory, by bracketing.

Peak memory is not monotonic in the batch: XLA trades memory for traffic as
shapes grow (the paper's step on v5e-8 in fp32 needed 12.9 GiB per chip at
121 samples per chip and 12.5 GiB at 141), so a line through two compiles
does not predict where memory runs out. The search keeps a bracket of what
compiling said instead:

  lo  the largest probed per-chip batch that fits, below
  hi  the smallest probed per-chip batch that does not (None: none yet),

grows lo until a probe fails (doubling it, or further when the caller's
guess, e.g. lo scaled by free memory over lo's peak, says so), then bisects
(lo, hi) on multiples of `step`
(8: TPU arrays are tiled (8, 128) over their two minor dimensions, and the
batch is one of them) until no multiple of `step` lies between them. When
fitting is monotone in the batch this finds the largest fitting multiple of
`step` (or the start, when that is larger) with about log2 probes; when it
is not, lo is still a batch that compiled, and every probe is kept to show
the bracket.
"""
from typing import Callable, Optional


def bracket(probes: dict[int, bool]) -> tuple[Optional[int], Optional[int]]:
  """(lo, hi) of per-chip batch -> fits: hi the smallest that does not fit,
  lo the largest below hi that does (None where there is none)."""
  hi = min((b for b, fits in probes.items() if not fits), default=None)
  lo = max((b for b, fits in probes.items()
            if fits and (hi is None or b < hi)), default=None)
  return lo, hi


def round_up(n: int, step: int) -> int:
  return -(-n // step) * step


def next_probe(probes: dict[int, bool], step: int = 8,
               guess: Optional[Callable[[int], int]] = None) -> Optional[int]:
  """The per-chip batch to compile next, or None when the bracket is tight.

  `probes` must hold at least one batch (the starting compile). While none
  has failed the next is 2 lo, or guess(lo) rounded down to a multiple of
  `step` when that is larger.
  """
  if not probes:
    raise ValueError("next_probe needs the starting batch's verdict")
  lo, hi = bracket(probes)
  lo = lo or 0
  if hi is None:
    grown = round_up(max(2 * lo, step), step)
    if guess is not None and lo:
      grown = max(grown, guess(lo) // step * step)
    return grown
  mid = (lo + hi) // 2 // step * step
  if mid <= lo:
    mid = round_up(lo + 1, step)
  return mid if mid < hi else None


def search(probes: dict[int, bool],
           fits: Callable[[int], Optional[bool]], step: int = 8,
           budget: int = 6,
           guess: Optional[Callable[[int], int]] = None) -> dict[int, bool]:
  """`probes` and up to `budget` more verdicts of `fits(per_chip_batch)`,
  probing next_probe's batches; stops early when the bracket is tight or
  `fits` returns None (an error that is not memory)."""
  probes = dict(probes)
  for _ in range(budget):
    per_chip = next_probe(probes, step, guess)
    if per_chip is None:
      break
    verdict = fits(per_chip)
    if verdict is None:
      break
    probes[per_chip] = verdict
  return probes
