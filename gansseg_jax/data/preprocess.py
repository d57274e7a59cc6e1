"""Resizing and cropping for inference and evaluation (docs/method.md section 7).

Two ways a dataset meets the model:
- 'full' (saliency datasets, the user's photos): the whole image, resized so
  that its shorter side is `image_size` (128), goes to the model; the
  probability map is resized back to the image's own size and the metrics
  are computed there, against the untouched ground truth.
- 'crop' (CUB, Flowers, following ReDO): the image, its mask and its boxes
  are first centre-cropped to a square and resized to image_size x
  image_size; everything (model input and metrics) happens at that size.

Resizing is bilinear everywhere (Pillow, which widens the filter when it
shrinks, i.e. antialiases). Masks are resized as [0, 1] floats and then
binarised at 0.5, so a mask keeps its shape at any scale.
"""
import numpy as np
from PIL import Image

from gansseg_jax.data import example as example_lib

MODES = ("full", "crop")


def model_size(height: int, width: int, image_size: int,
               max_long_side: int) -> tuple[int, int]:
  """(h, w) with the shorter side `image_size`, the aspect ratio kept.

  When that would make the longer side exceed `max_long_side` (extreme
  panoramas), the longer side is `max_long_side` instead and the shorter side
  ends up below `image_size`. Sides are at least 1.
  """
  scale = image_size / min(height, width)
  if max(height, width) * scale > max_long_side:
    scale = max_long_side / max(height, width)
  return max(1, round(height * scale)), max(1, round(width * scale))


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """uint8 [H, W, 3] -> uint8 [h, w, 3], bilinear."""
  if image.shape[:2] == tuple(size):
    return image
  resized = Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR)
  return np.asarray(resized, dtype=np.uint8)


def resize_map(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """float [H, W] -> float32 [h, w], bilinear with half-pixel centres.

  Used to bring a probability map back to the image's size. A map that is an
  affine function of the pixel-centre coordinates stays exactly that function
  away from the border (bilinear interpolation reproduces affine functions).
  """
  values = np.asarray(values, dtype=np.float32)
  if values.shape == tuple(size):
    return values
  resized = Image.fromarray(values).resize((size[1], size[0]), Image.BILINEAR)
  return np.asarray(resized, dtype=np.float32)


def to_model_range(image: np.ndarray) -> np.ndarray:
  """uint8 [..., 3] in [0, 255] -> float32 in [-1, 1] (x / 127.5 - 1)."""
  return image.astype(np.float32) / 127.5 - 1.0


def model_input(image: np.ndarray, image_size: int,
                max_long_side: int) -> np.ndarray:
  """The 'full' model input: shorter side to `image_size`, in [-1, 1]."""
  size = model_size(image.shape[0], image.shape[1], image_size, max_long_side)
  return to_model_range(resize_rgb(image, size))


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
  """Reflect-pads [h, w, C] at the bottom/right to multiples of `multiple`.

  The U-Net halves the resolution four times, so its input sides must be
  multiples of 16 (a larger multiple means fewer distinct shapes to compile);
  the prediction is cropped back to [h, w] afterwards.
  """
  h, w = image.shape[:2]
  pad_h, pad_w = -h % multiple, -w % multiple
  if not (pad_h or pad_w):
    return image
  return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def center_square(height: int, width: int) -> tuple[int, int, int]:
  """(top, left, side) of the largest centred square inside the image."""
  side = min(height, width)
  return (height - side) // 2, (width - side) // 2, side


def crop_boxes(boxes: np.ndarray, top: int, left: int, side: int,
               size: int) -> np.ndarray:
  """Boxes (y0, x0, y1, x1) of the full image -> of the crop resized to `size`.

  Boxes are shifted by the crop's corner, clipped to it and scaled by
  size / side; a box left with no area is dropped.
  """
  boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
  shifted = boxes - np.array([top, left, top, left], dtype=np.float64)
  clipped = np.clip(shifted, 0.0, float(side))
  keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
  return (clipped[keep] * (size / side)).astype(np.float32)


def center_crop_resize(example: example_lib.Example,
                       size: int) -> example_lib.Example:
  """The 'crop' mode (CUB, Flowers): centre square, resized to size x size."""
  top, left, side = center_square(*example.image.shape[:2])
  image = example.image[top:top + side, left:left + side]
  mask = example.mask[top:top + side, left:left + side].astype(np.float32)
  boxes = None
  if example.boxes is not None:
    boxes = crop_boxes(example.boxes, top, left, side, size)
  return example_lib.Example(
      name=example.name,
      image=resize_rgb(image, (size, size)),
      mask=resize_map(mask, (size, size)) > 0.5,
      boxes=boxes)


def match_mask_size(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """A bool mask resized to `size` (for masks not of their image's size)."""
  if mask.shape == tuple(size):
    return mask
  return resize_map(mask.astype(np.float32), size) > 0.5
