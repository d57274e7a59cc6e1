"""benchmarks/batch_search.py against brute force and planted memory curves."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks"))

import batch_search  # pylint: disable=g-import-not-at-top,wrong-import-position


def brute_force_largest(start: int, limit: int, step: int) -> int | None:
  """The largest per-chip batch <= limit among the start and every multiple
  of step (None when none fits)."""
  fitting = [b for b in [start, *range(step, limit + 1, step)] if b <= limit]
  return max(fitting, default=None)


def linear_peak(per_chip: int) -> float:
  """A planted memory curve: a fixed 2 GB plus 0.1 GB per sample."""
  return 2.0 + 0.1 * per_chip


@pytest.mark.parametrize("with_guess", [False, True])
@pytest.mark.parametrize("start", [12, 24, 16, 121])
@pytest.mark.parametrize("limit", [5, 8, 12, 15, 16, 17, 100, 127, 128, 129,
                                   700, 1000])
def test_monotone_memory_finds_the_largest_fitting_multiple_of_8(
    start, limit, with_guess):
  calls = []

  def fits(per_chip):
    calls.append(per_chip)
    return per_chip <= limit

  # A guess from the planted curve with its memory limit at `limit`.
  hbm = linear_peak(limit)
  guess = (lambda lo: int(lo * hbm / linear_peak(lo))) if with_guess else None
  probes = batch_search.search({start: start <= limit}, fits, step=8,
                               budget=100, guess=guess)
  lo, hi = batch_search.bracket(probes)
  assert lo == brute_force_largest(start, limit, 8)
  # The bracket is tight: nothing between lo and hi is left unprobed.
  assert hi is not None and hi > limit
  assert not [b for b in range(8, hi, 8) if (lo or 0) < b < hi]
  # Doubling then bisection: about 2 log2 probes, never the same twice.
  assert len(calls) == len(set(calls)) <= 2 * (limit + start).bit_length()
  assert all(b % 8 == 0 for b in calls)


def test_guess_jumps_past_doubling_and_stays_below_the_boundary():
  hbm = linear_peak(300)  # Fits up to 300 per chip.
  probes = batch_search.search(
      {12: True}, lambda b: linear_peak(b) <= hbm, budget=1,
      guess=lambda lo: int(lo * hbm / linear_peak(lo)))
  # 12 * 32 / 3.2 = 120: one probe instead of 24, 48, 96.
  assert probes == {12: True, 120: True}
  # A guess below doubling is ignored.
  assert batch_search.next_probe({12: True}, guess=lambda lo: 13) == 24


def test_budget_stops_the_search_and_keeps_the_bracket():
  probes = batch_search.search({12: True}, lambda b: b <= 1000, budget=3)
  # 24, 48, 96 fit; no failure seen yet.
  assert probes == {12: True, 24: True, 48: True, 96: True}
  assert batch_search.bracket(probes) == (96, None)
  assert batch_search.next_probe(probes) == 192


def test_non_memory_error_stops_the_search():
  seen = []

  def fits(per_chip):
    seen.append(per_chip)
    return None if per_chip == 48 else True

  probes = batch_search.search({12: True}, fits, budget=10)
  assert seen == [24, 48] and probes == {12: True, 24: True}


def test_non_monotone_memory_keeps_the_bracket_below_the_first_failure():
  # Planted: batches 96-104 run out of memory, 105-300 fit again (XLA picked
  # another schedule), above 300 nothing fits. The search reports a batch
  # that compiled, below the smallest failing probe, with the probes.
  def fits(per_chip):
    return not 96 <= per_chip <= 104 and per_chip <= 300

  probes = batch_search.search({12: True}, fits, budget=20)
  assert probes[96] is False
  lo, hi = batch_search.bracket(probes)
  assert (lo, hi) == (88, 96)
  assert all(probes[b] for b in probes if b <= lo)


def test_existing_probes_seed_the_bracket():
  # v5e-8 fp32: 12, 121 and 141 per chip compiled within HBM.
  probes = {12: True, 121: True, 141: True}
  assert batch_search.next_probe(probes) == 288
  probes[288] = False
  assert batch_search.next_probe(probes) == 208
  assert batch_search.next_probe({12: True, 16: False}) is None
  assert batch_search.next_probe({12: False}) == 8
  assert batch_search.next_probe({8: False}) is None
  with pytest.raises(ValueError, match="starting batch"):
    batch_search.next_probe({})
