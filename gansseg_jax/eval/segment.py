"""Segmenting a folder of the user's images with the trained model.

Every file in the input folder with an extension Pillow reads is decoded
(any size; EXIF orientation applied; grayscale, palette, 16-bit, CMYK and
images with alpha converted to RGB, transparency over white), resized so its
shorter side is config.eval.image_size, segmented, and the probability map
resized back to the image's size. For an image `<base>` (its file stem, or
`<stem>_<ext>` when two files share a stem) the output folder gets
  <base>_prob.png    probability map, 8-bit gray (0..255 = P(foreground))
  <base>_mask.png    binary mask, P > config.segment.threshold (0 or 255)
  <base>_cutout.png  RGBA: the image with the mask as alpha
  <base>.json        size, foreground fraction and the tight box of the
                     mask's largest connected component
and summary.json lists every image, and every file skipped and why.
Undecodable files are skipped with one warning each, images below
config.segment.min_side pixels on a side are rejected with a message; both
are counted. A folder with no image that could be segmented is an error.
"""
import collections
import os
from typing import Any, Optional

from absl import logging
import ml_collections
import numpy as np
from PIL import Image

from gansseg_jax import errors
from gansseg_jax import fileio
from gansseg_jax import monitoring
from gansseg_jax.data import folder
from gansseg_jax.data import images as images_lib
from gansseg_jax.data import preprocess
from gansseg_jax.eval import inference
from gansseg_jax.eval import wsol


def output_bases(names: list[str]) -> dict[str, str]:
  """File name -> output base: the stem, or stem_ext where stems collide."""
  stems = collections.Counter(os.path.splitext(n)[0] for n in names)
  bases = {}
  for name in names:
    stem, ext = os.path.splitext(name)
    bases[name] = stem if stems[stem] == 1 else f"{stem}_{ext.lstrip('.')}"
  return bases


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


def segment_folder(predict: inference.Predict, input_dir: str,
                   out_dir: Optional[str],
                   config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Segments every image of `input_dir` into `out_dir`; returns the summary.

  With `out_dir` None nothing is written (processes other than 0). Images
  are decoded again when their batch returns, so that only the small model
  inputs wait in the batch queues, whatever the photos' sizes.
  """
  seg, ev = config.segment, config.eval
  names = folder.list_image_files(input_dir)
  ignored = len([n for n in os.listdir(input_dir)
                 if os.path.isfile(os.path.join(input_dir, n))]) - len(names)
  if not names:
    raise errors.UserError(
        f"config.segment.input_dir: no image files in {input_dir!r} "
        f"({ignored} other files)")
  bases = output_bases(names)
  structure = wsol.connectivity_structure(seg.connectivity)
  engine = inference.BucketedPredictor(predict, ev.batch_size, ev.pad_multiple)
  summary = {"input_dir": input_dir, "images": [], "unreadable": [],
             "too_small": []}
  progress = monitoring.Progress(len(names), "segment",
                                 every_s=config.log.progress_every_s)

  def consume(results):
    for name, probs in results:
      path = os.path.join(input_dir, name)
      image = images_lib.read_rgb(path, exif_transpose=True)
      probs = preprocess.resize_map(probs, image.shape[:2])
      record = image_record(name, probs, seg.threshold, structure)
      record["outputs"] = {kind: bases[name] + suffix for kind, suffix in (
          ("probability", "_prob.png"), ("mask", "_mask.png"),
          ("cutout", "_cutout.png"), ("record", ".json"))}
      if out_dir is not None:
        write_outputs(out_dir, bases[name], image, probs, record,
                      seg.threshold)
      summary["images"].append(record)
    progress.update(sum(len(summary[k]) for k in ("images", "unreadable",
                                                  "too_small")))

  for name in names:
    image = _readable_image(os.path.join(input_dir, name), seg.min_side,
                            summary)
    if image is None:
      consume([])
    else:
      consume(engine.submit(name, preprocess.model_input(
          image, ev.image_size, ev.max_long_side)))
  consume(engine.flush())
  progress.close()
  summary["images"].sort(key=lambda r: folder.natural_key(r["image"]))
  summary["counts"] = {"segmented": len(summary["images"]),
                       "unreadable": len(summary["unreadable"]),
                       "too_small": len(summary["too_small"]),
                       "ignored_files": ignored}
  logging.info("segment: %s", summary["counts"])
  if not summary["images"]:
    raise errors.UserError(
        f"config.segment.input_dir: none of the {len(names)} image files in "
        f"{input_dir!r} could be segmented ({summary['counts']})")
  if out_dir is not None:
    fileio.write_json(os.path.join(out_dir, "summary.json"), summary)
  return summary
