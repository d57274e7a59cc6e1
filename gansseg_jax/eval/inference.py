"""Running the segmentation model on images of any size in fixed-shape batches.

`predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W]` is the trained
U-Net (gansseg_jax.train.load.load_predictor). Each image (already resized for
the model) is reflect-padded at the bottom/right to a multiple of
`pad_multiple`, and queued with the others of the same padded shape; a queue
runs as one call when it holds `batch_size` images, the rest run in `flush`,
their batch filled with zero images up to the next power of two. Every call
therefore has one of a few shapes [b, H', W', 3] (b a power of two or
batch_size, (H', W') a bucket), which keeps jit compilations few without
running a whole batch for a last few images. Predictions are cropped back to
each image's size.
"""
from typing import Any, Callable

import numpy as np

from gansseg_jax.data import preprocess

Predict = Callable[[np.ndarray], Any]


class BucketedPredictor:
  """Queues (tag, image) pairs, returns (tag, probabilities) as batches run."""

  def __init__(self, predict: Predict, batch_size: int, pad_multiple: int):
    self._predict = predict
    self._batch_size = int(batch_size)
    self._pad_multiple = int(pad_multiple)
    self._queues: dict[tuple[int, int], list[tuple[Any, np.ndarray]]] = {}
    self.calls = 0

  def submit(self, tag: Any, image: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """Queues float32 [h, w, 3] `image`; returns the results of a full batch."""
    padded = preprocess.pad_to_multiple(np.asarray(image, np.float32),
                                        self._pad_multiple)
    queue = self._queues.setdefault(padded.shape[:2], [])
    queue.append((tag, image.shape[:2], padded))
    if len(queue) == self._batch_size:
      return self._run(padded.shape[:2])
    return []

  def flush(self) -> list[tuple[Any, np.ndarray]]:
    """Runs every partly filled queue."""
    results = []
    for shape in list(self._queues):
      results.extend(self._run(shape))
    return results

  def _run(self, shape: tuple[int, int]) -> list[tuple[Any, np.ndarray]]:
    queue = self._queues.pop(shape)
    size = min(self._batch_size, 1 << (len(queue) - 1).bit_length())
    batch = np.zeros((size,) + shape + (3,), np.float32)
    for i, (_, _, padded) in enumerate(queue):
      batch[i] = padded
    probs = np.asarray(self._predict(batch), dtype=np.float32)
    self.calls += 1
    if probs.shape != batch.shape[:3]:
      raise ValueError(f"predict returned shape {probs.shape} for images "
                       f"{batch.shape}; expected {batch.shape[:3]}")
    return [(tag, probs[i, :size[0], :size[1]])
            for i, (tag, size, _) in enumerate(queue)]
