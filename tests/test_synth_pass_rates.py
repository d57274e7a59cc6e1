"""Filter pass rates (synth/pass_rates.py) against a numpy/scipy loop.

The reference draws the same latents (fold_in(key, i) per call), makes the
masks and filter outcomes with scipy's labelling (test_synth_batch's
`reference_candidates`) and counts by hand.
"""
import jax
import numpy as np
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.synth import pass_rates
from test_synth_batch import DIRECTION
from test_synth_batch import PARAMS
from test_synth_batch import blob_generator
from test_synth_batch import make_spec
from test_synth_batch import reference_candidates
from test_synth_batch import sampler  # pylint: disable=unused-import

CALLS, BATCH = 3, 16


def reference_placement(mask):
  """(border share, centre share) of one mask by explicit pixel lists."""
  h, w = mask.shape
  border = [mask[i, j] for i in range(h) for j in range(w)
            if i in (0, h - 1) or j in (0, w - 1)]
  centre = [mask[i, j] for i in range(h // 4, h // 4 + h // 2)
            for j in range(w // 4, w // 4 + w // 2)]
  return np.mean(border), np.mean(centre)


def reference_rates(key, sampler, spec):
  """(kept share, mean foreground / border / centre share of kept masks)."""
  keeps, areas = [], []
  for i in range(CALLS):
    _, masks, keep = reference_candidates(jax.random.fold_in(key, i), sampler,
                                          spec, BATCH)
    keeps.append(keep)
    areas.extend((m.mean(),) + reference_placement(m) for m in masks)
  keep, areas = np.concatenate(keeps), np.array(areas)
  return keep.mean(), *(areas[keep].mean(axis=0) if keep.any() else (0,) * 3)


@pytest.mark.parametrize("overrides,alone,decided", [
    (dict(size_filter=True, max_foreground=0.15, histogram_filter=False),
     "size", True),
    # On this generator the paper's rule keeps nothing, the authors' all.
    (dict(size_filter=False, histogram_filter=True, histogram_rule="paper"),
     "histogram", False),
    (dict(size_filter=False, histogram_filter=True, histogram_rule="authors"),
     "histogram", False),
])
def test_one_filter_on_matches_the_loop(sampler, overrides, alone, decided):
  spec = make_spec(**overrides)
  key = jax.random.key(3)
  rates = pass_rates.measure(key, blob_generator, PARAMS, DIRECTION, sampler,
                             spec, CALLS * BATCH - 5, batch_size=BATCH)
  kept, foreground, border, centre = reference_rates(key, sampler, spec)
  assert rates.samples == CALLS * BATCH  # Rounded up to whole calls.
  assert (0.0 < kept < 1.0) == decided
  assert rates.kept == pytest.approx(kept)
  assert getattr(rates, alone) == pytest.approx(kept)
  other = "histogram" if alone == "size" else "size"
  assert getattr(rates, other) == 1.0  # An off filter keeps everything.
  assert rates.foreground == pytest.approx(foreground, rel=1e-5)
  assert rates.border == pytest.approx(border, rel=1e-5, abs=1e-7)
  assert rates.centre == pytest.approx(centre, rel=1e-5, abs=1e-7)


def test_both_filters_keep_at_most_each_alone(sampler):
  spec = make_spec(size_filter=True, max_foreground=0.15,
                   histogram_filter=True, histogram_rule="authors")
  key = jax.random.key(3)
  rates = pass_rates.measure(key, blob_generator, PARAMS, DIRECTION, sampler,
                             spec, CALLS * BATCH, batch_size=BATCH)
  assert rates.kept == pytest.approx(reference_rates(key, sampler, spec)[0])
  assert rates.kept <= min(rates.size, rates.histogram)


def planted(**shares):
  values = dict(samples=256, size=1.0, histogram=1.0, kept=1.0, pruned=0.0,
                foreground=0.3, border=0.0, centre=0.9)
  values.update(shares)
  return pass_rates.PassRates(**values)


def test_keep_rate_check_names_the_worst_filter_and_the_override():
  pass_rates.check_keep_rate(planted(kept=0.05), 0.05)  # At the bound: fine.
  with pytest.raises(errors.UserError) as error:
    pass_rates.check_keep_rate(planted(histogram=0.0, size=0.6, kept=0.0),
                               0.05)
  message = str(error.value)
  assert message.startswith("config.synth.histogram_filter: keeps 0.0% of 256")
  assert "config.synth.histogram_rule=authors" in message
  assert "config.train.min_kept_fraction=0" in message
  with pytest.raises(errors.UserError, match="^config.synth.size_filter"):
    pass_rates.check_keep_rate(planted(size=0.01, histogram=0.5, kept=0.01),
                               0.05)
  pass_rates.check_keep_rate(planted(kept=0.0), 0.0)  # The expert override.
