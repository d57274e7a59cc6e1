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

A baseline (gansseg_jax.eval.baselines: one uint8 image at its own size ->
saliency) runs instead in `BaselineEngine`, unpadded and unresized (padding
would move the image border and centre that baselines look at), over
`workers` processes; given a `memo` dict, it computes each distinct image
(by content) once across the engines that share that dict (datasets that
read one image folder with different targets). `make_engine` gives either
engine the same interface: submit(tag, uint8 RGB image) and flush() return
(tag, probabilities) pairs.
"""
import hashlib
import multiprocessing
import os
from typing import Any, Callable, Optional, Union

import numpy as np

from gansseg_jax.data import preprocess
from gansseg_jax.eval import baselines

Predict = Callable[[np.ndarray], Any]
# The U-Net's batch function, or a baseline.
Predictor = Union[Predict, baselines.Baseline]


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


class ModelInputEngine:
  """uint8 RGB images of any size -> model inputs -> BucketedPredictor."""

  def __init__(self, predict: Predict, image_size: int, max_long_side: int,
               batch_size: int, pad_multiple: int):
    self._size = (int(image_size), int(max_long_side))
    self._batches = BucketedPredictor(predict, batch_size, pad_multiple)

  @property
  def calls(self) -> int:
    return self._batches.calls

  def submit(self, tag: Any, image: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    return self._batches.submit(tag, preprocess.model_input(image, *self._size))

  def flush(self) -> list[tuple[Any, np.ndarray]]:
    return self._batches.flush()


def _digest(image: np.ndarray) -> bytes:
  """A key for an image's content and shape."""
  h = hashlib.blake2b(digest_size=16)
  h.update(np.asarray(image.shape, np.int64).tobytes())
  h.update(image.tobytes())
  return h.digest()


class BaselineEngine:
  """A baseline over images at their own size, `workers` processes at once.

  Images wait until `chunk` are queued, then run as one Pool.map (spawned
  processes: the parent may hold JAX's threads, which fork would copy). One
  worker runs everything in this process.
  """

  def __init__(self, baseline: baselines.Baseline, workers: int, chunk: int,
               memo: Optional[dict[bytes, np.ndarray]] = None):
    self._baseline = baseline
    self._workers = int(workers) or os.cpu_count() or 1
    self._chunk = max(int(chunk), self._workers)
    self._memo = memo
    self._queue: list[tuple[Any, np.ndarray, bytes]] = []
    self._pool = None
    self.calls = 0

  def submit(self, tag: Any, image: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    image = np.asarray(image, np.uint8)
    digest = _digest(image) if self._memo is not None else b""
    self._queue.append((tag, image, digest))
    return self._run() if len(self._queue) >= self._chunk else []

  def flush(self) -> list[tuple[Any, np.ndarray]]:
    results = self._run() if self._queue else []
    if self._pool is not None:
      self._pool.close()
      self._pool.join()
      self._pool = None
    return results

  def _run(self) -> list[tuple[Any, np.ndarray]]:
    """The queue's maps, in queue order; only images not in the memo run."""
    queue, self._queue = self._queue, []
    known = self._memo if self._memo is not None else {}
    todo = [image for _, image, digest in queue
            if not (digest and digest in known)]
    computed = iter(self._saliency(todo) if todo else [])
    results = []
    for tag, _, digest in queue:
      probs = known[digest] if digest and digest in known else next(computed)
      if self._memo is not None:
        self._memo[digest] = probs
      results.append((tag, probs))
    return results


  def _saliency(self, images: list[np.ndarray]) -> list[np.ndarray]:
    """The baseline's maps of `images`: one call, over the workers."""
    self.calls += 1
    if self._workers == 1:
      return [self._baseline.saliency(image) for image in images]
    if self._pool is None:
      self._pool = multiprocessing.get_context("spawn").Pool(self._workers)
    return self._pool.map(self._baseline.saliency, images, chunksize=1)


def make_engine(predictor: Predictor, eval_config,
                memo: Optional[dict[bytes, np.ndarray]] = None):
  """The engine for `predictor` with config.eval's batching settings
  (`memo`: a baseline's maps shared across engines; the U-Net ignores it)."""
  c = eval_config
  if hasattr(predictor, "saliency"):
    workers = (1 if getattr(predictor, "in_process", False)
               else c.baseline_workers)
    return BaselineEngine(predictor, workers, 4 * c.batch_size, memo)
  return ModelInputEngine(predictor, c.image_size, c.max_long_side,
                          c.batch_size, c.pad_multiple)
