"""How "segmenting" a latent shift is: the affine test of appendix B.

docs/method.md section 3. A shift h is segmenting when every pixel colour
c = G(z)_xy is carried to c' = G(z + h)_xy by one of two affine colour maps
A_1, A_2 (3x3 matrix + bias, outputs clamped to [-1, 1]). For each
candidate direction u (rows of directions.npy):

1. h = shift_scale * u / ||u|| (candidates are scaled x5), shift_scale in
   units of the latent prior's spread (`shift_units` 'spread', default: 1
   for N(0, I)) or of the latent itself ('absolute').
2. Orientation (`orient`, rule `orient_rule`; docs/method.md section 3):
   h or -h, so that the lighting rule of section 4 marks the object.
   - 'border' (default): the boundary prior of salient-object detection
     (Wei et al., ECCV 2012, "Geodesic saliency using background priors";
     Zhu et al., CVPR 2014, the wCtr baseline's boundary connectivity): the
     background is what touches the image border. Over the held-out pairs,
     let b be the share of border pixels (the outermost row and column on
     each side) that the lighting mask gray(G(z + h)) > gray(G(z)) marks,
     and c the share of the other pixels it marks; h is replaced by -h when
     b > c, i.e. when what brightens lies more on the border than inside.
     Right for small objects and for centred ones that fill most of the
     frame alike.
   - 'minority': if more than half of the held-out pixels get visibly
     brighter, gray(G(z + h)) > gray(G(z)) + orient_tolerance, h is replaced
     by -h, so what brightens is the smaller region — the same bound as the
     size filter of section 6. Wrong when the object covers more than half
     of the frame (centred faces). The tolerance (one 8-bit gray level by
     default) keeps the far-off pixels that a smooth generator changes by
     1e-6 from deciding the sign.
3. Fit A_1, A_2 with Adam (lr, `steps` steps, `batch_size` fresh latents z ~
   N(0, I) per step) on the restoration loss
     L = mean over pixels of min_i ||A_i(c) - c'||_2,
   starting from W_i = I + init_noise * U(-1/sqrt(3), 1/sqrt(3)) and
   b_i ~ U(-1/sqrt(3), 1/sqrt(3)): PyTorch's default nn.Linear(3, 3) init, of
   which the authors' code (directions_scoring.py) scales only the weight.
4. On `heldout_batches` held-out batches: L_h (the same loss), D_h = mean over
   pixels of ||A_1(c) - A_2(c)||_2, the pixel classes argmin_i ||A_i(c) - c'||
   and the dominant class's share of pixels ("area"). The maps are then
   ordered as in the paper: A_1 (index 0) is the one that brightens more on
   average (mean gray(A_i(c)) - gray(c)).

All candidates share the same latents and the same initial maps (common
random numbers: differences between candidates are not sampling noise).
Scoring is one jitted computation, called on a few equal chunks of the
candidates so that progress can be logged: `jax.vmap` over candidates of a
`lax.scan` fitting loop (or `lax.map` over chunks of `candidate_batch`
candidates to bound memory). G(z) does not depend on the candidate, so vmap
leaves it unbatched: it is computed once per step for all candidates. With
several devices the candidate axis is sharded over the mesh's 'data' axis.
"""
import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gansseg_jax.infra import errors
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import sharding
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import affine
from gansseg_jax.synth import masks

Generate = Callable[..., jax.Array]
ORIENT_RULES = ("border", "minority")


@dataclasses.dataclass(frozen=True)
class ScoreSpec:
  """The static numbers of the affine test (hashable)."""
  shift_scale: float
  learning_rate: float
  batch_size: int
  steps: int
  init_noise: float
  heldout_batches: int
  orient: bool
  orient_rule: str
  orient_tolerance: float
  candidate_batch: int
  shift_units: str = "spread"

  @classmethod
  def from_config(cls, score: ml_collections.ConfigDict) -> "ScoreSpec":
    for field in ("batch_size", "steps", "heldout_batches"):
      if score[field] <= 0:
        raise errors.UserError(
            f"config.score.{field}: must be positive, got {score[field]}")
    if score.orient_rule not in ORIENT_RULES:
      raise errors.UserError(
          f"config.score.orient_rule: {score.orient_rule!r} is not one of "
          f"{', '.join(ORIENT_RULES)}")
    if score.shift_units not in latent.SHIFT_UNITS:
      raise errors.UserError(
          f"config.score.shift_units: {score.shift_units!r} is not one of "
          f"{', '.join(latent.SHIFT_UNITS)}")
    if score.candidate_batch < 0:
      raise errors.UserError(
          f"config.score.candidate_batch: must be >= 0, got "
          f"{score.candidate_batch}")
    return cls(shift_scale=score.shift_scale,
               learning_rate=score.learning_rate,
               batch_size=score.batch_size, steps=score.steps,
               init_noise=score.init_noise,
               heldout_batches=score.heldout_batches, orient=score.orient,
               orient_rule=score.orient_rule,
               orient_tolerance=score.orient_tolerance,
               candidate_batch=score.candidate_batch,
               shift_units=score.shift_units)


class CandidateScores(NamedTuple):
  """Per-candidate results; every field has the candidate axis first."""
  restoration_loss: Any  # L_h [N] on the held-out batches.
  separation: Any  # D_h [N].
  dominant_area: Any  # [N] share of held-out pixels in the larger class.
  brightening_area: Any  # [N] share of pixels in class 0 (the brightening map).
  lighting_area: Any  # [N] share the lighting rule marks (oriented shift).
  border_lighting: Any  # [N] share of border pixels it marks (oriented).
  inner_lighting: Any  # [N] share of the other pixels it marks (oriented).
  sign: Any  # [N] +1 or -1: the oriented shift is sign * h.
  fit_loss: Any  # [N] restoration loss of the last fitting batch.
  maps: Any  # [N, 2, 3, 4] A_1 (brightens more), A_2.


def initial_maps(key: jax.Array, init_noise: float) -> jax.Array:
  """[2, 3, 4]: W_i = I + init_noise * U(+-1/sqrt(3)), b_i = U(+-1/sqrt(3))."""
  bound = 1.0 / math.sqrt(3.0)
  w_key, b_key = jax.random.split(key)
  weights = jnp.eye(3) + init_noise * jax.random.uniform(
      w_key, (2, 3, 3), minval=-bound, maxval=bound)
  biases = jax.random.uniform(b_key, (2, 3, 1), minval=-bound, maxval=bound)
  return jnp.concatenate([weights, biases], axis=-1)


def border_pixel_mask(size: tuple[int, int]) -> np.ndarray:
  """bool [H, W]: the outermost row and column on each side of the image."""
  border = np.ones(size, dtype=bool)
  border[1:-1, 1:-1] = False
  return border


def _norm(x: jax.Array) -> jax.Array:
  """||x||_2 over the last axis, with a zero (not NaN) gradient at x = 0."""
  squared = jnp.sum(x * x, axis=-1)
  positive = squared > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def restoration_distances(maps: jax.Array, image: jax.Array,
                          shifted: jax.Array) -> jax.Array:
  """min_i ||A_i(c) - c'||_2 = ||S(c, c') - c'||_2 per pixel: [..., H, W]."""
  return jnp.min(_norm(affine.apply_affine(maps, image) - shifted[None]),
                 axis=0)


def restoration_loss(maps: jax.Array, image: jax.Array,
                     shifted: jax.Array) -> jax.Array:
  """L = mean over pixels of ||S(c, c') - c'||_2 (docs/method.md §3)."""
  return jnp.mean(restoration_distances(maps, image, shifted))


def map_separation(maps: jax.Array, image: jax.Array) -> jax.Array:
  """||A_1(c) - A_2(c)||_2 per pixel [..., H, W]; D_h is its mean."""
  mapped = affine.apply_affine(maps, image)
  return _norm(mapped[0] - mapped[1])


def _score_one(generate: Generate, spec: ScoreSpec, gen_params, fit_z,
               heldout_z, init_maps, direction) -> CandidateScores:
  """The affine test of one candidate (the caller vmaps it)."""
  scale = latent.shift_length(spec.shift_scale, spec.shift_units,
                              generate, "config.score.shift_units")
  shift = scale * direction / jnp.linalg.norm(direction)

  image_shape = jax.eval_shape(generate, gen_params, heldout_z[0]).shape
  pixels = heldout_z.shape[0] * math.prod(image_shape[:-1])

  def heldout_pass(per_batch, shift):
    """Sums per_batch(G(z), G(z + shift)) over the held-out batches."""
    def batch_sums(z):
      return per_batch(generate(gen_params, z),
                       generate(gen_params, latent.shift(z, shift)))

    def body(total, z):
      return jax.tree.map(jnp.add, total, batch_sums(z)), None
    return jax.lax.scan(body, batch_sums(heldout_z[0]), heldout_z[1:])[0]

  def lighting_count(image, shifted):
    return jnp.sum(masks.lighting_mask(image, shifted), dtype=jnp.float32)

  border = border_pixel_mask(image_shape[-3:-1])
  border_pixels = heldout_z.shape[0] * image_shape[0] * int(border.sum())

  def border_lighting_counts(image, shifted):
    lit = masks.lighting_mask(image, shifted)
    return {"border": jnp.sum(lit & border, dtype=jnp.float32),
            "inner": jnp.sum(lit & ~border, dtype=jnp.float32)}

  def brightening_count(image, shifted):
    rise = masks.gray(shifted) - masks.gray(image)
    return jnp.sum(rise > spec.orient_tolerance, dtype=jnp.float32)

  if spec.orient and spec.orient_rule == "border":
    marked = heldout_pass(border_lighting_counts, shift)
    sign = jnp.where(marked["border"] / border_pixels
                     > marked["inner"] / (pixels - border_pixels), -1.0, 1.0)
  elif spec.orient:
    before = heldout_pass(brightening_count, shift) / pixels
    sign = jnp.where(before > 0.5, -1.0, 1.0)
  else:
    sign = jnp.float32(1.0)
  shift = sign * shift

  optimizer = optax.adam(spec.learning_rate)

  def fit_step(carry, z):
    maps, opt_state = carry
    image = generate(gen_params, z)
    shifted = generate(gen_params, latent.shift(z, shift))
    loss, grads = jax.value_and_grad(restoration_loss)(maps, image, shifted)
    updates, opt_state = optimizer.update(grads, opt_state, maps)
    return (optax.apply_updates(maps, updates), opt_state), loss

  (maps, _), fit_losses = jax.lax.scan(
      fit_step, (init_maps, optimizer.init(init_maps)), fit_z)

  def heldout_sums(image, shifted):
    mapped = affine.apply_affine(maps, image)
    return {
        "loss": jnp.sum(restoration_distances(maps, image, shifted)),
        "separation": jnp.sum(map_separation(maps, image)),
        "class_one": jnp.sum(
            affine.affine_class_map(maps, image, shifted), dtype=jnp.float32),
        "lighting": lighting_count(image, shifted),
        **border_lighting_counts(image, shifted),
        "gain": jnp.sum(masks.gray(mapped) - masks.gray(image)[None],
                        axis=(1, 2, 3)),
    }

  sums = heldout_pass(heldout_sums, shift)
  border_share = sums.pop("border") / border_pixels
  inner_share = sums.pop("inner") / (pixels - border_pixels)
  sums = jax.tree.map(lambda s: s / pixels, sums)
  swap = sums["gain"][1] > sums["gain"][0]
  maps = jnp.where(swap, maps[::-1], maps)
  class_zero = jnp.where(swap, sums["class_one"], 1.0 - sums["class_one"])
  return CandidateScores(
      restoration_loss=sums["loss"], separation=sums["separation"],
      dominant_area=jnp.maximum(class_zero, 1.0 - class_zero),
      brightening_area=class_zero, lighting_area=sums["lighting"],
      border_lighting=border_share, inner_lighting=inner_share, sign=sign,
      fit_loss=fit_losses[-1], maps=maps)


@functools.lru_cache(maxsize=4)
def scorer(generate: Generate, spec: ScoreSpec, mesh: jax.sharding.Mesh):
  """The jitted scoring of all candidates (cached: compiled once per shape).

  (gen_params, directions [N, d], key_data) -> CandidateScores; the shared
  latents and initial maps are drawn inside from the raw key data.
  """
  def score_all(gen_params, directions, key_data):
    fit_key, heldout_key, init_key = jax.random.split(
        jax.random.wrap_key_data(key_data), 3)
    latent_dim = directions.shape[1]
    fit_z = latent.draw(generate, gen_params, fit_key,
                        (spec.steps, spec.batch_size), latent_dim)
    heldout_z = latent.draw(
        generate, gen_params, heldout_key,
        (spec.heldout_batches, spec.batch_size), latent_dim)
    one = functools.partial(_score_one, generate, spec, gen_params, fit_z,
                            heldout_z, initial_maps(init_key, spec.init_noise))
    if spec.candidate_batch and spec.candidate_batch < len(directions):
      return jax.lax.map(one, directions, batch_size=spec.candidate_batch)
    return jax.vmap(one)(directions)

  replicated = sharding.replicated(mesh)
  return jax.jit(
      score_all,
      in_shardings=(replicated, sharding.batch_sharded(mesh), replicated),
      out_shardings=replicated)


def score_candidates(generate: Generate, gen_params: Any,
                     directions: np.ndarray, key: jax.Array,
                     spec: ScoreSpec, chunks: int = 1,
                     progress_every_s: float = 10.0) -> CandidateScores:
  """The affine test of every row of `directions` [N, d]; numpy results.

  The candidates go to the device in `chunks` equal calls of one jitted
  computation (see the module docstring), logging progress (rate, ETA) after
  each; every call sees the same latents and initial maps, so the scores do
  not depend on `chunks` (each extra call recomputes the shared G(z) once
  more). The candidate axis is sharded over the mesh, padded with copies of
  row 0 to equal chunks that are multiples of the device count. Every process
  must call it. Rows of zero norm give NaN scores (ranked as dropped).
  """
  directions = np.asarray(directions, dtype=np.float32)
  num_candidates = len(directions)
  mesh = sharding.data_mesh()
  per_chunk = mesh.size * math.ceil(
      num_candidates / (mesh.size * max(1, int(chunks))))
  num_chunks = math.ceil(num_candidates / per_chunk)
  padded = num_chunks * per_chunk - num_candidates
  if padded:
    directions = np.concatenate(
        [directions, np.repeat(directions[:1], padded, axis=0)])
  gen_params, key_data = sharding.replicate(
      (gen_params, jax.random.key_data(key)), mesh)
  score_call = scorer(generate, spec, mesh)
  progress = monitoring.Progress(num_candidates, "score: candidates",
                                 every_s=progress_every_s)
  parts = []
  for i in range(num_chunks):
    rows = directions[i * per_chunk:(i + 1) * per_chunk]
    chunk = jax.make_array_from_callback(
        rows.shape, sharding.batch_sharded(mesh), lambda index: rows[index])
    parts.append(sharding.fetch(tuple(score_call(gen_params, chunk, key_data))))
    progress.update(min((i + 1) * per_chunk, num_candidates))
  progress.close()
  return CandidateScores(*(np.concatenate(x)[:num_candidates]
                           for x in zip(*parts)))
