"""The checks every data source applies to an example before it is used.

Each skipped or repaired file gets one warning and one line in the ReadLog:
unreadable files, images below `min_side` pixels on a side (skipped), and
masks whose size differs from their image's (resized to it, bilinear on the
binary mask then re-binarised at 0.5). A mask of another aspect ratio
(transposed, cropped) is not that image's: a UserError naming it.
"""
from typing import Optional

from absl import logging
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.data import example as example_lib
from gansseg_jax.data import images as images_lib
from gansseg_jax.data import preprocess


def record_unreadable(error: images_lib.UnreadableImageError,
                      log: example_lib.ReadLog) -> None:
  logging.warning("skipped: %s", error)
  log.unreadable.append(str(error))


def checked_example(name: str, image: np.ndarray, mask: np.ndarray,
                    boxes: Optional[np.ndarray], min_side: int,
                    log: example_lib.ReadLog) -> Optional[example_lib.Example]:
  """The Example, or None when the image is too small (logged)."""
  if images_lib.too_small(image.shape, min_side):
    message = (f"{name}: {image.shape[1]}x{image.shape[0]} px is below "
               f"{min_side} px on a side")
    logging.warning("skipped: %s", message)
    log.too_small.append(message)
    return None
  (mh, mw), (ih, iw) = mask.shape[:2], image.shape[:2]
  if abs(mh * iw - mw * ih) > max(ih, iw):  # Beyond a pixel of rounding.
    raise errors.UserError(
        f"{name}: mask {mw}x{mh} has another aspect ratio than its image "
        f"{iw}x{ih} (transposed or cropped: not this image's mask); fix or "
        "remove the pair")
  if mask.shape != image.shape[:2]:
    message = (f"{name}: mask {mask.shape[1]}x{mask.shape[0]} resized to its "
               f"image's {image.shape[1]}x{image.shape[0]}")
    logging.warning("%s", message)
    log.masks_resized.append(message)
    mask = preprocess.match_mask_size(mask, image.shape[:2])
  return example_lib.Example(name=name, image=image, mask=mask, boxes=boxes)
