"""Every config field checked up front, one function per section.

The locked config already checks types; here are ranges, finiteness (a NaN
passes every `<` test, so each rule says "finite"), enum values, the files
the config names, and the batch sizes that must split over the devices.
`check_values` runs before the workdir is read, `check_files` while planning
(only for the stages that will run), `check_devices` once JAX knows the
devices, and all of them before anything is written. Each failure is one
line naming the field: `config.train.learning_rate: must be finite and > 0,
got nan`. The stages keep their own checks (they are also called alone).
"""
import math
import os
from typing import Any, Callable, Iterable, Optional
import urllib.parse

import ml_collections

from gansseg_jax.infra import errors
from gansseg_jax.infra import optional
from gansseg_jax.convert import embed as embed_lib
from gansseg_jax.convert import tfhub_cache
from gansseg_jax.data import folder
from gansseg_jax.data import sources
from gansseg_jax.directions import deformator
from gansseg_jax.directions import discover as discover_lib
from gansseg_jax.directions import objectness
from gansseg_jax.directions import ranking
from gansseg_jax.directions import score as score_lib
from gansseg_jax.directions import stage as directions_lib
from gansseg_jax.eval import baselines
from gansseg_jax.eval import evaluate
from gansseg_jax.eval import stage as eval_stage
from gansseg_jax.eval import wsol
from gansseg_jax.export import saved_model
from gansseg_jax.infra import sharding
from gansseg_jax.models import dcgan
from gansseg_jax.models import generator_api
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import latents
from gansseg_jax.synth import masks
from gansseg_jax.train import real

Rule = Callable[[Any], Optional[str]]  # None when the value passes.

DTYPES = ("float32", "bfloat16")


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive(value) -> Optional[str]:
  if not (_number(value) and math.isfinite(value) and value > 0):
    return "must be finite and > 0"


def non_negative(value) -> Optional[str]:
  if not (_number(value) and math.isfinite(value) and value >= 0):
    return "must be finite and >= 0"


def at_least(low: float) -> Rule:
  def rule(value):
    if not (_number(value) and math.isfinite(value) and value >= low):
      return f"must be finite and >= {low:g}"
  return rule


def integer_at_least(low: int) -> Rule:
  def rule(value):
    if not (isinstance(value, int) and not isinstance(value, bool)
            and value >= low):
      return f"must be an integer >= {low}"
  return rule


def within(low: float, high: float, open_low=False, open_high=False) -> Rule:
  text = (f"{'(' if open_low else '['}{low:g}, {high:g}"
          f"{')' if open_high else ']'}")
  def rule(value):
    ok = (_number(value) and math.isfinite(value)
          and (value > low if open_low else value >= low)
          and (value < high if open_high else value <= high))
    if not ok:
      return f"must be in {text}"
  return rule


def one_of(*choices) -> Rule:
  def rule(value):
    if value not in choices:
      return f"must be one of {', '.join(repr(c) for c in choices)}"
  return rule


def _apply(section: str, values: ml_collections.ConfigDict,
           rules: dict[str, Rule]) -> None:
  for field, rule in rules.items():
    problem = rule(values[field])
    if problem:
      raise errors.UserError(
          f"config.{section}.{field}: {problem}, got {values[field]!r}")


def _fail(field: str, problem: str, value) -> None:
  raise errors.UserError(f"config.{field}: {problem}, got {value!r}")


def _check_top(c) -> None:
  if not (isinstance(c.seed, int) and c.seed >= 0):
    _fail("seed", "must be an integer >= 0", c.seed)
  _apply("distributed", c.distributed, {
      "initialize": one_of("auto", "yes", "no"),
      "num_processes": integer_at_least(0),
      "process_id": integer_at_least(-1),
  })
  _apply("log", c.log, {
      "progress_every_s": positive,
      "score_chunks": integer_at_least(1),
  })


def _check_generator(g) -> None:
  kind = generator_api.resolve(generator_api.kind_name(g))
  generator_api.check_options(kind, generator_api.build_options(g))
  _apply("generator", g, {
      "source": one_of(*kind.sources),
      "truncation": positive,
      "latent_bound": positive,
      "num_classes": integer_at_least(1),
      "resolution": integer_at_least(1),
      "z_dim": integer_at_least(1),
      "ch": integer_at_least(1),
      "shared_dim": integer_at_least(1),
      "attention_resolution": integer_at_least(0),
      "bn_eps": positive,
      "sn_eps": positive,
      "dtype": one_of(*DTYPES),
      "output_activation": one_of(*dcgan.OUTPUTS),
  })


def _check_convert(v) -> None:
  _apply("convert", v, {
      "tolerance": positive,
      "bn_stats": one_of("raw", "divide", "auto"),
      "sn_normalize": one_of("max", "add", "auto"),
      "verify_batch": integer_at_least(1),
      "encoder_bn_eps": positive,
  })


def _check_embed(e) -> None:
  _apply("embed", e, {
      "source": one_of(*embed_lib.SOURCES),
      "output": one_of(*embed_lib.OUTPUTS),
      "batch_size": integer_at_least(1),
      "image_size": integer_at_least(1),
      "parts_every": integer_at_least(1),
  })


def _check_directions(d) -> None:
  _apply("directions", d, {
      "source": one_of(*directions_lib.SOURCES),
      "num_directions": integer_at_least(2),
      "deformator": one_of(*deformator.KINDS),
      "deformator_init_std": non_negative,
      "reconstructor": one_of(*discover_lib.RECONSTRUCTORS),
      "lenet_width": integer_at_least(1),
      "resnet_width": integer_at_least(1),
      "bn_momentum": within(0, 1),
      "bn_eps": positive,
      "steps": integer_at_least(1),
      "batch_size": integer_at_least(1),
      "learning_rate": positive,
      "max_shift": positive,
      "min_shift": non_negative,
      "label_weight": non_negative,
      "shift_weight": non_negative,
      "checkpoint_every": integer_at_least(1),
      "keep_checkpoints": integer_at_least(1),
      "strip_every": integer_at_least(0),
      "strip_shifts": integer_at_least(1),
      "strip_rows": integer_at_least(1),
      "log_every": integer_at_least(1),
  })
  if d.min_shift > d.max_shift:
    _fail("directions.min_shift",
          f"must be <= config.directions.max_shift ({d.max_shift})",
          d.min_shift)
  if d.label_weight == 0 and d.shift_weight == 0:
    _fail("directions.label_weight",
          "and config.directions.shift_weight must not both be 0",
          d.label_weight)


def _check_score(s) -> None:
  _apply("score", s, {
      "shift_scale": positive,
      "learning_rate": positive,
      "batch_size": integer_at_least(1),
      "steps": integer_at_least(1),
      "init_noise": non_negative,
      "heldout_batches": integer_at_least(1),
      "max_one_class": within(0.5, 1, open_low=True),
      "top_fraction": within(0, 1, open_low=True),
      "top_k": integer_at_least(1),
      "order_by": one_of(*ranking.SHORTLIST_ORDERS),
      "index": integer_at_least(-1),
      "orient_rule": one_of(*score_lib.ORIENT_RULES),
      "shift_units": one_of(*generator_api.SHIFT_UNITS),
      "choose": one_of(*objectness.CHOICES),
      "max_border": within(0, 1),
      "min_centre_ratio": non_negative,
      "objectness_samples": integer_at_least(1),
      "orient_tolerance": non_negative,
      "candidate_batch": integer_at_least(0),
      "strip_samples": integer_at_least(1),
      "strip_steps": integer_at_least(1),
  })


def _check_synth(s) -> None:
  _apply("synth", s, {
      "latents": one_of(*latents.LATENT_SOURCES),
      "truncation": non_negative,
      "embedding_noise": non_negative,
      "mask_rule": one_of(*masks.MASK_RULES),
      "shift_radius": positive,
      "oversample": at_least(1),
      "max_starved_batches": integer_at_least(1),
      "starved_fraction": within(0, 1),
      "max_foreground": within(0, 1),
      "pass_rate_samples": integer_at_least(0),
      "min_component_ratio": within(0, 1),
  })
  synth_batch.SynthSpec.from_config(s)  # Histogram bins/window, connectivity.


def _check_export(e) -> None:
  _apply("export", e, {
      "num_pairs": integer_at_least(1),
      "batch_size": integer_at_least(1),
      "max_candidates_factor": at_least(1),
  })
  _inside_workdir("export.output_dir", e.output_dir)


def _check_unet(u) -> None:
  _apply("unet", u, {
      "width": integer_at_least(1),
      "dtype": one_of(*DTYPES),
      "bn_momentum": within(0, 1),
      "bn_eps": positive,
  })


def _check_train(t) -> None:
  _apply("train", t, {
      "steps": integer_at_least(1),
      "batch_size": integer_at_least(1),
      "learning_rate": positive,
      "decay_factor": positive,
      "log_every": integer_at_least(1),
      "eval_every": integer_at_least(1),
      "checkpoint_every": integer_at_least(1),
      "steps_per_call": integer_at_least(1),
      "keep_checkpoints": integer_at_least(1),
      "holdout_size": integer_at_least(1),
      "holdout_seed": integer_at_least(0),
      "shift_augment": within(0, 1, open_high=True),
      "synth_chunks": integer_at_least(0),
      "min_kept_fraction": within(0, 1),
      "max_border": within(0, 1),
  })
  steps = list(t.decay_steps)
  if not all(isinstance(s, int) and s >= 1 for s in steps):
    _fail("train.decay_steps", "must be integers >= 1", tuple(steps))
  if t.synth_chunks and t.batch_size % t.synth_chunks:
    _fail("train.synth_chunks",
          f"must divide config.train.batch_size ({t.batch_size})",
          t.synth_chunks)


def _check_eval(e) -> None:
  _apply("eval", e, {
      "min_side": integer_at_least(1),
      "image_size": integer_at_least(1),
      "max_long_side": integer_at_least(1),
      "pad_multiple": integer_at_least(1),
      "batch_size": integer_at_least(1),
      "beta2": positive,
      "thresholds": integer_at_least(1),
      "mask_threshold": within(0, 1),
      "box_thresholds": integer_at_least(1),
      "box_iou": within(0, 1),
      "box_connectivity": one_of(4, 8),
      "pxap_average": one_of(*wsol.PXAP_AVERAGES),
      "metrics_pixel_budget": integer_at_least(1),
      "max_images": integer_at_least(0),
      "baseline_workers": integer_at_least(0),
      "centre_prior_sigma": positive,
  })
  _apply("eval.wctr", e.wctr, {
      "pixels_per_superpixel": positive,
      "compactness": positive,
      "boundary_width": integer_at_least(1),
      "max_long_side": integer_at_least(0),
      "short_side": integer_at_least(0),
      "sigma_clr": positive,
      "sigma_bndcon": positive,
      "sigma_spa": positive,
      "mu": non_negative,
      "authors_sigma_spa": positive,
      "authors_bg_lambda": non_negative,
      "authors_high_bndcon": non_negative,
      "authors_high_weight": non_negative,
  })
  evaluate.check_config(e)  # max_long_side >= image_size.
  baselines.check_config(e)  # Predictor, baseline and variant names.
  _apply("eval.real", e.real, {
      "steps": integer_at_least(1),
      "batch_size": integer_at_least(1),
      "learning_rate": positive,
      "shift_augment": within(0, 0.5, open_high=True),
      "init": one_of(*real.INITS),
      "pseudo_threshold": within(0, 1, open_low=True, open_high=True),
      "min_foreground": within(0, 1),
      "max_foreground": within(0, 1),
  })
  real.check_config(e.real)  # min_foreground < max_foreground.
  if e.datasets:
    sources.parse_dataset_list(e.datasets, "config.eval.datasets")


def _check_segment(s) -> None:
  _apply("segment", s, {
      "threshold": within(0, 1, open_high=True),
      "connectivity": one_of(4, 8),
      "min_side": integer_at_least(1),
      "backend": one_of(*eval_stage.SEGMENT_BACKENDS),
  })
  _inside_workdir("segment.output_dir", s.output_dir)


def _check_model_export(m) -> None:
  _apply("model_export", m, {
      "onnx_opset": integer_at_least(1),
      "tf_platforms": saved_model.platforms_problem,
      "check_images": integer_at_least(1),
      "tolerance": positive,
  })


def _check_report(r) -> None:
  _apply("report", r, {
      "num_samples": integer_at_least(0),
      "num_predictions": integer_at_least(0),
  })


def _inside_workdir(field: str, name: str) -> None:
  parts = os.path.normpath(name).split(os.sep)
  if not name or os.path.isabs(name) or parts[0] in (".", ".."):
    _fail(field, "must be a folder name inside the workdir", name)


SECTIONS = (
    ("generator", _check_generator), ("convert", _check_convert),
    ("embed", _check_embed), ("directions", _check_directions),
    ("score", _check_score), ("synth", _check_synth),
    ("export", _check_export), ("unet", _check_unet), ("train", _check_train),
    ("model_export", _check_model_export), ("eval", _check_eval),
    ("segment", _check_segment),
    ("report", _check_report),
)


def check_values(config: ml_collections.ConfigDict) -> None:
  """Ranges, finiteness and choices of every field; reads no file."""
  _check_top(config)
  for name, check in SECTIONS:
    check(config[name])


def _must_be_file(field: str, path: str, what: str) -> None:
  if not path or not os.path.isfile(path):
    _fail(field, f"must be an existing file ({what})", path)


def _check_generator_file(g: ml_collections.ConfigDict) -> None:
  """The file (or folder) the kind's source reads exists, and its reader's
  optional module imports: an error names the field the source reads."""
  kind = generator_api.resolve(generator_api.kind_name(g))
  needed = kind.files.get(g.source)
  if needed is None:
    return
  field, path = f"generator.{needed.field}", g[needed.field]
  if needed.folder:
    if not path or not os.path.exists(path):
      _fail(field, f"must be an existing file or folder ({needed.what})", path)
  else:
    _must_be_file(field, path, needed.what)
  if needed.module:
    optional.load(needed.module, f"config.{field}: reading {path}",
                  needed.install)


def _check_tfhub_handle(handle: str) -> None:
  """A local module exists; a URL is in the TF-Hub cache or can be fetched."""
  if not handle:
    _fail("generator.handle", "must not be empty", handle)
  if "://" not in handle:
    if not os.path.exists(handle):
      _fail("generator.handle", "must be a TF-Hub URL or an existing module "
            "folder or .tar.gz", handle)
    return
  if urllib.parse.urlparse(handle).scheme not in ("http", "https"):
    _fail("generator.handle", "must be an http(s) URL or a local path", handle)
  problem = tfhub_cache.unavailable(handle)
  if problem:
    raise errors.UserError(f"config.generator.handle: {handle} is not in the "
                           f"TF-Hub cache and cannot be downloaded ({problem});"
                           " download it where there is a network and set "
                           "TFHUB_CACHE_DIR, or give a local module folder")


def check_files(config: ml_collections.ConfigDict,
                running: Iterable[str]) -> None:
  """The files and folders the config names, for the stages that will run."""
  running = set(running)
  g = config.generator
  uses_hub = ("convert" in running and g.source == "tfhub") or (
      "embed" in running and config.embed.source == "tfhub")
  if uses_hub:
    _check_tfhub_handle(g.handle)
  if "convert" in running:
    _check_generator_file(g)
  if "embed" in running and config.embed.source == "file":
    _must_be_file("embed.file", config.embed.file, "a .npy of latents")
  if "discover" in running and config.directions.source == "file":
    _must_be_file("directions.file", config.directions.file,
                  "bg_direction .pth or .npy")
  if "segment" in running:
    _check_image_folder("segment.input_dir", config.segment.input_dir)
  if "eval" in running:  # Also refuses an empty list.
    for entry in sources.parse_dataset_list(config.eval.datasets,
                                            "config.eval.datasets"):
      if entry.startswith(sources.FOLDER_PREFIX):
        for directory in sources.folder_dirs(entry, "config.eval.datasets"):
          _check_image_folder("eval.datasets", directory)
  if "eval" in running or "segment" in running:
    real.check_disjoint(config.eval)  # Training photos are never scored.


def _check_image_folder(field: str, path: str) -> None:
  if not path or not os.path.isdir(path):
    _fail(field, "must be an existing folder of images", path)
  if not folder.list_image_files(path):
    _fail(field, "holds no image files (any format Pillow reads)", path)


def check_devices(config: ml_collections.ConfigDict, running: Iterable[str],
                  num_devices: int) -> None:
  """Batches split over every device, for the stages that will run."""
  running = set(running)
  if "train" in running:
    sharding.synth_chunks(config.train, num_devices)
  if "discover" in running and config.directions.source == "discover":
    sharding.per_device_batch(config.directions.batch_size, num_devices,
                              "config.directions.batch_size")
