"""Every config field checked up front, before anything is written.

Each stage package checks its own config sections (its config_checks.py,
with the rules of infra/config_rules.py); here they run together with the
top-level fields. The locked config already checks types; these are ranges,
finiteness (a NaN passes every `<` test, so each rule says "finite"), enum
values, the files the config names, and the batch sizes that must split
over the devices. `check_values` runs before the workdir is read,
`check_files` while planning (only for the stages that will run),
`check_devices` once JAX knows the devices. Each failure is one line naming
the field: `config.train.learning_rate: must be finite and > 0, got nan`.
The stages keep their own checks (they are also called alone).
"""
import os
from typing import Iterable
import urllib.parse

import ml_collections

from gansseg_jax.convert import config_checks as convert_checks
from gansseg_jax.convert import tfhub_cache
from gansseg_jax.data import folder
from gansseg_jax.data import sources
from gansseg_jax.directions import config_checks as directions_checks
from gansseg_jax.embed import config_checks as embed_checks
from gansseg_jax.eval import config_checks as eval_checks
from gansseg_jax.export import config_checks as export_checks
from gansseg_jax.infra import config_rules as rules
from gansseg_jax.infra import errors
from gansseg_jax.infra import sharding
from gansseg_jax.generator_interface import kinds
from gansseg_jax.report import config_checks as report_checks
from gansseg_jax.synth import config_checks as synth_checks
from gansseg_jax.train import config_checks as train_checks
from gansseg_jax.train import real

# (config section, its check), each declared by the stage package it shapes.
SECTIONS = (convert_checks.SECTIONS + embed_checks.SECTIONS
            + directions_checks.SECTIONS
            + synth_checks.SECTIONS + train_checks.SECTIONS
            + export_checks.SECTIONS + eval_checks.SECTIONS
            + report_checks.SECTIONS)


def _check_top(c) -> None:
  if not (isinstance(c.seed, int) and c.seed >= 0):
    rules.fail("seed", "must be an integer >= 0", c.seed)
  rules.apply("distributed", c.distributed, {
      "initialize": rules.one_of("auto", "yes", "no"),
      "num_processes": rules.integer_at_least(0),
      "process_id": rules.integer_at_least(-1),
  })
  rules.apply("log", c.log, {
      "progress_every_s": rules.positive,
      "score_chunks": rules.integer_at_least(1),
  })


def check_values(config: ml_collections.ConfigDict) -> None:
  """Ranges, finiteness and choices of every field; reads no file."""
  _check_top(config)
  for name, check in SECTIONS:
    check(config[name])


def _must_be_file(field: str, path: str, what: str) -> None:
  if not path or not os.path.isfile(path):
    rules.fail(field, f"must be an existing file ({what})", path)


def _check_tfhub_handle(field: str, handle: str) -> None:
  """A local module exists; a URL is in the TF-Hub cache or can be fetched."""
  if not handle:
    rules.fail(field, "must not be empty", handle)
  if "://" not in handle:
    if not os.path.exists(handle):
      rules.fail(field, "must be a TF-Hub URL or an existing module folder "
                 "or .tar.gz", handle)
    return
  if urllib.parse.urlparse(handle).scheme not in ("http", "https"):
    rules.fail(field, "must be an http(s) URL or a local path", handle)
  problem = tfhub_cache.unavailable(handle)
  if problem:
    raise errors.UserError(f"config.{field}: {handle} is not in the "
                           f"TF-Hub cache and cannot be downloaded ({problem});"
                           " download it where there is a network and set "
                           "TFHUB_CACHE_DIR, or give a local module folder")


def check_files(config: ml_collections.ConfigDict,
                running: Iterable[str]) -> None:
  """The files and folders the config names, for the stages that will run."""
  running = set(running)
  g = config.generator
  hub_fields = set()  # config.generator fields naming a TF-Hub module.
  if "convert" in running:
    # What the kind's source reads: a file or folder that exists (its
    # reader's optional module importable), or a TF-Hub module.
    source = kinds.resolve(kinds.kind_name(g)).source(g.source)
    source.check(g)
    if source.reads == kinds.TFHUB_MODULE:
      hub_fields.add(source.field)
  if "embed" in running and config.embed.source == "tfhub":
    hub_fields.add("handle")
  for field in sorted(hub_fields):
    _check_tfhub_handle(f"generator.{field}", g[field])
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
    rules.fail(field, "must be an existing folder of images", path)
  if not folder.list_image_files(path):
    rules.fail(field, "holds no image files (any format Pillow reads)", path)


def check_devices(config: ml_collections.ConfigDict, running: Iterable[str],
                  num_devices: int) -> None:
  """Batches split over every device, for the stages that will run."""
  running = set(running)
  if "train" in running:
    sharding.synth_chunks(config.train, num_devices)
  if "discover" in running and config.directions.source == "discover":
    sharding.per_device_batch(config.directions.batch_size, num_devices,
                              "config.directions.batch_size")
