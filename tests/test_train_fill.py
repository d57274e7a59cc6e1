"""Full training batches: the fused step with rounds of synthesis (in-process).

The disc generator (test_train_fixtures) with a size filter planted to keep
30% of the samples: its disc radius is 0.45 (1 + tanh(z_3)), z_3 ~ N(0, 1), so
the foreground fraction pi r^2 / 4 is below pi r_30^2 / 4 for 30% of the
samples, r_30 = 0.45 (1 + tanh(Phi^-1(0.3))) (the disc lies inside the image).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

from gansseg_jax.infra import errors
from gansseg_jax.infra import sharding
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.train import segmentation
import test_train_fixtures as f

KEEP = 0.3
STEPS = 3


def planted_config(max_rounds):
  """tiny_config keeping ~30% of the discs, with at most `max_rounds`."""
  c = f.tiny_config()
  radius = 0.45 * (1 + np.tanh(scipy_stats.norm.ppf(KEEP)))
  c.synth.max_foreground = float(np.pi * radius ** 2 / 4)
  c.synth.histogram_filter = False
  c.synth.max_rounds = max_rounds
  return c


def train_steps(config, steps=STEPS):
  """(final state, [per-step metrics]) of `steps` fused steps, -O0, 1 device."""
  mesh = sharding.data_mesh()
  fused = segmentation.build(config, mesh, f.disc_generate)
  step = jax.jit(fused.step.__wrapped__, donate_argnums=(0, 1),
                 compiler_options={"xla_backend_optimization_level": 0})
  frozen = sharding.replicate(segmentation.Frozen(
      f.DISC_PARAMS, f.background_direction(), None, None), mesh)
  state, sums, per_step = fused.init_state(), fused.zero_sums(frozen), []
  for _ in range(steps):
    state, sums = step(state, sums, frozen)
    per_step.append({k: float(v) for k, v in sharding.fetch(sums).items()})
    sums = fused.zeros_like(sums)
  return sharding.fetch(state), per_step


def one_round_synthesize(key, generate, gen_params, direction, sample_latents,
                         spec, batch_size, affine_maps=None):
  """`synthesize` as it was before the loop (commit a466ec9), verbatim."""
  n = spec.num_candidates(batch_size)
  z = sample_latents(key, n)
  cand = synth_batch.make_candidates(z, generate, gen_params, direction, spec,
                                     affine_maps)
  order = jnp.argsort(~cand.keep, stable=True)[:batch_size]
  kept = jnp.sum(cand.keep, dtype=jnp.int32)
  filled = jnp.minimum(kept, batch_size)
  stats = {
      "generated": jnp.array(n, jnp.int32),
      "kept": kept,
      "filled": filled,
      "unfilled": batch_size - filled,
      "rejected_size": jnp.sum(~cand.size_ok, dtype=jnp.int32),
      "rejected_histogram": jnp.sum(~cand.histogram_ok, dtype=jnp.int32),
      "pruned_samples": jnp.sum(cand.pruned_pixels > 0, dtype=jnp.int32),
  }
  return synth_batch.SynthBatch(
      images=cand.images[order], masks=cand.masks[order].astype(jnp.float32),
      weights=cand.keep[order].astype(jnp.float32), stats=stats)


@pytest.fixture(scope="module")
def one_round():
  return train_steps(planted_config(max_rounds=1))


def test_planted_keep_rate_fills_every_batch_with_the_loop(one_round):
  _, single = one_round
  state, looped = train_steps(planted_config(max_rounds=16))
  kept = sum(m["synth/kept"] for m in looped)
  generated = sum(m["synth/generated"] for m in looped)
  assert 0.2 < kept / generated < 0.4  # The planted keep rate.
  for m in looped:  # Every batch full; most needed more than one round.
    assert m["synth/filled"] == 8 and m["synth/unfilled"] == 0
    assert m["kept_fraction"] == 1.0
    # 4 chunks of 3 candidates a round; rounds = the most a chunk ran.
    assert 4 * 3 <= m["synth/generated"] <= 4 * 3 * m["synth/rounds"]
  assert max(m["synth/rounds"] for m in looped) > 1
  # One round of 1.5 x the batch leaves slots empty at a 30% keep rate.
  assert sum(m["synth/unfilled"] for m in single) > 0
  assert all(m["synth/rounds"] == 1 for m in single)
  assert int(state["step"]) == STEPS


def test_one_round_is_bit_identical_to_the_code_before_the_loop(
    one_round, monkeypatch):
  state, _ = one_round
  monkeypatch.setattr(synth_batch, "synthesize", one_round_synthesize)
  before, _ = train_steps(planted_config(max_rounds=1))
  leaves, before_leaves = jax.tree.leaves(state), jax.tree.leaves(before)
  assert len(leaves) == len(before_leaves) > 10
  for a, b in zip(leaves, before_leaves):
    np.testing.assert_array_equal(a, b)


def _stats(filled, unfilled, kept, generated):
  return {"filled": np.int32(filled), "unfilled": np.int32(unfilled),
          "kept": np.int32(kept), "generated": np.int32(generated)}


def test_unfilled_warning_says_the_numbers_once():
  spec = synth_batch.SynthSpec.from_config(planted_config(4).synth)
  warning = synth_batch.UnfilledWarning(spec)
  assert warning.check(_stats(800, 0, 900, 1200), batches=100) is None
  text = warning.check(_stats(780, 20, 400, 4800), batches=100)
  assert text.startswith("config.synth.max_rounds: 20 of 800 batch slots "
                         "(2.5%) stayed unfilled over 100 batches after up "
                         "to 4 rounds of 1.5 x the batch; the filters kept "
                         "400 of 4800 candidates (8.3%), at which a batch "
                         "needs 8.0 rounds on average.")
  assert warning.check(_stats(700, 100, 300, 4800), batches=100) is None


def test_interval_scalars_log_rounds_and_filled_fraction():
  sums = {"loss": 2.0, "kept_fraction": 1.5, "steps": 2, "skipped": 0,
          "synth/filled": 150, "synth/unfilled": 40, "synth/rounds": 7,
          "synth/kept": 150, "synth/generated": 300}
  # pylint: disable-next=protected-access
  scalars, stats = segmentation._interval_scalars(sums, 2, 1.0,
                                                  f.tiny_config().train)
  assert scalars["synth/rounds"] == 3.5
  assert scalars["synth/filled_fraction"] == 150 / 190
  assert stats["unfilled"] == 40


def test_bad_max_rounds_is_named():
  for bad in (0, -3):
    with pytest.raises(errors.UserError, match="config.synth.max_rounds"):
      synth_batch.SynthSpec.from_config(planted_config(bad).synth)
