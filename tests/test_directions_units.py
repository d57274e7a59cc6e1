"""Parts of the directions package against hand computations and numpy."""
import dataclasses
import math
import os
import sys

import flax.nnx as nnx
from hypothesis import given, settings
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.directions import deformator as deformator_lib
from gansseg_jax.directions import direction_file
from gansseg_jax.directions import discover as discover_lib
from gansseg_jax.directions import objectness
from gansseg_jax.directions import ranking
from gansseg_jax.directions import score as score_lib
from gansseg_jax.directions import sefa
from gansseg_jax.directions import stage
from gansseg_jax.directions import strips
from gansseg_jax.generators import bigbigan
from gansseg_jax.models import biggan
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.models import reconstructor as reconstructor_lib


# ---- discovery loss and shifts (docs/method.md §2) ----

def test_discovery_loss_by_hand():
  # Row 0: logits (0, ln 3) -> p = (1/4, 3/4); k = 1 -> CE = ln(4/3).
  # Row 1: logits (ln 2, 0) -> p = (2/3, 1/3); k = 1 -> CE = ln 3.
  logits = jnp.array([[0.0, math.log(3.0)], [math.log(2.0), 0.0]])
  k = jnp.array([1, 1])
  loss, metrics = discover_lib.discovery_loss(
      logits, jnp.array([1.5, -2.0]), k, jnp.array([1.0, -0.5]),
      label_weight=1.0, shift_weight=0.25)
  label = (math.log(4 / 3) + math.log(3.0)) / 2
  shift = (0.5 + 1.5) / 2
  np.testing.assert_allclose(metrics["label_loss"], label, rtol=1e-6)
  np.testing.assert_allclose(metrics["shift_loss"], shift, rtol=1e-6)
  np.testing.assert_allclose(loss, label + 0.25 * shift, rtol=1e-6)
  np.testing.assert_allclose(metrics["accuracy"], 0.5)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_discovery_loss_matches_numpy(seed):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(5, 4)).astype(np.float32) * 3
  k = rng.integers(0, 4, size=5)
  pred, eps = rng.normal(size=5), rng.uniform(-6, 6, size=5)
  loss, _ = discover_lib.discovery_loss(jnp.asarray(logits), jnp.asarray(pred),
                                        jnp.asarray(k), jnp.asarray(eps),
                                        label_weight=0.7, shift_weight=0.3)
  log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  expected = (0.7 * -log_softmax[np.arange(5), k].mean()
              + 0.3 * np.abs(pred - eps).mean())
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_shifts_are_pushed_out_of_the_dead_zone():
  spec = discover_lib.DiscoverySpec(num_directions=7, latent_dim=9,
                                    batch_size=20000, max_shift=6.0,
                                    min_shift=0.5, label_weight=1.0,
                                    shift_weight=0.25)
  k, eps = discover_lib.sample_shifts(jax.random.key(0), spec)
  k, eps = np.asarray(k), np.asarray(eps)
  assert k.min() == 0 and k.max() == 6
  assert np.all(np.abs(eps) >= 0.5) and np.all(np.abs(eps) <= 6.0)
  # U[-6, 6]: P(|eps| < 0.5) = 1/12, all of it lands on +-0.5, half each side.
  np.testing.assert_allclose(np.mean(eps == 0.5), 1 / 24, atol=0.006)
  np.testing.assert_allclose(np.mean(eps == -0.5), 1 / 24, atol=0.006)


# ---- deformators ----

def test_deformator_kinds():
  rngs = nnx.Rngs(0)
  x = jnp.array([[2.0, -1.0, 0.0], [0.0, 0.5, 3.0]])
  linear = deformator_lib.Deformator("linear", 3, 5, 0.001, rngs=rngs)
  np.testing.assert_array_equal(linear.directions(), np.eye(3, 5))
  projective = deformator_lib.Deformator("projective", 3, 5, 0.001, rngs=rngs)
  projective.linear[...] = jax.random.normal(jax.random.key(1), (5, 3))
  np.testing.assert_allclose(np.linalg.norm(projective(x), axis=1),
                             np.linalg.norm(x, axis=1), rtol=1e-5)
  random = deformator_lib.Deformator("random", 3, 5, 0.001, rngs=rngs)
  d = np.asarray(random.directions())
  np.testing.assert_allclose(d @ d.T, np.eye(3), atol=1e-5)
  # 'random' and 'id' have nothing to train.
  assert not nnx.state(random, nnx.Param)
  identity = deformator_lib.Deformator("id", 3, 5, 0.001, rngs=rngs)
  np.testing.assert_array_equal(identity(x), np.pad(x, ((0, 0), (0, 2))))
  with pytest.raises(ValueError, match="num_directions <= latent size"):
    deformator_lib.Deformator("ortho", 6, 5, 0.001, rngs=rngs)


def test_ortho_deformator_is_expm_of_skew_part():
  model = deformator_lib.Deformator("ortho", 3, 4, 1.0, rngs=nnx.Rngs(2))
  s = np.asarray(model.log_half[...], dtype=np.float64)
  skew = s - s.T
  # expm by its power series, to convergence.
  expected, term = np.eye(4), np.eye(4)
  for n in range(1, 60):
    term = term @ skew / n
    expected = expected + term
  np.testing.assert_allclose(model.directions(), expected[:, :3].T, atol=1e-5)


def test_build_model_names_bad_fields():
  config = default.get_config().directions
  config.num_directions = 4
  config.deformator = "fc"
  with pytest.raises(errors.UserError, match="config.directions.deformator"):
    discover_lib.build_model(config, 4, jax.random.key(0))
  config.deformator = "ortho"
  config.num_directions = 5
  with pytest.raises(errors.UserError,
                     match="config.directions.num_directions"):
    discover_lib.build_model(config, 4, jax.random.key(0))


def parameter_count(model):
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_reconstructor_architectures():
  """Parameter counts against independent references; output shapes."""
  k = 5
  resnet = nnx.eval_shape(lambda: reconstructor_lib.ResNet18Reconstructor(
      k, 64, 0.9, 1e-5, rngs=nnx.Rngs(0)))
  # torchvision resnet18: 11,689,512 params; minus its fc (512*1000 + 1000),
  # plus 3 more input channels of the 7x7x64 stem, plus our two heads.
  assert parameter_count(resnet) == (
      11_689_512 - 513_000 + 3 * 49 * 64 + (512 * k + k) + (512 + 1))
  lenet = nnx.eval_shape(lambda: reconstructor_lib.LeNetReconstructor(
      k, 2, 0.9, 1e-5, rngs=nnx.Rngs(0)))
  # 5x5 convs 6->6->16->120 with biases, BN scale+bias, heads from 120.
  assert parameter_count(lenet) == (
      (25 * 6 * 6 + 6) + (25 * 6 * 16 + 16) + (25 * 16 * 120 + 120)
      + 2 * (6 + 16 + 120) + (120 * k + k) + (120 + 1))
  pair = jax.ShapeDtypeStruct((2, 32, 32, 6), jnp.float32)
  for model in (resnet, lenet):
    logits, shift = nnx.eval_shape(lambda m, x: m(x), model, pair)
    assert logits.shape == (2, k) and shift.shape == (2,)


# ---- the affine test (docs/method.md §3) ----

def numpy_affine(maps, pixels):
  out = np.einsum("irk,nk->inr", maps[:, :, :3], pixels) + maps[:, None, :, 3]
  return np.clip(out, -1, 1)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_restoration_loss_and_separation_match_a_pixel_loop(seed):
  rng = np.random.default_rng(seed)
  maps = rng.normal(size=(2, 3, 4)) * 0.8
  image = rng.uniform(-1, 1, size=(2, 3, 4, 3))
  shifted = rng.uniform(-1, 1, size=(2, 3, 4, 3))
  pixels, targets = image.reshape(-1, 3), shifted.reshape(-1, 3)
  mapped = numpy_affine(maps, pixels)
  losses = [min(np.linalg.norm(mapped[i, n] - targets[n]) for i in range(2))
            for n in range(len(pixels))]
  gaps = [np.linalg.norm(mapped[0, n] - mapped[1, n])
          for n in range(len(pixels))]
  args = [jnp.asarray(a, jnp.float32) for a in (maps, image, shifted)]
  np.testing.assert_allclose(score_lib.restoration_loss(*args),
                             np.mean(losses), rtol=1e-5)
  np.testing.assert_allclose(jnp.mean(score_lib.map_separation(*args[:2])),
                             np.mean(gaps), rtol=1e-5)


def test_restoration_loss_by_hand_and_finite_gradient_at_zero():
  identity = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1)
  brighten = identity.copy()
  brighten[:, 3] = 0.3
  maps = jnp.asarray(np.stack([identity, brighten]), jnp.float32)
  image = jnp.array([[[[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]]])
  # Pixel 0 unchanged (distance 0 via A_1); pixel 1 moved by +0.1 per channel:
  # A_1 misses by 0.1 sqrt(3), A_2 by 0.2 sqrt(3) -> min = 0.1 sqrt(3).
  shifted = jnp.array([[[[0.0, 0.0, 0.0], [0.6, 0.6, 0.6]]]])
  loss = score_lib.restoration_loss(maps, image, shifted)
  np.testing.assert_allclose(loss, 0.1 * math.sqrt(3) / 2, rtol=1e-5)
  np.testing.assert_allclose(
      jnp.mean(score_lib.map_separation(maps, image)), 0.3 * math.sqrt(3),
      rtol=1e-5)
  grads = jax.grad(score_lib.restoration_loss)(maps, image, shifted)
  assert np.all(np.isfinite(grads))


def test_initial_maps_are_near_identity_with_default_bias():
  maps = np.asarray(score_lib.initial_maps(jax.random.key(0), 0.01))
  bound = 1 / math.sqrt(3)
  assert maps.shape == (2, 3, 4)
  assert np.abs(maps[:, :, :3] - np.eye(3)).max() <= 0.01 * bound
  assert np.abs(maps[:, :, 3]).max() <= bound
  assert not np.allclose(maps[0], maps[1])


# ---- SeFa ----

def test_sefa_matches_numpy_eigendecomposition():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(30, 6)) * rng.uniform(0.1, 3, size=(30, 1))
  vectors, values = sefa.sefa_directions(w, 4, normalize_rows=True)
  rows = w / np.linalg.norm(w, axis=1, keepdims=True)
  expected_values, expected = np.linalg.eig(rows.T @ rows)
  order = np.argsort(-expected_values.real)[:4]
  np.testing.assert_allclose(values, expected_values.real[order], rtol=1e-6)
  np.testing.assert_allclose(np.abs(np.sum(vectors * expected.real[:, order].T,
                                           axis=1)), 1.0, atol=1e-5)
  # Each vector is a maximiser: ||W v||^2 equals its eigenvalue.
  np.testing.assert_allclose(np.sum((rows @ vectors.T) ** 2, axis=0), values,
                             rtol=1e-5)
  unnormalised, _ = sefa.sefa_directions(w, 1, normalize_rows=False)
  top = np.linalg.svd(w)[2][0]
  np.testing.assert_allclose(abs(unnormalised[0] @ top), 1.0, atol=1e-5)


def test_biggan_hierarchical_projection_gives_per_chunk_directions():
  """biggan.latent_projection: SeFa's W^T W is block-diagonal by chunk."""
  spec = biggan.BigGANSpec(resolution=32, z_dim=8, ch=4, shared_dim=8,
                           attention_resolution=0, bn_eps=1e-4)
  network = bigbigan.build(spec.to_dict(), kinds.BuildOptions())
  w = sefa.latent_projection(network, biggan.init_params(spec, seed=0), 8)
  vectors, _ = sefa.sefa_directions(w, 8, normalize_rows=True)
  chunks = np.abs(vectors).reshape(8, 4, 2).max(axis=2)  # [vector, chunk]
  # Every eigenvector lives in exactly one chunk.
  assert ((chunks > 1e-6).sum(axis=1) == 1).all()


def test_projection_pads_and_names_the_field():
  def generate(params, z):
    return jnp.zeros((z.shape[0], 4, 4, 3))
  network = latent.Network(generate=generate, abstract_params={},
                           resolution=4, direction_dim=5)
  with pytest.raises(errors.UserError, match="latent_projection"):
    sefa.latent_projection(network, {}, 5)
  network = dataclasses.replace(network,
                                latent_projection=lambda params: params["w"])
  w = sefa.latent_projection(network, {"w": np.ones((4, 2))}, 5)
  np.testing.assert_array_equal(w, np.pad(np.ones((4, 2)), ((0, 0), (0, 3))))
  with pytest.raises(errors.UserError, match="config.generator.z_dim"):
    sefa.latent_projection(network, {"w": np.ones((4, 6))}, 5)


# ---- ranking (paper's rule) ----

def scores_of(separation, restoration, area):
  n = len(separation)
  return score_lib.CandidateScores(
      restoration_loss=np.asarray(restoration, float),
      separation=np.asarray(separation, float),
      dominant_area=np.asarray(area, float),
      brightening_area=np.full(n, 0.3), lighting_area=np.full(n, 0.3),
      border_lighting=np.full(n, 0.1), inner_lighting=np.full(n, 0.4),
      sign=np.ones(n), fit_loss=np.zeros(n), maps=np.zeros((n, 2, 3, 4)))


def unmeasured(n):
  """An objectness.Placement of n candidates none of which was measured."""
  return objectness.Placement(*(np.full(n, np.nan) for _ in range(3)))


def test_ranking_rule_by_hand():
  #           0     1     2     3     4     5     6           7
  d = [0.9, 0.8, 0.7, 0.95, 0.2, 0.85, 0.1, 0.99]
  l = [0.3, 0.1, 0.2, 0.5, 0.05, 0.2, 0.0, float("nan")]
  a = [0.6, 0.7, 0.8, 0.995, 0.6, 0.7, 0.9, 0.6]
  scores = scores_of(d, l, a)
  # 3 drops (one class), 7 drops (NaN). Kept by D: 0 (.9), 5 (.85), 1 (.8),
  # 2 (.7), 4 (.2), 6 (.1); top 40% = ceil(2.4) = 3 -> {0, 5, 1} by L:
  # 1 (.1), 5 (.2), 0 (.3); then 2, 4, 6 by D.
  ranks = ranking.rank_candidates(scores, 0.99, 0.4)
  np.testing.assert_array_equal(ranks, [3, 1, 4, 0, 5, 2, 6, 0])
  status = ranking.statuses(scores, 0.99)
  assert status[3] == "dropped: one class"
  assert status[7] == "dropped: not finite"
  csv_text = ranking.ranking_csv(scores, ranks, 0.99, 0.4,
                                 unmeasured(len(d)), np.zeros(len(d), bool))
  lines = csv_text.splitlines()
  assert lines[0] == ",".join(ranking.COLUMNS)
  assert [line.split(",")[1] for line in lines[1:]] == [
      "1", "5", "0", "2", "4", "6", "3", "7"]
  # 0.2 * 15 = 3.0000000000000004 must give 3, not 4.
  fifteen = scores_of(np.linspace(1, 0, 15), np.linspace(0, 1, 15)[::-1],
                      np.full(15, 0.5))
  assert (ranking.rank_candidates(fifteen, 0.99, 0.2)[:3] == [3, 2, 1]).all()


def test_shortlist_ordered_by_separation_by_hand():
  d = [0.9, 0.8, 0.7, 0.95, 0.2, 0.85, 0.1, 0.99]
  l = [0.3, 0.1, 0.2, 0.5, 0.05, 0.2, 0.0, float("nan")]
  a = [0.6, 0.7, 0.8, 0.995, 0.6, 0.7, 0.9, 0.6]
  scores = scores_of(d, l, a)
  # As above, the top 40% by D is {0, 5, 1}, by L: 1, 5, 0. A shortlist of 2
  # is {1, 5}; by D: 5 (.85), 1 (.8). Then 0 (the rest of the top), 2, 4, 6.
  ranks = ranking.rank_candidates(scores, 0.99, 0.4, top_k=2,
                                  order_by="separation")
  np.testing.assert_array_equal(ranks, [3, 2, 4, 0, 5, 1, 6, 0])
  # A shortlist of the whole top: 0 (.9), 5 (.85), 1 (.8).
  ranks = ranking.rank_candidates(scores, 0.99, 0.4, top_k=10,
                                  order_by="separation")
  np.testing.assert_array_equal(ranks, [1, 3, 4, 0, 5, 2, 6, 0])
  score_config = default.get_config().score
  score_config.update(max_one_class=0.99, top_fraction=0.4, top_k=10,
                      order_by="separation")
  text = ranking.ranking_markdown(scores, ranks, score_config, 0,
                                  "the top-ranked", unmeasured(len(d)),
                                  np.zeros(len(d), bool))
  assert "the first 10 of them then by D_h (highest first)" in text


def test_unknown_shortlist_order_names_the_field():
  config = default.get_config()
  config.score.order_by = "area"
  with pytest.raises(errors.UserError, match="config.score.order_by"):
    ranking.check_config(config.score)


# ---- direction files ----

def test_direction_file_npy_and_errors(tmp_path):
  path = tmp_path / "d.npy"
  np.save(path, np.arange(1, 5, dtype=np.float64))
  loaded = direction_file.load_directions(str(path), 4)
  np.testing.assert_array_equal(loaded, [[1, 2, 3, 4]])
  assert loaded.dtype == np.float32
  np.save(path, np.zeros((2, 4)))
  with pytest.raises(errors.UserError, match="zero or non-finite"):
    direction_file.load_directions(str(path), 4)
  with pytest.raises(errors.UserError, match=r"expected \[5\] or \[K, 5\]"):
    direction_file.load_directions(str(path), 5)
  with pytest.raises(errors.UserError, match="config.directions.file"):
    direction_file.load_directions(str(tmp_path / "missing.npy"), 4)


def test_unreadable_pth_is_one_error_naming_the_field(tmp_path, monkeypatch):
  """Read with numpy, torch or not: a file that is not a torch file is one
  UserError naming the config field and the file."""
  path = tmp_path / "bg_direction.pth"
  path.write_bytes(b"not really torch")
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(errors.UserError,
                     match=r"^config\.directions\.file: .*bg_direction\.pth"):
    direction_file.load_directions(str(path), 120)


def test_pth_state_dict_of_many_tensors_is_refused():
  """A committed torch file (a DCGAN state dict, written by torch.save) is
  read without torch, and refused: it holds many tensors, not one."""
  path = os.path.join(os.path.dirname(__file__), "fixtures", "dcgan",
                      "gray32.pth")
  with pytest.raises(errors.UserError, match=r"a dict with \d+ tensors"):
    direction_file.load_directions(path, 120)


def test_pth_with_torch(tmp_path):
  torch = pytest.importorskip("torch")
  path = tmp_path / "bg_direction.pth"
  torch.save(torch.arange(1.0, 7.0)[None], path)
  np.testing.assert_array_equal(
      direction_file.load_directions(str(path), 6), [np.arange(1.0, 7.0)])


def test_file_source_writes_directions(tmp_path):
  config = default.get_config()
  config.generator.z_dim = 3
  config.directions.source = "file"
  config.directions.file = str(tmp_path / "h.npy")
  np.save(config.directions.file, np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]))
  stage.discover(config, str(tmp_path / "w"))
  np.testing.assert_array_equal(np.load(tmp_path / "w" / "directions.npy"),
                                [[0, 2, 0], [1, 0, 0]])
  config.directions.source = "gan"
  with pytest.raises(errors.UserError, match="config.directions.source"):
    stage.discover(config, str(tmp_path / "w"))


def test_score_checks_the_hand_picked_index_first(tmp_path, monkeypatch):
  config = default.get_config()
  config.generator.z_dim = 3
  config.score.index = 2
  np.save(tmp_path / "directions.npy", np.eye(2, 3))
  monkeypatch.setattr(stage, "load_generator", lambda *args: pytest.fail(
      "loaded the generator before checking the index"))
  with pytest.raises(errors.UserError, match=r"config.score.index: 2 .*"
                     r"\(0\.\.1\)"):
    stage.score(config, str(tmp_path))
  config.score.top_fraction = 0.0
  with pytest.raises(errors.UserError, match="config.score.top_fraction"):
    stage.score(config, str(tmp_path))


# ---- strips ----

def test_grid_layout():
  tiles = np.full((2, 3, 4, 5, 3), -1.0, np.float32)
  tiles[1, 2] = 1.0
  image = strips.grid(tiles)
  assert image.shape == (2 * 4 + 2, 3 * 5 + 4, 3) and image.dtype == np.uint8
  assert (image[:4, :5] == 0).all() and (image[4:6] == 255).all()
  assert (image[6:, 14:] == 255).all() and (image[6:, 7:12] == 0).all()


def test_shift_images_order():
  def generate(params, z):
    return jnp.broadcast_to(z[:, :1, None, None] * params, (len(z), 2, 2, 3))
  images = strips.shift_images(generate, 1.0, jnp.array([[0.0, 0.0],
                                                         [10.0, 0.0]]),
                               jnp.array([1.0, 0.0]), jnp.array([-1.0, 2.0]))
  np.testing.assert_array_equal(images[:, :, 0, 0, 0], [[-1, 2], [9, 12]])
