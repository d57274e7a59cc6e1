"""Weakly-supervised localisation metrics (Choe et al. 2020; docs/method.md s. 8).

MaxBoxAcc: for each threshold t_k = k / K (k = 0..K-1; K = 100 is Choe et
al.'s interval of 0.01), take the largest connected component of [s >= t_k]
(4- or 8-connected; ties go to the component met first in raster order), its
tight box, and count the image correct when that box's IoU with the
best-matching ground-truth box is >= 0.5 (an empty [s >= t_k] has no box and
is wrong). MaxBoxAcc = max over k of the fraction of correct images.
Components are labelled on the host with scipy.ndimage.label: this is
evaluation, not the training hot loop.

Boxes are (y0, x0, y1, x1) in pixel-edge coordinates (gansseg_jax.data.example):
a component covering rows r0..r1 and columns c0..c1 has the box
(r0, c0, r1 + 1, c1 + 1), IoU is that of the two rectangles.

PxAP: area under the pixel precision-recall curve, as the step-wise sum
AP = sum_k (R_k - R_{k+1}) P_k over ascending thresholds (R_K := 0), the
convention of scikit-learn's average_precision_score. docs/method.md averages
precision and recall over images per threshold ('images'); Choe et al.'s
code pools the pixels of the whole dataset ('pixels'). Both are offered
(`config.eval.pxap_average`); the curves come from
gansseg_jax.eval.metrics.SaliencyMetrics.curves.
"""
from typing import Optional

import numpy as np
from scipy import ndimage

from gansseg_jax.eval import metrics as metrics_lib

PXAP_AVERAGES = ("images", "pixels")


def connectivity_structure(connectivity: int) -> np.ndarray:
  """scipy's 3x3 structuring element for 4- or 8-connectivity."""
  if connectivity not in (4, 8):
    raise ValueError(f"connectivity must be 4 or 8, not {connectivity}")
  return ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)


def largest_component_box(binary: np.ndarray,
                          structure: np.ndarray) -> Optional[np.ndarray]:
  """Tight box (y0, x0, y1, x1) of the largest component, None if empty."""
  labels, count = ndimage.label(binary, structure=structure)
  if count == 0:
    return None
  sizes = np.bincount(labels.ravel())
  sizes[0] = 0
  largest = int(np.argmax(sizes))  # Lowest label among ties = first in raster.
  rows, cols = ndimage.find_objects(labels)[largest - 1]
  return np.array([rows.start, cols.start, rows.stop, cols.stop],
                  dtype=np.float64)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """IoU of one box with each of boxes [K, 4], all (y0, x0, y1, x1)."""
  boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
  top = np.maximum(box[0], boxes[:, 0])
  left = np.maximum(box[1], boxes[:, 1])
  bottom = np.minimum(box[2], boxes[:, 2])
  right = np.minimum(box[3], boxes[:, 3])
  inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
  area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
  union = area(box) + area(boxes) - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


class BoxAccuracy:
  """Streaming MaxBoxAcc over images of any size."""

  def __init__(self, num_thresholds: int, iou_threshold: float,
               connectivity: int):
    self._thresholds = metrics_lib.threshold_grid(num_thresholds)
    self._iou_threshold = float(iou_threshold)
    self._structure = connectivity_structure(connectivity)
    self._correct = np.zeros(num_thresholds, np.int64)
    self.images = 0

  def add(self, scores: np.ndarray, gt_boxes: np.ndarray) -> None:
    """One image's score map [H, W] and its ground-truth boxes [K, 4]."""
    scores = np.asarray(scores, dtype=np.float32)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    previous_count, previous_correct = -1, False
    for k, t in enumerate(self._thresholds):
      binary = scores >= t
      count = int(binary.sum())
      if count != previous_count:  # [s >= t] is nested: same count, same set.
        box = largest_component_box(binary, self._structure)
        previous_correct = (box is not None and gt_boxes.size > 0 and
                            box_iou(box, gt_boxes).max() >= self._iou_threshold)
        previous_count = count
      self._correct[k] += previous_correct
    self.images += 1

  def result(self) -> dict[str, float]:
    accuracy = self._correct / max(self.images, 1)
    best = int(np.argmax(accuracy))
    return {"MaxBoxAcc": float(accuracy[best]),
            "MaxBoxAcc_threshold": float(self._thresholds[best]),
            "box_images": self.images}


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
  """sum_k (R_k - R_{k+1}) P_k over ascending thresholds, with R_K = 0."""
  recall = np.asarray(recall, dtype=np.float64)
  next_recall = np.append(recall[1:], 0.0)
  return float(np.sum((recall - next_recall) * np.asarray(precision)))


def pxap(curves: dict[str, np.ndarray], average: str) -> float:
  """PxAP from SaliencyMetrics.curves(), averaged over 'images' or 'pixels'."""
  if average == "images":
    return average_precision(curves["precision"], curves["recall"])
  if average == "pixels":
    return average_precision(curves["pooled_precision"],
                             curves["pooled_recall"])
  raise ValueError(f"PxAP average must be one of {PXAP_AVERAGES}, "
                   f"not {average!r}")
