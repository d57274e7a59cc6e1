"""One evaluation example: an image, its binary mask, and its boxes if any.

Boxes are float32 [K, 4] rows (y0, x0, y1, x1) in pixel-edge coordinates:
the box covering pixel rows r0..r1 and columns c0..c1 (inclusive) is
(r0, c0, r1 + 1, c1 + 1), so its area is (y1 - y0) * (x1 - x0) pixels.
"""
import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class Example:
  name: str  # File stem or dataset file name; unique within a dataset.
  image: np.ndarray  # uint8 [H, W, 3].
  mask: np.ndarray  # bool [H, W], the binarised ground truth.
  boxes: Optional[np.ndarray] = None  # float32 [K, 4] (y0, x0, y1, x1) or None.


@dataclasses.dataclass
class ReadLog:
  """What a data source skipped or repaired: one message per file (logged)."""
  unreadable: list[str] = dataclasses.field(default_factory=list)
  too_small: list[str] = dataclasses.field(default_factory=list)
  masks_resized: list[str] = dataclasses.field(default_factory=list)
  without_mask: list[str] = dataclasses.field(default_factory=list)
  ambiguous: list[str] = dataclasses.field(default_factory=list)

  def counts(self) -> dict[str, int]:
    return {"unreadable": len(self.unreadable),
            "too_small": len(self.too_small),
            "masks_resized": len(self.masks_resized),
            "without_mask": len(self.without_mask),
            "ambiguous": len(self.ambiguous)}
