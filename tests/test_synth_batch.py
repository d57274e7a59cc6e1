"""Batch assembly: masks, filters and compaction vs numpy/scipy references."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from gansseg_jax.infra.errors import UserError
from gansseg_jax.infra import config_files
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import filters
from gansseg_jax.synth import latents

SIZE = 16
Z_DIM = 6
LIGHT = 3  # The latent coordinate that lights the object, darkens the rest.


def blob_generator(params, z):
  """A disk on a background; +z[LIGHT] brightens the disk, darkens the rest."""
  axis = jnp.linspace(-1.0, 1.0, SIZE)
  yy, xx = jnp.meshgrid(axis, axis, indexing="ij")
  cy = 0.5 * jnp.tanh(z[:, 0])[:, None, None]
  cx = 0.5 * jnp.tanh(z[:, 1])[:, None, None]
  radius = params["radius"] * (1.0 + 0.6 * jnp.tanh(z[:, 2]))[:, None, None]
  inside = jax.nn.sigmoid(30.0 * (radius - jnp.hypot(yy - cy, xx - cx)))
  light = 0.15 * z[:, LIGHT][:, None, None]
  texture = 0.05 * jnp.sin(3 * xx + z[:, 4:5, None]) * jnp.cos(2 * yy)
  value = inside * jnp.tanh(0.3 + light) + (1 - inside) * jnp.tanh(-0.3 - light)
  tint = jnp.array([1.0, 0.9, 0.8])
  return jnp.clip((value + texture)[..., None] * tint, -1.0, 1.0)


PARAMS = {"radius": jnp.array(0.45)}
DIRECTION = jnp.zeros(Z_DIM).at[LIGHT].set(2.0)  # synthesize normalises it.


def default_synth_config():
  return config_files.load_checkout("default").synth


def make_spec(**overrides):
  c = default_synth_config()
  c.update(overrides)
  return batch_lib.SynthSpec.from_config(c)


@pytest.fixture(scope="module")
def sampler():
  return latents.make_sampler(default_synth_config(), Z_DIM)


def reference_candidates(key, sampler, spec, n):
  """One round from numpy/scipy: lighting rule, scipy labels, filters."""
  z = np.asarray(sampler(key, n))
  h = spec.shift_radius * np.asarray(DIRECTION) / np.linalg.norm(DIRECTION)
  images = np.asarray(blob_generator(PARAMS, jnp.asarray(z)))
  shifted = np.asarray(blob_generator(PARAMS, jnp.asarray(z + h)))
  w = np.array([0.2989, 0.5870, 0.1140])
  masks = shifted @ w > images @ w
  structure = ndimage.generate_binary_structure(2, spec.connectivity // 4)
  keep = []
  for i in range(n):
    comp, num = ndimage.label(masks[i], structure=structure)
    if spec.components_filter and num:
      sizes = np.bincount(comp.ravel())[1:]
      small = sizes < spec.min_component_ratio * sizes.max()
      masks[i][np.isin(comp, 1 + np.flatnonzero(small))] = False
    if spec.fill_holes:
      masks[i] = ndimage.binary_fill_holes(masks[i])
    ok = not spec.size_filter or masks[i].mean() <= spec.max_foreground
    keep.append(ok)
  keep = np.array(keep)
  if spec.histogram_filter:
    keep &= np.asarray(filters.histogram_filter(
        shifted, rule=spec.histogram_rule, bins=spec.histogram_bins,
        window=spec.histogram_window))
  return images, masks, keep


def reference_batch(key, sampler, spec, batch_size):
  """The batch by a plain loop over rounds: round 0 sorts kept ones first
  (rejected ones after), round r = 1, 2, ... draws from fold_in(key, r) and
  appends its kept ones until B are kept or max_rounds rounds ran.

  Returns images, masks, weights of the B slots and every round's keep flags.
  """
  n = spec.num_candidates(batch_size)
  images, masks, keep = reference_candidates(key, sampler, spec, n)
  order = np.concatenate([np.flatnonzero(keep), np.flatnonzero(~keep)])
  images, masks = list(images[order]), list(masks[order])
  kept = list(range(keep.sum()))  # Slots holding a kept sample.
  keeps = [keep]
  while len(keeps) < spec.max_rounds and len(kept) < batch_size:
    more = reference_candidates(jax.random.fold_in(key, len(keeps)), sampler,
                                spec, n)
    keeps.append(more[2])
    for i in np.flatnonzero(more[2]):
      if len(kept) < batch_size:
        images[len(kept)], masks[len(kept)] = more[0][i], more[1][i]
        kept.append(len(kept))
  weights = np.arange(batch_size) < len(kept)
  return (np.stack(images[:batch_size]), np.stack(masks[:batch_size]),
          weights, keeps)


def test_default_spec_reads_config():
  spec = make_spec()
  assert spec.mask_rule == "lighting" and spec.connectivity == 4
  assert spec.histogram_rule == "authors"  # docs/method.md section 6.
  assert spec.num_candidates(95) == 143
  assert spec.max_rounds > 1
  hash(spec)


@pytest.mark.parametrize("max_rounds", [1, 16])
@pytest.mark.parametrize("overrides", [
    dict(size_filter=True, max_foreground=0.12, histogram_filter=False),
    dict(histogram_filter=True, histogram_rule="authors", connectivity=8,
         max_foreground=0.2),
    dict(size_filter=True, max_foreground=0.12, histogram_filter=False,
         fill_holes=True),
])
def test_synthesize_matches_reference(sampler, overrides, max_rounds):
  spec = make_spec(max_rounds=max_rounds, **overrides)
  key = jax.random.key(7)
  out = batch_lib.synthesize(key, blob_generator, PARAMS, DIRECTION, sampler,
                             spec, 10)
  images, masks, weights, keeps = reference_batch(key, sampler, spec, 10)
  assert out.images.shape == (10, SIZE, SIZE, 3)
  assert out.masks.dtype == jnp.float32 and out.weights.dtype == jnp.float32
  np.testing.assert_allclose(out.images, images, atol=1e-6)
  np.testing.assert_array_equal(out.masks, masks.astype(np.float32))
  np.testing.assert_array_equal(out.weights, weights)
  stats = {k: int(v) for k, v in out.stats.items()}
  kept = sum(int(k.sum()) for k in keeps)
  assert stats["rounds"] == len(keeps)
  assert stats["generated"] == 15 * len(keeps)
  assert stats["kept"] == kept
  assert stats["filled"] == min(10, kept) == weights.sum()
  assert stats["unfilled"] == 10 - stats["filled"]
  assert 0 < keeps[0].sum() < 10  # Round 0 alone does not fill the batch,
  if max_rounds > 1:  # the loop does, in a few rounds.
    assert stats["unfilled"] == 0 and 1 < stats["rounds"] < max_rounds


def test_first_round_batch_is_the_one_round_batch(sampler):
  """A batch that round 0 fills holds the same samples whatever the cap.

  The generator compiled inside the loop may round differently (1 ulp).
  """
  key = jax.random.key(3)
  run = lambda rounds: batch_lib.synthesize(
      key, blob_generator, PARAMS, DIRECTION, sampler,
      make_spec(max_rounds=rounds, histogram_filter=False), 6)
  one, loop = run(1), run(16)
  assert int(loop.stats["rounds"]) == 1 and int(loop.stats["unfilled"]) == 0
  np.testing.assert_allclose(one.images, loop.images, atol=1e-6)
  np.testing.assert_array_equal(one.masks, loop.masks)
  np.testing.assert_array_equal(one.weights, loop.weights)
  assert {k: int(v) for k, v in one.stats.items()} == {
      k: int(v) for k, v in loop.stats.items()}


def test_synthesize_is_deterministic_by_key_and_vmappable(sampler):
  spec = make_spec()
  run = functools.partial(batch_lib.synthesize, generate=blob_generator,
                          gen_params=PARAMS, direction=DIRECTION,
                          sample_latents=sampler, spec=spec, batch_size=4)
  keys = jax.random.split(jax.random.key(0), 3)
  first, again = run(keys[0]), run(keys[0])
  np.testing.assert_array_equal(first.images, again.images)
  np.testing.assert_array_equal(first.masks, again.masks)
  assert not np.array_equal(first.images, run(keys[1]).images)
  mapped = jax.jit(jax.vmap(run))(keys)
  for i in range(3):
    single = run(keys[i])
    np.testing.assert_allclose(mapped.images[i], single.images, atol=1e-6)
    np.testing.assert_array_equal(mapped.masks[i], single.masks)
    np.testing.assert_array_equal(mapped.weights[i], single.weights)


def test_everything_rejected_gives_zero_weights(sampler):
  spec = make_spec(max_foreground=0.0)
  out = batch_lib.synthesize(jax.random.key(1), blob_generator, PARAMS,
                             DIRECTION, sampler, spec, 6)
  stats = {k: int(v) for k, v in out.stats.items()}
  assert not np.any(out.weights)
  assert stats["kept"] == 0 and stats["unfilled"] == 6
  assert stats["rounds"] == spec.max_rounds > 1  # Every round ran.
  assert stats["rejected_size"] == stats["generated"] == 9 * spec.max_rounds


def test_affine_rule_through_synthesize(sampler):
  # A_0 darkens by 0.5 (background), A_1 brightens (object); in this
  # generator tanh makes the change not exactly affine, but the classes
  # still follow the sign of the change, i.e. the lighting mask.
  maps = np.zeros((2, 3, 4), np.float32)
  maps[:, :, :3] = np.eye(3)
  maps[0, :, 3], maps[1, :, 3] = -0.5, 0.5
  spec = make_spec(mask_rule="affine", size_filter=False,
                   histogram_filter=False, components_filter=False)
  light = make_spec(size_filter=False, histogram_filter=False,
                    components_filter=False)
  key = jax.random.key(4)
  out = batch_lib.synthesize(key, blob_generator, PARAMS, DIRECTION, sampler,
                             spec, 4, affine_maps=jnp.asarray(maps))
  ref = batch_lib.synthesize(key, blob_generator, PARAMS, DIRECTION, sampler,
                             light, 4)
  assert np.mean(np.asarray(out.masks) == np.asarray(ref.masks)) > 0.97


def test_bad_config_fields_are_named():
  with pytest.raises(UserError, match="config.synth.oversample"):
    make_spec(oversample=0.5)
  with pytest.raises(UserError, match="config.synth.connectivity"):
    make_spec(connectivity=6)
  with pytest.raises(UserError, match="config.synth.max_starved_batches"):
    make_spec(max_starved_batches=0)
  with pytest.raises(UserError, match="config.synth.mask_rule"):
    make_spec(mask_rule="dark")


def _stats(filled, unfilled, size=0, histogram=0):
  return {"filled": np.int32(filled), "unfilled": np.int32(unfilled),
          "generated": np.int32(150), "rejected_size": np.int32(size),
          "rejected_histogram": np.int32(histogram)}


def test_starvation_guard_names_the_worst_filter():
  guard = batch_lib.StarvationGuard(make_spec(max_starved_batches=3,
                                              starved_fraction=0.05))
  guard.check(_stats(2, 98, size=140, histogram=10))
  guard.check(_stats(5, 95))  # 5% filled: not starved, streak resets
  assert guard.streak == 0
  guard.check(_stats(0, 100, size=10, histogram=149))
  guard.check(_stats(4, 96, size=10, histogram=140))
  with pytest.raises(UserError, match=r"^config.synth.histogram_filter: "
                     r"rejected 438 of 450"):
    guard.check(_stats(1, 99, size=150, histogram=149))


def test_starvation_guard_counts_batches_not_checks():
  """One log interval of 100 starved batches is past a limit of 20 batches."""
  guard = batch_lib.StarvationGuard(make_spec(max_starved_batches=20,
                                              starved_fraction=0.05))
  guard.check(_stats(0, 19, histogram=150), batches=19)
  assert guard.streak == 19
  guard.check(_stats(10, 90), batches=10)  # 10% filled: resets.
  assert guard.streak == 0
  with pytest.raises(UserError, match=r"over 100 batches in a row"):
    guard.check(_stats(0, 3200, histogram=4800), batches=100)


def test_starvation_guard_on_a_real_starved_run(sampler):
  spec = make_spec(max_foreground=0.0, max_starved_batches=2)
  guard = batch_lib.StarvationGuard(spec)
  stats = batch_lib.synthesize(jax.random.key(2), blob_generator, PARAMS,
                               DIRECTION, sampler, spec, 4).stats
  guard.check(stats)
  with pytest.raises(UserError, match="config.synth.size_filter"):
    guard.check(stats)
