"""Segmenting the user's images with the trained model or a baseline.

config.segment.input_dir lists image files and/or folders, comma-separated;
a folder contributes every file in it with an extension Pillow reads (and,
with config.segment.recursive, those of its sub-folders; outputs then mirror
the tree). Each image is decoded (any size; EXIF orientation applied;
grayscale, palette, 16-bit, CMYK and images with alpha converted to RGB,
transparency over white), segmented by the predictor (the U-Net sees it
resized so its shorter side is config.eval.image_size; a baseline sees it
at its own size), and the probability map resized back to the image's size.
For an image `<base>` (its path below the listed folder without extension,
or `<stem>_<ext>` when two files share a stem, or with `_2`, `_3`... when two
inputs give the same name) the output folder gets
  <base>_prob.png    probability map, 8-bit gray (0..255 = P(foreground))
  <base>_mask.png    binary mask, P > config.segment.threshold (0 or 255)
  <base>_cutout.png  RGBA: the image with the mask as alpha
  <base>.json        size, foreground fraction and the tight box of the
                     mask's largest connected component
and summary.json lists every image with its outputs, and every file
skipped and why; one log line per image says where its outputs went.
Undecodable files are skipped with one warning each, images below
config.segment.min_side pixels on a side are rejected with a message; both
are counted. Inputs with no image that could be segmented are an error.
"""
import collections
import os
from typing import Any, Iterator, Optional

from absl import logging
import ml_collections
import numpy as np
from PIL import Image

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import monitoring
from gansseg_jax.data import folder
from gansseg_jax.data import images as images_lib
from gansseg_jax.data import preprocess
from gansseg_jax.eval import inference
from gansseg_jax.eval import wsol


def output_bases(names: list[str]) -> dict[str, str]:
  """Relative path -> output base: the path without extension, or
  path_ext where two share a stem."""
  stems = collections.Counter(os.path.splitext(n)[0] for n in names)
  bases = {}
  for name in names:
    stem, ext = os.path.splitext(name)
    bases[name] = stem if stems[stem] == 1 else f"{stem}_{ext.lstrip('.')}"
  return bases


def _folder_images(directory: str, recursive: bool) -> tuple[list[str], int]:
  """(image paths relative to `directory`, count of other files)."""
  names = [n for n in folder.list_image_files(directory)]
  ignored = len([n for n in os.listdir(directory)
                 if os.path.isfile(os.path.join(directory, n))]) - len(names)
  if recursive:
    subdirs = sorted((d for d in os.listdir(directory)
                      if not d.startswith(".")
                      and os.path.isdir(os.path.join(directory, d))),
                     key=folder.natural_key)
    for sub in subdirs:
      inner, other = _folder_images(os.path.join(directory, sub), True)
      names += [os.path.join(sub, n) for n in inner]
      ignored += other
  return names, ignored


def collect_inputs(spec: str, recursive: bool) -> tuple[list[tuple[str, str]],
                                                        int]:
  """([(path, output base)], ignored non-image files) of config.segment.input_dir.

  Raises UserError naming an entry that does not exist, or when no image
  file is found at all.
  """
  entries = [e.strip() for e in str(spec).split(",") if e.strip()]
  if not entries:
    raise errors.UserError("config.segment.input_dir: empty; set it to image "
                           "files and/or folders (comma-separated)")
  found, ignored, taken = [], 0, collections.Counter()
  for entry in entries:
    if os.path.isdir(entry):
      names, other = _folder_images(entry, recursive)
      ignored += other
      pairs = [(os.path.join(entry, n), base)
               for n, base in output_bases(names).items()]
    elif os.path.isfile(entry):
      pairs = [(entry, os.path.splitext(os.path.basename(entry))[0])]
    else:
      raise errors.UserError(f"config.segment.input_dir: {entry!r} is neither "
                             "a file nor a folder")
    for path, base in pairs:
      taken[base] += 1
      found.append((path, base if taken[base] == 1
                    else f"{base}_{taken[base]}"))
  if not found:
    raise errors.UserError(
        f"config.segment.input_dir: no image files in {spec!r} "
        f"({ignored} other files)")
  return found, ignored


def image_record(name: str, probs: np.ndarray, threshold: float,
                 structure: np.ndarray) -> dict[str, Any]:
  """Size, foreground fraction and largest-component box of one image.

  The box is [x0, y0, x1, y1] in pixel edges (x1, y1 exclusive: Pillow's crop
  box), or None when the mask is empty.
  """
  mask = probs > threshold
  box = wsol.largest_component_box(mask, structure)
  return {
      "image": name,
      "width": int(probs.shape[1]),
      "height": int(probs.shape[0]),
      "foreground_fraction": float(mask.mean()),
      "threshold": float(threshold),
      "box_xyxy": None if box is None else [int(box[1]), int(box[0]),
                                            int(box[3]), int(box[2])],
  }


def _write_png(path: str, array: np.ndarray) -> None:
  Image.fromarray(array).save(path, format="PNG")


def write_outputs(out_dir: str, base: str, image: np.ndarray,
                  probs: np.ndarray, record: dict[str, Any],
                  threshold: float) -> None:
  """The four files of one image (the folder itself is made atomically)."""
  mask = probs > threshold
  _write_png(os.path.join(out_dir, base + "_prob.png"),
             np.round(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8))
  _write_png(os.path.join(out_dir, base + "_mask.png"),
             mask.astype(np.uint8) * 255)
  _write_png(os.path.join(out_dir, base + "_cutout.png"),
             np.dstack([image, mask.astype(np.uint8) * 255]))
  fileio.write_json(os.path.join(out_dir, base + ".json"), record)


def _readable_image(path: str, min_side: int,
                    summary: dict[str, Any]) -> Optional[np.ndarray]:
  """The RGB image, or None (warned and recorded) if unreadable or too small."""
  try:
    image = images_lib.read_rgb(path, exif_transpose=True)
  except images_lib.UnreadableImageError as e:
    logging.warning("skipped: %s", e)
    summary["unreadable"].append(str(e))
    return None
  if images_lib.too_small(image.shape, min_side):
    message = (f"{path}: {image.shape[1]}x{image.shape[0]} px is below "
               f"{min_side} px on a side (config.segment.min_side)")
    logging.warning("rejected: %s", message)
    summary["too_small"].append(message)
    return None
  return image


def probability_maps(predict: inference.Predictor,
                     inputs: list[tuple[str, str]],
                     config: ml_collections.ConfigDict,
                     summary: dict[str, Any]
                     ) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
  """(path, base, image, probabilities [H, W] at the image's size) of each
  image of `inputs` (collect_inputs) that can be segmented, as batches come
  back; the others are recorded in summary['unreadable'] / ['too_small'].

  Images are decoded again when their batch returns, so that only the small
  model inputs wait in the batch queues, whatever the photos' sizes.
  """
  engine = inference.make_engine(predict, config.eval)

  def at_image_size(results):
    for (path, base), probs in results:
      image = images_lib.read_rgb(path, exif_transpose=True)
      yield path, base, image, preprocess.resize_map(probs, image.shape[:2])

  for path, base in inputs:
    image = _readable_image(path, config.segment.min_side, summary)
    yield from at_image_size(
        [] if image is None else engine.submit((path, base), image))
  yield from at_image_size(engine.flush())


def segment_folder(predict: inference.Predictor, input_spec: str,
                   out_dir: Optional[str], config: ml_collections.ConfigDict,
                   shown_dir: Optional[str] = None) -> dict[str, Any]:
  """Segments every image of `input_spec` into `out_dir`; returns the summary.

  With `out_dir` None nothing is written (processes other than 0).
  `shown_dir` is the folder named in the log (out_dir's final name).
  """
  seg = config.segment
  inputs, ignored = collect_inputs(input_spec, bool(seg.recursive))
  shown_dir = shown_dir or out_dir
  structure = wsol.connectivity_structure(seg.connectivity)
  summary = {"inputs": input_spec, "recursive": bool(seg.recursive),
             "images": [], "unreadable": [], "too_small": []}
  progress = monitoring.Progress(len(inputs), "segment",
                                 every_s=config.log.progress_every_s)
  for path, base, image, probs in probability_maps(predict, inputs, config,
                                                   summary):
    record = image_record(path, probs, seg.threshold, structure)
    record["outputs"] = {kind: base + suffix for kind, suffix in (
        ("probability", "_prob.png"), ("mask", "_mask.png"),
        ("cutout", "_cutout.png"), ("record", ".json"))}
    if out_dir is not None:
      os.makedirs(os.path.dirname(os.path.join(out_dir, base)),
                  exist_ok=True)
      write_outputs(out_dir, base, image, probs, record, seg.threshold)
      logging.info("segment: %s -> %s_{prob,mask,cutout}.png, %s.json",
                   path, os.path.join(shown_dir, base),
                   os.path.join(shown_dir, base))
    summary["images"].append(record)
    progress.update(sum(len(summary[k]) for k in ("images", "unreadable",
                                                  "too_small")))
  progress.close()
  order = {path: i for i, (path, _) in enumerate(inputs)}
  summary["images"].sort(key=lambda r: order[r["image"]])
  summary["counts"] = {"segmented": len(summary["images"]),
                       "unreadable": len(summary["unreadable"]),
                       "too_small": len(summary["too_small"]),
                       "ignored_files": ignored}
  logging.info("segment: %s%s", summary["counts"],
               f", outputs in {shown_dir}" if shown_dir else "")
  if not summary["images"]:
    raise errors.UserError(
        f"config.segment.input_dir: none of the {len(inputs)} image files in "
        f"{input_spec!r} could be segmented ({summary['counts']})")
  if out_dir is not None:
    fileio.write_json(os.path.join(out_dir, "summary.json"), summary)
  return summary
