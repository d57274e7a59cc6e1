"""TensorBoard images of training: kept synthetic pairs and predictions.

At step 0, each hold-out evaluation (config.train.eval_every) and the end,
the train stage writes two images beside its scalars (train/loss, ...,
synth/..., holdout/...; W/tensorboard/train/, with the `tf` extra):
  synth/kept_pairs     kept synthetic pairs (the first hold-out batch, made
                       by the training synthesis on the hold-out seed):
                       image | mask
  holdout/predictions  the U-Net (eval mode) on them:
                       image | mask | P(foreground)
Each is one uint8 RGB picture, a row per sample (at most PREVIEW_SAMPLES),
columns separated by a gap; a batch with no kept sample writes nothing. The
pairs are the hold-out set's, already on the devices: a batch of the
training stream would cost one more synthesis program to compile per run.
"""
from typing import Optional

import numpy as np

PREVIEW_SAMPLES = 8  # Rows of each picture.
_GAP = 2  # Pixels between cells.


def _image_cells(images: np.ndarray) -> np.ndarray:
  """[n, H, W, 3] in [-1, 1] -> uint8."""
  return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _map_cells(maps: np.ndarray) -> np.ndarray:
  """[n, H, W] in [0, 1] -> uint8 gray as RGB [n, H, W, 3]."""
  gray = np.round(np.clip(maps, 0.0, 1.0) * 255.0).astype(np.uint8)
  return np.repeat(gray[..., None], 3, axis=-1)


def rows_picture(images: np.ndarray, masks: np.ndarray, weights: np.ndarray,
                 probabilities: Optional[np.ndarray] = None
                 ) -> Optional[np.ndarray]:
  """uint8 [1, rows, cols, 3]: one row per kept sample (weight > 0), cells
  image | mask (| probabilities); None when no sample is kept."""
  kept = np.flatnonzero(np.asarray(weights) > 0)[:PREVIEW_SAMPLES]
  if not kept.size:
    return None
  columns = [_image_cells(np.asarray(images)[kept]),
             _map_cells(np.asarray(masks)[kept])]
  if probabilities is not None:
    columns.append(_map_cells(np.asarray(probabilities)[kept]))
  count, height, width, _ = columns[0].shape
  picture = np.full((count * (height + _GAP) - _GAP,
                     len(columns) * (width + _GAP) - _GAP, 3), 255, np.uint8)
  for c, cells in enumerate(columns):
    for r in range(count):
      top, left = r * (height + _GAP), c * (width + _GAP)
      picture[top:top + height, left:left + width] = cells[r]
  return picture[None]
