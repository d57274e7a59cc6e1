"""Evaluating a predictor on one dataset (docs/method.md sections 7-8).

For each example: in 'crop' mode (CUB, Flowers) the image, mask and boxes are
centre-cropped and resized to image_size first; in 'full' mode the image is
resized so its shorter side is image_size. The model's probability map is
resized back to the (possibly cropped) image's size, where the metrics are
computed against the ground truth: SaliencyMetrics (maxF, IoU, acc, MAE,
F_beta at the fixed threshold), PxAP, and MaxBoxAcc when the dataset has
boxes. Model calls run in fixed-shape batches (gansseg_jax.eval.inference);
a baseline gets each (possibly cropped) image at its own size.
"""
import itertools
import time
from typing import Any, Optional

import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import monitoring
from gansseg_jax.data import preprocess
from gansseg_jax.data import sources
from gansseg_jax.eval import inference
from gansseg_jax.eval import metrics as metrics_lib
from gansseg_jax.eval import wsol


def check_config(eval_config: ml_collections.ConfigDict) -> None:
  """Raises UserError for an eval setting out of its range."""
  c = eval_config
  positive = ("image_size", "max_long_side", "pad_multiple", "batch_size",
              "thresholds", "box_thresholds", "metrics_pixel_budget",
              "min_side")
  for name in positive:
    if int(c[name]) < 1:
      raise errors.UserError(f"config.eval.{name}: must be >= 1, not {c[name]}")
  if c.max_long_side < c.image_size:
    raise errors.UserError(
        f"config.eval.max_long_side: {c.max_long_side} is below "
        f"config.eval.image_size {c.image_size}")
  if c.max_images < 0:
    raise errors.UserError(f"config.eval.max_images: must be >= 0 (0 = all), "
                           f"not {c.max_images}")
  if c.pxap_average not in wsol.PXAP_AVERAGES:
    raise errors.UserError(f"config.eval.pxap_average: {c.pxap_average!r} is "
                           f"not one of {wsol.PXAP_AVERAGES}")
  if c.box_connectivity not in (4, 8):
    raise errors.UserError(f"config.eval.box_connectivity: must be 4 or 8, "
                           f"not {c.box_connectivity}")
  for name in ("mask_threshold", "box_iou"):
    if not 0.0 <= float(c[name]) <= 1.0:
      raise errors.UserError(f"config.eval.{name}: must be in [0, 1], "
                             f"not {c[name]}")
  if float(c.beta2) <= 0:
    raise errors.UserError(f"config.eval.beta2: must be > 0, not {c.beta2}")


class Samples:
  """The first `limit` (image, mask, probabilities) triples, for the report."""

  def __init__(self, limit: int):
    self.limit = limit
    self.items: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

  def offer(self, example, probs: np.ndarray) -> None:
    if len(self.items) < self.limit:
      self.items.append((example.image, example.mask, np.asarray(probs)))


def _score(results, saliency: metrics_lib.SaliencyMetrics,
           boxes: Optional[wsol.BoxAccuracy], samples: Samples) -> int:
  """Scores (example, probabilities at model size) pairs; returns how many."""
  for example, probs in results:
    probs = preprocess.resize_map(probs, example.mask.shape)
    samples.offer(example, probs)
    saliency.add(probs, example.mask)
    if boxes is not None and example.boxes is not None:
      boxes.add(probs, example.boxes)
  return len(results)


def evaluate_source(predict: inference.Predictor, source: sources.Source,
                    eval_config: ml_collections.ConfigDict,
                    progress_every_s: float,
                    samples: Optional[Samples] = None,
                    memo: Optional[dict] = None) -> dict[str, Any]:
  """All metrics of `predict` (the U-Net's batch function or a baseline) on
  `source`; raises UserError if it is empty.

  `samples`, when given, collects the first predictions at image size;
  `memo`, a baseline's maps by image content (inference.BaselineEngine).
  """
  samples = samples or Samples(0)
  c = eval_config
  saliency = metrics_lib.SaliencyMetrics(c.thresholds, c.beta2,
                                         c.mask_threshold,
                                         c.metrics_pixel_budget)
  boxes = (wsol.BoxAccuracy(c.box_thresholds, c.box_iou, c.box_connectivity)
           if source.has_boxes else None)
  engine = inference.make_engine(predict, c, memo)
  limit = c.max_images or source.size
  progress = monitoring.Progress(min(limit, source.size),
                                 f"eval {source.title}",
                                 every_s=progress_every_s)
  start = time.perf_counter()
  scored = 0
  for example in itertools.islice(source.examples, limit):
    if source.mode == "crop":
      example = preprocess.center_crop_resize(example, c.image_size)
    scored += _score(engine.submit(example, example.image), saliency, boxes,
                     samples)
    progress.update(scored)
  scored += _score(engine.flush(), saliency, boxes, samples)
  progress.update(scored)
  progress.close()
  result = saliency.result()
  if result["images"] == 0:
    raise errors.UserError(
        f"config.eval.datasets: {source.key} has no readable example "
        f"(skipped: {source.log.counts()})")
  seconds = time.perf_counter() - start
  result.update(
      title=source.title,
      mode=source.mode,
      skipped=source.log.counts(),
      PxAP=wsol.pxap(saliency.curves(), c.pxap_average),
      seconds=seconds,
      images_per_s=result["images"] / seconds,
      model_calls=engine.calls)
  if boxes is not None:
    result.update(boxes.result())
  return result
