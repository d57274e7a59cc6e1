"""The pieces of training against numpy references and planted inputs."""
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.infra import sharding
from gansseg_jax.train import holdout
from gansseg_jax.train import segmentation
from gansseg_jax.train import stage
import test_train_fixtures as f


def _numpy_cross_entropy(logits, masks):
  """Per-sample mean over pixels of -log softmax(logits)[mask], by loops."""
  out = np.zeros(len(logits))
  for i in range(len(logits)):
    total = 0.0
    for y in range(logits.shape[1]):
      for x in range(logits.shape[2]):
        l0, l1 = logits[i, y, x].astype(np.float64)
        log_norm = np.logaddexp(l0, l1)
        total -= (l1 if masks[i, y, x] else l0) - log_norm
    out[i] = total / (logits.shape[1] * logits.shape[2])
  return out


def test_weighted_pixel_cross_entropy_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(5, 4, 6, 2)).astype(np.float32) * 3
  masks = (rng.random((5, 4, 6)) > 0.5).astype(np.float32)
  weights = np.array([1, 0, 1, 1, 0], np.float32)
  want = (weights * _numpy_cross_entropy(logits, masks)).sum() / 3
  got = segmentation.weighted_pixel_cross_entropy(logits, masks, weights)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  empty = segmentation.weighted_pixel_cross_entropy(logits, masks,
                                                    np.zeros(5, np.float32))
  assert float(empty) == 0.0


def test_holdout_metric_sums_match_numpy():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(4, 5, 5, 2)).astype(np.float32)
  logits[3, ..., 0] = 1.0  # Sample 3: empty prediction ...
  logits[3, ..., 1] = -1.0
  masks = (rng.random((4, 5, 5)) > 0.6).astype(np.float32)
  masks[3] = 0.0  # ... and empty truth: IoU 1.
  weights = np.array([1, 1, 0, 1], np.float32)
  logits[2, 0, 0] = np.nan  # An empty slot's NaN stays out of the sums.
  sums = {k: float(v) for k, v in
          holdout.metric_sums(logits, masks, weights).items()}
  pred, truth = logits[..., 1] > logits[..., 0], masks > 0.5
  ious, accs = [], []
  for i in range(4):
    union = np.logical_or(pred[i], truth[i]).sum()
    inter = np.logical_and(pred[i], truth[i]).sum()
    ious.append(inter / union if union else 1.0)
    accs.append((pred[i] == truth[i]).mean())
  assert ious[3] == 1.0
  assert sums["samples"] == 3
  np.testing.assert_allclose(sums["iou"], np.dot(weights, ious), rtol=1e-6)
  np.testing.assert_allclose(sums["accuracy"], np.dot(weights, accs),
                             rtol=1e-6)
  kept = weights > 0
  np.testing.assert_allclose(
      sums["loss"], _numpy_cross_entropy(logits[kept], masks[kept]).sum(),
      rtol=1e-5)


def test_learning_rate_is_1e3_then_times_02_from_step_8000():
  from configs import default  # pylint: disable=g-import-not-at-top
  schedule = segmentation.learning_rate_schedule(default.get_config().train)
  for step, lr in [(0, 1e-3), (7999, 1e-3), (8000, 2e-4), (11999, 2e-4)]:
    assert float(schedule(step)) == pytest.approx(lr)
  c = default.get_config().train
  c.decay_steps = (10, 20)
  schedule = segmentation.learning_rate_schedule(c)
  assert float(schedule(25)) == pytest.approx(1e-3 * 0.2 * 0.2)


def test_global_batch_must_split_over_the_devices():
  assert sharding.per_device_batch(96, 8, "config.train.batch_size") == 12
  with pytest.raises(errors.UserError,
                     match=r"^config\.train\.batch_size: global batch 95 .* "
                           r"8 devices"):
    sharding.per_device_batch(95, 8, "config.train.batch_size")
  c = f.tiny_config().train
  c.batch_size, c.synth_chunks = 8, 0
  assert sharding.synth_chunks(c, 2) == 2
  c.synth_chunks = 4
  assert sharding.synth_chunks(c, 2) == 4
  for chunks, devices in [(3, 1), (2, 4), (16, 2)]:
    c.synth_chunks = chunks
    with pytest.raises(errors.UserError, match=r"^config\.train\.synth_chunks"):
      sharding.synth_chunks(c, devices)


@pytest.mark.parametrize("field,value", [("steps", 0), ("log_every", -1),
                                         ("keep_checkpoints", 0),
                                         ("steps_per_call", 0)])
def test_bad_periods_are_user_errors(field, value, tmp_path):
  c = f.tiny_config()
  c.train[field] = value
  with pytest.raises(errors.UserError, match=rf"^config\.train\.{field}:"):
    segmentation.train(c, str(tmp_path), f.disc_generate, f.DISC_PARAMS,
                       f.background_direction())


def test_bad_unet_fields_are_user_errors():
  c = f.tiny_config()
  c.unet.dtype = "float16"
  with pytest.raises(errors.UserError, match=r"^config\.unet\.dtype:"):
    segmentation.build(c, sharding.data_mesh(), f.disc_generate).init_state()
  c.unet.dtype, c.unet.width = "float32", 0
  with pytest.raises(errors.UserError, match=r"^config\.unet\.width:"):
    segmentation.build(c, sharding.data_mesh(), f.disc_generate)


def test_stage_names_a_missing_or_wrong_direction_file(tmp_path):
  c = f.tiny_config()
  path = os.path.join(tmp_path, "bg_direction.npy")
  with pytest.raises(errors.UserError, match=rf"^{path}: no such file"):
    stage.run(c, str(tmp_path))
  np.save(path, np.ones(f.Z_DIM + 1, np.float32))
  with pytest.raises(errors.UserError, match=r"expected shape \[8\], got \[9\]"):
    stage.run(c, str(tmp_path))
  np.save(path, np.zeros(f.Z_DIM, np.float32))
  with pytest.raises(errors.UserError, match="all zeros"):
    stage.run(c, str(tmp_path))


def test_stage_refuses_a_starved_direction_before_training(tmp_path,
                                                           monkeypatch):
  """Pass rates below train.min_kept_fraction: one error, no training;
  min_kept_fraction=0 trains anyway and W/filter_rates.json says what kept."""
  workdir = str(tmp_path)
  f.write_inputs(workdir)
  c = f.tiny_config()
  c.synth.max_foreground = 0.001  # The size filter rejects all but empty masks.
  c.synth.pass_rate_samples = 24
  monkeypatch.setattr(stage.convert_load, "load_generator",
                      lambda config, workdir: (f.disc_generate, f.DISC_PARAMS))
  trained = []
  monkeypatch.setattr(segmentation, "train",
                      lambda *args: trained.append(args) or "state")
  monkeypatch.setattr(stage.load, "save_unet", lambda workdir, state: None)
  with pytest.raises(errors.UserError) as error:
    stage.run(c, workdir)
  assert re.match(r"config\.synth\.size_filter: keeps \d\.\d% of 24 pairs",
                  str(error.value))
  assert "config.train.min_kept_fraction=0" in str(error.value)
  assert not trained
  assert sorted(os.listdir(workdir)) == ["bg_direction.npy"]

  c.train.min_kept_fraction = 0.0
  stage.run(c, workdir)
  assert len(trained) == 1
  with open(os.path.join(workdir, "filter_rates.json")) as fh:
    measured = json.load(fh)
  rates = measured["rates"]
  assert rates["kept"] == rates["size"] < 0.05 and rates["histogram"] == 1.0
  assert measured["rates"]["samples"] == 24
  assert measured["settings"]["max_foreground"] == 0.001


@pytest.fixture(scope="module")
def update():
  """The U-Net update of the tiny config on one device, compiled at -O0."""
  fused = segmentation.build(f.tiny_config(), sharding.data_mesh(),
                             f.disc_generate)
  step = jax.jit(fused.update.__wrapped__,
                 compiler_options={"xla_backend_optimization_level": 0})
  return fused.init_state(), step


def _batch(seed):
  rng = np.random.default_rng(seed)
  images = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
  masks = (rng.random((8, 32, 32)) > 0.5).astype(np.float32)
  return images, masks


def test_empty_slots_do_not_change_the_update(update):
  state, step = update
  images, masks = _batch(0)
  weights = np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float32)
  new, metrics = step(state, images, masks, weights)
  other_images, other_masks = _batch(1)
  images[5:], masks[5:] = other_images[5:] * 100, other_masks[5:]
  images[7] = np.nan
  again, again_metrics = step(state, images, masks, weights)
  assert int(new["step"]) == 1 and np.isfinite(float(metrics["loss"]))
  assert float(again_metrics["loss"]) == float(metrics["loss"])
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(again)):
    np.testing.assert_array_equal(a, b)
  assert float(metrics["kept_fraction"]) == 5 / 8


def test_non_finite_loss_leaves_the_state_unchanged(update):
  state, step = update
  images, masks = _batch(2)
  images[0] = np.inf
  new, metrics = step(state, images, masks, np.ones(8, np.float32))
  assert not np.isfinite(float(metrics["loss"]))
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(state)):
    np.testing.assert_array_equal(a, b)
  assert int(new["step"]) == 0


def test_holdout_keeps_exactly_holdout_size_slots():
  fused = segmentation.build(f.tiny_config(), sharding.data_mesh(),
                             f.disc_generate)
  ones = jnp.ones((8, 2, 2, 3))

  def synthesize_batch(b):
    del b
    return ones, ones[..., 0], jnp.ones((8,)), {}

  batches = holdout.build(synthesize_batch, 20, 8, fused.first_slots)
  weights = np.concatenate([np.asarray(b.weights) for b in batches])
  np.testing.assert_array_equal(weights, np.arange(24) < 20)


def test_embedding_latents_come_from_the_table_passed_to_the_step():
  """latents='embeddings', alpha=0: every sample is G of one table row."""
  c = f.tiny_config()
  c.synth.latents, c.synth.embedding_noise = "embeddings", 0.0
  c.synth.size_filter = c.synth.histogram_filter = False
  mesh = sharding.data_mesh()
  fused = segmentation.build(c, mesh, f.disc_generate)
  synthesize = jax.jit(fused.synthesize.__wrapped__, static_argnums=0,
                       compiler_options={"xla_backend_optimization_level": 0})
  table = np.random.default_rng(3).normal(size=(3, f.Z_DIM)).astype(
      np.float32)
  frozen = sharding.replicate(segmentation.Frozen(
      f.DISC_PARAMS, f.background_direction(), table, None), mesh)
  images, _, weights, _ = synthesize("train", np.int32(0), frozen)
  choices = np.asarray(f.disc_generate(f.DISC_PARAMS, table))
  for image in np.asarray(images):
    assert min(np.abs(image - choice).max() for choice in choices) < 1e-6
  assert np.asarray(weights).sum() == 8


def test_photometric_augment_relights_train_images_only():
  """config.train.photometric_augment changes the train stream's images
  (the same scenes, relit), not its masks or weights; the hold-out stream
  is never augmented."""
  from gansseg_jax.train import augment  # pylint: disable=g-import-not-at-top
  mesh = sharding.data_mesh()

  def streams(strength):
    c = f.tiny_config()
    c.train.photometric_augment = strength
    fused = segmentation.build(c, mesh, f.disc_generate)
    synthesize = jax.jit(
        fused.synthesize.__wrapped__, static_argnums=0,
        compiler_options={"xla_backend_optimization_level": 0})
    frozen = sharding.replicate(segmentation.Frozen(
        f.DISC_PARAMS, f.background_direction(), None, None), mesh)
    return [synthesize(s, np.int32(2), frozen) for s in ("train", "holdout")]

  (plain, plain_held), (lit, lit_held) = streams(0.0), streams(0.8)
  for a, b in zip(plain[1:3], lit[1:3]):  # Masks and weights.
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for a, b in zip(plain_held[:3], lit_held[:3]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.allclose(np.asarray(plain[0]), np.asarray(lit[0]))
  images = np.asarray(lit[0])
  assert images.min() >= -1 and images.max() <= 1
  grey = lambda x: (x + 1) / 2 @ np.asarray(augment.LUMA)
  assert np.corrcoef(grey(np.asarray(plain[0])).ravel(),
                     grey(images).ravel())[0, 1] > 0.5  # Same scenes.
