"""The centre prior: a Gaussian at the image centre, no learning at all.

P(y, x) = exp(-((y - c_y)^2 / (2 (s h)^2) + (x - c_x)^2 / (2 (s w)^2)))
with pixel centres (y + 0.5, x + 0.5), (c_y, c_x) = (h / 2, w / 2) and
s = config.eval.centre_prior_sigma (a quarter of each side by default). What
"no learning" scores on a dataset whose objects sit near the centre.
"""
import dataclasses
from typing import ClassVar

import numpy as np


@dataclasses.dataclass(frozen=True)
class CentrePrior:
  """uint8 RGB [H, W, 3] -> float32 [H, W] in (0, 1]; ignores the pixels."""
  sigma: float = 0.25  # Fraction of each side.
  name: str = "centre_prior"
  in_process: ClassVar[bool] = True  # Too cheap for worker processes.

  def saliency(self, image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    y = ((np.arange(h) + 0.5 - h / 2) / (self.sigma * h)) ** 2
    x = ((np.arange(w) + 0.5 - w / 2) / (self.sigma * w)) ** 2
    return np.exp(-0.5 * (y[:, None] + x[None, :])).astype(np.float32)
