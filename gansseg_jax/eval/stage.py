"""The `eval` and `segment` stages (docs/method.md sections 7-9).

eval (`evaluate`):
  inputs:  W/unet/ (read by gansseg_jax.train.load.load_predictor), and the
           datasets of config.eval.datasets (outside W, read only)
  outputs: W/eval_samples/<i>.npz  the first config.report.num_predictions
                        images, masks and probability maps of dataset i
           W/eval.json  per dataset: images, maxF (+ threshold), IoU, acc,
                        MAE, F_cut, PxAP, MaxBoxAcc (+ threshold) where boxes
                        exist, skipped-file counts, timing, the paper's numbers
           W/eval.md    the same as tables in the paper's layout
segment (`segment`):
  inputs:  W/unet/, and the images in config.segment.input_dir (read only)
  outputs: W/<config.segment.output_dir>/ with <base>_prob.png,
           <base>_mask.png, <base>_cutout.png, <base>.json per image and
           summary.json (see gansseg_jax.eval.segment)
Every output appears atomically; only process 0 writes, all processes
compute (the predictor may be sharded over all of them).
"""
import os

from absl import logging
import jax
import ml_collections
import numpy as np

from gansseg_jax import errors
from gansseg_jax import fileio
from gansseg_jax.data import sources
from gansseg_jax.eval import evaluate as evaluate_lib
from gansseg_jax.eval import segment as segment_lib
from gansseg_jax.eval import tables

# First config.report.num_predictions predictions per dataset, for the report.
SAMPLES_DIR = "eval_samples"


def _load_predictor(config: ml_collections.ConfigDict, workdir: str):
  """predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W] from W/unet/."""
  # Imported here: the model stack is only needed once the inputs are checked.
  from gansseg_jax.train import load  # pylint: disable=g-import-not-at-top
  return load.load_predictor(config, workdir)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Evaluates the trained U-Net on every dataset of config.eval.datasets."""
  evaluate_lib.check_config(config.eval)
  entries = sources.available_datasets(config.eval)
  opened = [sources.open_source(entry, config.eval) for entry in entries]
  predict = _load_predictor(config, workdir)
  results = {}
  samples = {}
  for source in opened:
    samples[source.key] = evaluate_lib.Samples(config.report.num_predictions)
    results[source.key] = evaluate_lib.evaluate_source(
        predict, source, config.eval, config.log.progress_every_s,
        samples[source.key])
    r = results[source.key]
    logging.info("eval %s: %d images, maxF %.4f, IoU %.4f, acc %.4f, "
                 "%.1f images/s", source.title, r["images"], r["maxF"],
                 r["IoU"], r["acc"], r["images_per_s"])
  document, markdown = tables.build(results, config.synth.latents,
                                    config.eval.to_dict())
  if jax.process_index() == 0:
    _write_samples(os.path.join(workdir, SAMPLES_DIR), opened, samples)
    fileio.write_json(os.path.join(workdir, "eval.json"), document)
    fileio.write_text(os.path.join(workdir, "eval.md"), markdown)


def _write_samples(path: str, opened, samples) -> None:
  """W/eval_samples/<i>.npz per dataset: `title`, and `image_<j>` (uint8 RGB),
  `mask_<j>` (bool) and `prob_<j>` (uint8, 255 = 1) of its first predictions."""
  with fileio.atomic_path(path) as tmp:
    os.makedirs(tmp)
    for i, source in enumerate(opened):
      arrays = {"title": np.array(source.title)}
      for j, (image, mask, probs) in enumerate(samples[source.key].items):
        arrays[f"image_{j}"] = image
        arrays[f"mask_{j}"] = mask
        arrays[f"prob_{j}"] = np.round(255 * probs).astype(np.uint8)
      np.savez_compressed(os.path.join(tmp, f"{i:02d}.npz"), **arrays)


def _check_segment_config(config: ml_collections.ConfigDict) -> str:
  """Validates config.segment; returns the input folder."""
  seg = config.segment
  if not seg.input_dir:
    raise errors.UserError(
        "config.segment.input_dir: empty; set it to a folder of images")
  if not os.path.isdir(seg.input_dir):
    raise errors.UserError(
        f"config.segment.input_dir: {seg.input_dir!r} is not a folder")
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
  return seg.input_dir


def segment(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Masks, cut-outs and boxes for every image of config.segment.input_dir."""
  evaluate_lib.check_config(config.eval)
  input_dir = _check_segment_config(config)
  predict = _load_predictor(config, workdir)
  out = os.path.join(workdir, config.segment.output_dir)
  if jax.process_index() != 0:
    segment_lib.segment_folder(predict, input_dir, None, config)
    return
  with fileio.atomic_path(out) as tmp:
    os.makedirs(tmp)
    segment_lib.segment_folder(predict, input_dir, tmp, config)
