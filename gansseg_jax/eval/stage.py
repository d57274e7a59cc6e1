"""The `eval` and `segment` stages (docs/method.md sections 7-9).

eval (`evaluate`): every dataset of config.eval.datasets with the predictor
config.eval.predictor ('unet' or a baseline) and each of config.eval.baselines
on the same images (gansseg_jax.eval.layout names the files):
  inputs:  W/unet/ when a U-Net is evaluated (read by
           gansseg_jax.train.load.load_predictor), and the datasets (read only)
  outputs: W/eval/<dataset>/<predictor>.json  images, maxF (+ threshold), IoU,
                        acc, MAE, F_cut, PxAP, MaxBoxAcc (+ threshold) where
                        boxes exist, skipped-file counts, timing, and the
                        settings (and U-Net) that made them
           W/eval/<dataset>/<predictor>_samples.npz  the first
                        config.report.num_predictions images, masks and maps
           W/eval.json, W/eval.md  every current result (all datasets
                        evaluated so far in this workdir), tables with the
                        paper's numbers beside ours
  A result whose file exists for the same settings and U-Net is kept, not
  recomputed (unless config.force); other results are never removed.
segment (`segment`):
  inputs:  W/unet/ (for 'unet'; W/export/unet.onnx instead, run by
           onnxruntime, with config.segment.backend='onnx'), and the files
           and folders listed in config.segment.input_dir (read only)
  outputs: W/<config.segment.output_dir>/ with <base>_prob.png,
           <base>_mask.png, <base>_cutout.png, <base>.json per image and
           summary.json (see gansseg_jax.eval.segment)
Every output appears atomically; only process 0 writes, all processes
compute (the predictor may be sharded over all of them).
"""
import collections
import functools
import glob
import json
import os

from absl import logging
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import workdir as wd
from gansseg_jax.data import sources
from gansseg_jax.eval import baselines
from gansseg_jax.eval import evaluate as evaluate_lib
from gansseg_jax.eval import layout
from gansseg_jax.eval import segment as segment_lib
from gansseg_jax.eval import tables

# config.eval fields that choose what is evaluated or where data lives, not
# how: left out of a result's settings (and of the stage's config hash).
SELECTIONS = ("datasets", "predictor", "baselines", "data_dir", "manual_dir",
              "allow_download", "baseline_workers")
# What runs the U-Net for segment: JAX (W/unet) or onnxruntime (W/export).
SEGMENT_BACKENDS = ("jax", "onnx")
SEAL = wd.SEAL  # A result record's field: the SHA-256 of the rest of it.
# config.eval fields that belong to one baseline only.
BASELINE_FIELDS = {"centre_prior": ("centre_prior_sigma",), "wctr": ("wctr",),
                   "selftrain": ("real",), "supervised": ("real",)}


def _load_predictor(config: ml_collections.ConfigDict, workdir: str):
  """predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W] from W/unet/."""
  # Imported here: the model stack is only needed once the inputs are checked.
  from gansseg_jax.train import load  # pylint: disable=g-import-not-at-top
  return load.load_predictor(config, workdir)


def _predictor(config: ml_collections.ConfigDict, workdir: str, name: str,
               entry: str = ""):
  """The U-Net's batch function, that of a U-Net trained on real photos
  (scored on dataset `entry`), or the baseline `name`."""
  if name == baselines.UNET:
    return _load_predictor(config, workdir)
  if name in baselines.REAL_TRAINED:
    from gansseg_jax.train import real  # pylint: disable=g-import-not-at-top
    return real.make_predictor(name, config, workdir, entry)
  return baselines.make(name, config.eval)


def _predictor_key(config: ml_collections.ConfigDict, name: str,
                   entry: str) -> tuple[str, str]:
  """Evaluations with one key share one loaded (or trained) predictor."""
  if name in baselines.REAL_TRAINED:
    from gansseg_jax.train import real  # pylint: disable=g-import-not-at-top
    return name, real.cache_key(name, config.eval.real.dataset, entry)
  return name, ""


def result_settings(eval_config: ml_collections.ConfigDict,
                    name: str) -> dict:
  """What shapes the result of predictor `name`: the shared eval settings
  and that predictor's own fields."""
  everything = eval_config.to_dict()
  own = BASELINE_FIELDS.get(name, ())
  private = {f for fields in BASELINE_FIELDS.values() for f in fields}
  return {k: v for k, v in everything.items()
          if k not in SELECTIONS and (k not in private or k in own)}


def _unet_identity(workdir: str):
  """The config hash of the train stage that made W/unet (None: unknown)."""
  marker = wd.read_marker(workdir, "train")
  return None if marker is None else marker.get("config_hash")


# Predictors whose results depend on W/unet (selftrain starts from it;
# supervised shares its architecture, config.unet).
_FROM_UNET = (baselines.UNET,) + baselines.REAL_TRAINED


def _is_current(record: dict, eval_config, unet_identity,
                files_of=layout.dataset_files) -> bool:
  """Made with these settings, this U-Net and the dataset's present files,
  and sealed (written by this version of the stage)."""
  name = record.get("predictor")
  return (SEAL in record
          and record.get("settings") == result_settings(eval_config, name)
          and (name not in _FROM_UNET
               or record.get("unet") == unet_identity)
          and record.get("dataset_files") == files_of(
              str(record.get("dataset"))))


def _read_record(path: str):
  """The result record at `path`; None when absent. An unreadable one, or
  one whose seal does not match its content (edited), is a UserError; an
  unsealed one (older) is returned and is never current."""
  fix = "delete it to compute it again"
  try:
    record = json.loads(fileio.read_text(path))
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as e:
    raise errors.UserError(f"{path}: unreadable ({fileio.why(e)}); {fix}")
  if not isinstance(record, dict):
    raise errors.UserError(f"{path}: not an eval result (a JSON "
                           f"{type(record).__name__}); {fix}")
  if SEAL in record and record[SEAL] != wd.seal_of(record):
    raise errors.UserError(f"{path}: changed since the eval stage wrote it "
                           f"(its {SEAL} does not match); {fix}")
  return record


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Evaluates the predictor and baselines on every configured dataset."""
  evaluate_lib.check_config(config.eval)
  baselines.check_config(config.eval)
  entries = sources.available_datasets(config.eval)
  if jax.process_index() == 0:
    for entry in entries:
      _move_legacy_results(workdir, entry)
  names = layout.predictors(config.eval)
  identity = _unet_identity(workdir)
  jobs = []
  for entry in entries:
    for name in names:
      path = os.path.join(workdir, layout.result_path(entry, name))
      record = _read_record(path) if os.path.exists(path) else None
      if (record is not None and not config.force
          and _is_current(record, config.eval, identity)):
        logging.info("eval %s, %s: result exists for these settings (%s), "
                     "kept", entry, name, path)
      else:
        jobs.append((entry, name))
  opened = {entry: None for entry, _ in jobs}
  for entry in opened:  # Every dataset checked before any long run.
    opened[entry] = sources.open_source(entry, config.eval)
  loaded = {}
  # A baseline's maps, kept from one dataset to the next that reads the same
  # images (targets of one folder), and dropped after the last of them.
  memo_key = lambda entry, name: (name, sources.images_entry(entry))
  memo_uses = collections.Counter(
      memo_key(entry, name) for entry, name in jobs if name in baselines.NAMES)
  memos = {key: {} for key, uses in memo_uses.items() if uses > 1}
  for entry, name in jobs:
    source = opened.pop(entry, None) or sources.open_source(entry,
                                                           config.eval)
    key = _predictor_key(config, name, entry)
    if key not in loaded:
      loaded[key] = _predictor(config, workdir, name, entry)
    samples = evaluate_lib.Samples(config.report.num_predictions)
    shared = memo_key(entry, name)
    result = evaluate_lib.evaluate_source(
        loaded[key], source, config.eval, config.log.progress_every_s,
        samples, memos.get(shared))
    if shared in memos:
      memo_uses[shared] -= 1
      if memo_uses[shared] == 0:
        del memos[shared]
    logging.info("eval %s, %s: %d images, maxF %.4f, IoU %.4f, acc %.4f, "
                 "%.1f images/s", source.title, tables.title(name),
                 result["images"], result["maxF"], result["IoU"],
                 result["acc"], result["images_per_s"])
    if jax.process_index() == 0:
      _write_result(workdir, entry, name, source.title, result, samples,
                    config.eval, identity)
  if jax.process_index() == 0:
    write_summary(config, workdir)


def _move_legacy_results(workdir: str, entry: str) -> None:
  """Moves W/eval/<legacy name> of `entry` to its current name, with the
  samples paths its records hold (results are kept, not recomputed)."""
  old = os.path.join(workdir, layout.legacy_dataset_dir(entry))
  new = os.path.join(workdir, layout.dataset_dir(entry))
  if old == new or not os.path.isdir(old) or os.path.exists(new):
    return
  os.replace(old, new)
  for path in glob.glob(os.path.join(new, "*.json")):
    record = _read_record(path)
    if isinstance(record, dict) and "predictor" in record:
      record["samples"] = layout.samples_path(entry, record["predictor"])
      wd.write_sealed(path, record)
  logging.info("eval %s: results moved from %s to %s", entry, old, new)


def _write_result(workdir, entry, name, title, result, samples, eval_config,
                  identity) -> None:
  """W/eval/<dataset>/<predictor>.json and _samples.npz (atomic each)."""
  arrays = {"title": np.array(title)}
  for j, (image, mask, probs) in enumerate(samples.items):
    arrays[f"image_{j}"] = image
    arrays[f"mask_{j}"] = mask
    arrays[f"prob_{j}"] = np.round(255 * probs).astype(np.uint8)
  npz = os.path.join(workdir, layout.samples_path(entry, name))
  os.makedirs(os.path.dirname(npz), exist_ok=True)
  with fileio.atomic_path(npz) as tmp:
    with open(tmp, "wb") as f:
      np.savez_compressed(f, **arrays)
  wd.write_sealed(os.path.join(workdir, layout.result_path(entry, name)), {
      "dataset": entry, "predictor": name, "result": result,
      "settings": result_settings(eval_config, name),
      "unet": identity if name in _FROM_UNET else None,
      "dataset_files": layout.dataset_files(entry),
      "samples": layout.samples_path(entry, name)})


def write_summary(config: ml_collections.ConfigDict, workdir: str) -> None:
  """W/eval.json and W/eval.md from every current result file under W/eval/.

  The configured datasets come first, in their order; then the others
  evaluated earlier in this workdir.
  """
  identity = _unet_identity(workdir)
  files_of = functools.cache(layout.dataset_files)
  rows, samples, hidden = {}, {}, 0
  pattern = os.path.join(workdir, layout.EVAL_DIR, "*", "*.json")
  for path in sorted(glob.glob(pattern)):
    record = _read_record(path)
    if not isinstance(record, dict) or "result" not in record:
      continue
    if (os.path.dirname(os.path.relpath(path, workdir))
        != layout.dataset_dir(str(record.get("dataset")))):
      continue  # A copy left under a legacy folder name.
    if not _is_current(record, config.eval, identity, files_of):
      hidden += 1
      continue
    rows.setdefault(record["dataset"], {})[record["predictor"]] = (
        record["result"])
    samples.setdefault(record["dataset"], {})[record["predictor"]] = (
        record["samples"])
  listed = layout.dataset_keys(config.eval)
  order = [k for k in listed if k in rows] + sorted(
      (k for k in rows if k not in listed),
      key=lambda k: next(iter(rows[k].values()))["title"])
  document, markdown = tables.build({k: rows[k] for k in order},
                                    config.eval.predictor,
                                    config.synth.latents,
                                    config.eval.to_dict(), hidden)
  for key, entry in document["datasets"].items():
    entry["samples"] = samples[key][entry["predictor"]]
  fileio.write_json(os.path.join(workdir, "eval.json"), document)
  fileio.write_text(os.path.join(workdir, "eval.md"), markdown)


def _check_segment_config(config: ml_collections.ConfigDict) -> None:
  """Validates config.segment (the inputs are checked when listed)."""
  seg = config.segment
  out = os.path.normpath(seg.output_dir)
  if (not seg.output_dir or os.path.isabs(seg.output_dir) or out == "."
      or out.split(os.sep)[0] == ".."):
    raise errors.UserError(
        f"config.segment.output_dir: {seg.output_dir!r} must be a folder "
        "name inside the workdir")
  if seg.connectivity not in (4, 8):
    raise errors.UserError(f"config.segment.connectivity: must be 4 or 8, "
                           f"not {seg.connectivity}")
  if not 0.0 <= float(seg.threshold) < 1.0:
    raise errors.UserError(f"config.segment.threshold: must be in [0, 1), "
                           f"not {seg.threshold}")
  if int(seg.min_side) < 1:
    raise errors.UserError(f"config.segment.min_side: must be >= 1, "
                           f"not {seg.min_side}")
  if seg.backend not in SEGMENT_BACKENDS:
    raise errors.UserError(f"config.segment.backend: {seg.backend!r} is not "
                           f"one of {', '.join(SEGMENT_BACKENDS)}")
  if seg.backend != "jax" and config.eval.predictor != baselines.UNET:
    raise errors.UserError(
        f"config.segment.backend: {seg.backend!r} runs the U-Net; "
        f"config.eval.predictor is {config.eval.predictor!r} (use 'jax')")


def _segment_predictor(config: ml_collections.ConfigDict, workdir: str):
  """The predictor of config.eval.predictor, the U-Net run by
  config.segment.backend."""
  if config.segment.backend == "onnx":
    # Imported here, as the U-Net: only once the inputs are checked.
    from gansseg_jax.export import load  # pylint: disable=g-import-not-at-top
    return load.load_onnx_predictor(workdir)
  return _predictor(config, workdir, config.eval.predictor)


def segment(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Masks, cut-outs and boxes for every image of config.segment.input_dir."""
  evaluate_lib.check_config(config.eval)
  baselines.check_config(config.eval)
  _check_segment_config(config)
  inputs = config.segment.input_dir
  segment_lib.collect_inputs(inputs, bool(config.segment.recursive))
  predict = _segment_predictor(config, workdir)
  out = os.path.join(workdir, config.segment.output_dir)
  if jax.process_index() != 0:
    segment_lib.segment_folder(predict, inputs, None, config)
    return
  with fileio.atomic_path(out) as tmp:
    os.makedirs(tmp)
    segment_lib.segment_folder(predict, inputs, tmp, config, shown_dir=out)
