"""Stages `discover` and `score`: candidate directions, then the segmenting one.

discover(config, workdir) — docs/method.md section 2.
  Inputs:  W/generator/ for config.directions.source 'discover' and 'sefa';
           the file config.directions.file (outside W) for source 'file'.
  OUTPUTS: W/directions.npy, float32 [K, z_dim], one candidate per row
           (K = config.directions.num_directions; for 'file', the rows of the
           file). Source 'discover' also writes W/checkpoints/discover/
           (orbax, resumed on the next run), W/discover_strips/step_NNNNNNN/
           (PNG strips) and 'discover' scalars to W/metrics.jsonl and
           W/tensorboard/discover/.

score(config, workdir) — docs/method.md section 3 (paper appendix B).
  Inputs:  W/generator/, W/directions.npy; reads config.score and
           config.score.index.
  The shortlist's synthetic masks are measured (directions/objectness.py,
  our addition) and config.score.choose picks among the ranked: 'objectness'
  the best-ranked object-like one, 'paper' rank 1; a chosen direction whose
  masks are not object-like is warned about (log, ranking.md, report).
  OUTPUTS: W/ranking.csv and W/ranking.md (rank, index, L_h, D_h, area, ...),
           W/strips/ (one PNG per shortlisted candidate, top config.score.top_k
           plus a hand-picked index: rows = latents, columns = G(z + t h) for
           t = -strip_steps..strip_steps, then the lighting mask and the
           affine mask of (G(z), G(z + h)); tiles enlarged to at least
           strips.READABLE_TILE px),
           W/<artifacts.BG_DIRECTION>, float32 [z_dim]: the chosen candidate, unit
           norm, oriented so that the foreground brightens,
           W/<artifacts.BG_AFFINE>, float32 [2, 3, 4]: its two fitted affine maps
           (synth.affine layout; A_1 = index 0 brightens more).
"""
import os

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra import artifacts
from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.directions import direction_file
from gansseg_jax.directions import discover as discover_lib
from gansseg_jax.directions import objectness
from gansseg_jax.directions import ranking
from gansseg_jax.directions import score as score_lib
from gansseg_jax.directions import sefa
from gansseg_jax.directions import strips
from gansseg_jax.infra import keys
from gansseg_jax.infra import sharding
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import latents as synth_latents
from gansseg_jax.synth import masks
from gansseg_jax.synth import pass_rates

SOURCES = ("discover", "sefa", "file")


def load_generator(config: ml_collections.ConfigDict, workdir: str):
  """(generate, params) written by stage `convert`.

  Imported on use, so that source 'file' never loads the convert package;
  tests replace this function with an analytic generator.
  """
  from gansseg_jax.convert import load  # pylint: disable=g-import-not-at-top
  return load.load_generator(config, workdir)


def discover(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes W/directions.npy from config.directions.source (see module doc)."""
  cfg = config.directions
  z_dim = config.generator.z_dim
  if cfg.source not in SOURCES:
    raise errors.UserError(
        f"config.directions.source: {cfg.source!r} is not one of {SOURCES}")
  if cfg.source == "file":
    directions = direction_file.load_directions(cfg.file, z_dim)
  else:
    generate, gen_params = load_generator(config, workdir)
    if cfg.source == "sefa":
      if not 1 <= cfg.num_directions <= z_dim:
        raise errors.UserError(
            f"config.directions.num_directions: SeFa gives at most z_dim = "
            f"{z_dim} directions, got {cfg.num_directions}")
      directions, eigenvalues = sefa.sefa_directions(
          sefa.latent_projection(generate, gen_params, z_dim),
          cfg.num_directions, cfg.sefa_normalize)
      logging.info("SeFa eigenvalues (top %d): %s", len(eigenvalues),
                   np.array2string(eigenvalues, precision=4))
    else:
      directions = discover_lib.train(config, workdir, generate, gen_params,
                                      z_dim, keys.stage_key(config.seed,
                                                        "discover"))
  if sharding.is_primary():
    fileio.write_npy(os.path.join(workdir, artifacts.DIRECTIONS), directions)


def _load_candidates(workdir: str, z_dim: int) -> np.ndarray:
  path = os.path.join(workdir, artifacts.DIRECTIONS)
  try:
    directions = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise errors.UserError(f"{path}: not a readable .npy array ({e})") from e
  if directions.ndim != 2 or directions.shape[1] != z_dim or not len(
      directions):
    raise errors.UserError(
        f"{path}: shape {list(directions.shape)}, expected [K >= 1, {z_dim}] "
        "(config.generator.z_dim); run stage 'discover' again")
  return directions.astype(np.float32)


def _check_index(config: ml_collections.ConfigDict,
                 num_candidates: int) -> None:
  index = config.score.index
  if index < -1 or index >= num_candidates:
    raise errors.UserError(
        f"config.score.index: {index} is not -1 (the top-ranked) or a row "
        f"of directions.npy (0..{num_candidates - 1})")


def _choose(config: ml_collections.ConfigDict, ranks: np.ndarray,
            likes: np.ndarray) -> tuple[int, str]:
  """(config.score.index if >= 0, else config.score.choose's pick (-1 if
  none), how it was chosen in words)."""
  cfg = config.score
  if cfg.index >= 0:
    return cfg.index, "picked by config.score.index"
  chosen = objectness.choose(ranks, likes, cfg.choose)
  if cfg.choose == "paper" or chosen < 0:
    return chosen, "the top-ranked"
  if likes[chosen]:
    return chosen, "the best-ranked object-like"
  return chosen, "the top-ranked; no shortlisted candidate is object-like"


def _synth_sampler(config: ml_collections.ConfigDict):
  """(config.synth with prior latents, its sampler): this stage has no
  encoder embeddings, so 'embeddings' runs are measured on the prior."""
  synth = config.synth
  if synth.latents == "embeddings":
    synth = ml_collections.ConfigDict(synth.to_dict())
    synth.latents = "prior"
  return synth, synth_latents.make_sampler(synth, config.generator.z_dim)


def _placement(config: ml_collections.ConfigDict, generate, gen_params,
               units: np.ndarray, scores, ranks: np.ndarray
               ) -> objectness.Placement:
  """Where the kept synthetic masks of the shortlist and of a hand-picked
  index lie (objectness.measure)."""
  cfg = config.score
  synth, sampler = _synth_sampler(config)
  shortlist = [int(i) for i in np.flatnonzero((ranks > 0)
                                              & (ranks <= cfg.top_k))]
  if cfg.index >= 0 and cfg.index not in shortlist:
    shortlist.append(cfg.index)
  logging.info("score: measuring the kept masks of %d shortlisted "
               "candidates (%d pairs each).", len(shortlist),
               cfg.objectness_samples)
  return objectness.measure(
      keys.stage_key(config.seed, "score_objectness"), generate, gen_params,
      units, scores.maps, shortlist, sampler,
      synth_batch.SynthSpec.from_config(synth), cfg.objectness_samples,
      synth.mask_rule == "affine")


def _write_strips(folder: str, config: ml_collections.ConfigDict, generate,
                  gen_params, units: np.ndarray, scores, ranks: np.ndarray,
                  shortlist: list[int], key: jax.Array) -> None:
  """One PNG per shortlisted candidate into `folder` (see module doc)."""
  cfg = config.score
  steps = np.arange(-cfg.strip_steps, cfg.strip_steps + 1, dtype=np.float32)
  shifts = jnp.asarray(steps * latent.shift_length(
      cfg.shift_scale, cfg.shift_units, generate, "config.score.shift_units"))
  z = latent.draw(generate, gen_params, key, (cfg.strip_samples,),
                  units.shape[1])
  center = cfg.strip_steps

  @jax.jit
  def tiles(gen_params, unit, maps):
    images = strips.shift_images(generate, gen_params, z, unit, shifts)
    image, shifted = images[:, center], images[:, center + 1]
    return (images, masks.lighting_mask(image, shifted),
            masks.affine_mask(maps, image, shifted))

  os.makedirs(folder)
  for index in shortlist:
    images, lighting, affine_fg = jax.device_get(
        tiles(gen_params, jnp.asarray(units[index]),
              jnp.asarray(scores.maps[index])))
    grid = np.concatenate([np.asarray(images),
                           strips.mask_tiles(lighting)[:, None],
                           strips.mask_tiles(affine_fg)[:, None]], axis=1)
    name = (f"rank_{ranks[index]:02d}_index_{index:03d}.png" if ranks[index]
            else f"dropped_index_{index:03d}.png")
    strips.write_png(os.path.join(folder, name),
                     strips.grid(strips.readable(grid)))


def score(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Ranks W/directions.npy, writes the ranking, strips and the choice."""
  cfg = config.score
  ranking.check_config(cfg)
  objectness.check_config(cfg)
  spec = score_lib.ScoreSpec.from_config(cfg)
  for field in ("strip_samples", "strip_steps"):
    if cfg[field] <= 0:
      raise errors.UserError(
          f"config.score.{field}: must be positive, got {cfg[field]}")
  directions = _load_candidates(workdir, config.generator.z_dim)
  _check_index(config, len(directions))
  generate, gen_params = load_generator(config, workdir)
  score_key, strip_key = jax.random.split(keys.stage_key(config.seed, "score"))

  logging.info("score: fitting affine maps for %d candidates (%d steps).",
               len(directions), spec.steps)
  scores = score_lib.score_candidates(generate, gen_params, directions,
                                      score_key, spec, config.log.score_chunks,
                                      config.log.progress_every_s)
  ranks = ranking.rank_candidates(scores, cfg.max_one_class, cfg.top_fraction,
                                  cfg.top_k, cfg.order_by)
  if not sharding.is_primary():
    return
  norms = np.linalg.norm(directions, axis=1, keepdims=True)
  units = directions / np.where(norms > 0, norms, 1.0) * scores.sign[:, None]
  placement = _placement(config, generate, gen_params, units, scores, ranks)
  rule = objectness.Rule.from_config(cfg)
  likes = objectness.object_like(placement, rule)
  chosen, how = _choose(config, ranks, likes)
  notes, warning = (), None
  if chosen >= 0:
    logging.info("score: chose %s.", ranking.chosen_description(
        scores, ranks, chosen, how))
    warning = objectness.warning(placement, likes, chosen, rule)
    if warning:
      logging.warning("score: %s.", warning)
    notes = (_pass_rates_note(config, generate, gen_params, units[chosen],
                              scores.maps[chosen]),)
  fileio.write_text(os.path.join(workdir, artifacts.RANKING_CSV), ranking.ranking_csv(
      scores, ranks, cfg.max_one_class, cfg.top_fraction, placement, likes))
  fileio.write_text(os.path.join(workdir, artifacts.RANKING_MD),
                    ranking.ranking_markdown(scores, ranks, cfg, chosen, how,
                                             placement, likes, warning or "",
                                             notes))
  if chosen < 0:
    raise errors.UserError(
        "config.score.index: every candidate was dropped (one class "
        f">= {cfg.max_one_class:.0%} of pixels, see ranking.md); pick one by "
        "hand")
  shortlist = [int(i) for i in np.argsort(np.where(ranks > 0, ranks,
                                                   len(ranks) + 1))
               if 0 < ranks[i] <= cfg.top_k]
  if chosen not in shortlist:
    shortlist.append(chosen)
  with fileio.atomic_path(os.path.join(workdir, "strips")) as folder:
    _write_strips(folder, config, generate, gen_params, units, scores, ranks,
                  shortlist, strip_key)

  fileio.write_npy(os.path.join(workdir, artifacts.BG_AFFINE),
                   scores.maps[chosen].astype(np.float32))
  fileio.write_npy(os.path.join(workdir, artifacts.BG_DIRECTION),
                   units[chosen].astype(np.float32))


def _pass_rates_note(config: ml_collections.ConfigDict, generate, gen_params,
                     unit: np.ndarray, maps: np.ndarray) -> str:
  """The filters' pass rates for the chosen direction, as a ranking.md line.

  Measured under this config's synth settings (`train` measures again under
  its own and refuses to start below config.train.min_kept_fraction), on
  latents from the prior: the encoder's embeddings are not an input of this
  stage (with config.synth.latents='embeddings' the line says so).
  """
  if not config.synth.pass_rate_samples:
    return "Filter pass rates: not measured (config.synth.pass_rate_samples=0)."
  latents = config.synth.latents
  if latents == "embeddings":
    latents = "prior (train uses the embeddings)"
  synth, sampler = _synth_sampler(config)
  affine_maps = maps if synth.mask_rule == "affine" else None
  rates = pass_rates.measure(
      keys.stage_key(config.seed, "score_pass_rates"), generate, gen_params, unit,
      sampler, synth_batch.SynthSpec.from_config(synth),
      synth.pass_rate_samples, affine_maps)
  line = pass_rates.describe(rates)
  logging.info("score: %s", line)
  return (f"Filter pass rates of the chosen direction ({rates.samples} pairs, "
          f"latents {latents}, this config's synth settings): {line}.")
