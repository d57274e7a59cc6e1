"""Line charts drawn with Pillow (no plotting library needed) for the report.

`line_chart` draws one panel: a frame, the y range written at its top and
bottom, the last step at the right, one polyline (with a dot per point) per
series and a legend in each series' colour. Points map linearly:
x = left + (step - 0) / (max_step - 0) * plot_width, y likewise from the
panel's value range (top = largest value).
"""
import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
from PIL import Image
from PIL import ImageDraw

from gansseg_jax.report import images as pics

COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 12, 22, 34


@dataclasses.dataclass(frozen=True)
class Series:
  label: str
  steps: Sequence[float]
  values: Sequence[float]


def _fmt(value: float) -> str:
  return f"{value:.3g}"


def plot_box(width: int, height: int) -> tuple[int, int, int, int]:
  """(left, top, right, bottom) pixel edges of the plotting area."""
  return (MARGIN_LEFT, MARGIN_TOP, width - 1 - MARGIN_RIGHT,
          height - 1 - MARGIN_BOTTOM)


def value_range(series: Sequence[Series],
                fixed: Optional[tuple[float, float]]) -> tuple[float, float]:
  """`fixed`, else the finite values' (min, max), widened when flat."""
  if fixed is not None:
    return fixed
  values = [v for s in series for v in s.values if math.isfinite(v)]
  low, high = (min(values), max(values)) if values else (0.0, 1.0)
  if high - low < 1e-12:
    low, high = low - 0.5, high + 0.5
  return low, high


def line_chart(title: str, series: Sequence[Series], width: int = 340,
               height: int = 220,
               y_range: Optional[tuple[float, float]] = None) -> np.ndarray:
  """uint8 RGB [height, width, 3]: one panel (see the module docstring)."""
  image = Image.new("RGB", (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(image)
  font = pics._font()  # pylint: disable=protected-access
  left, top, right, bottom = plot_box(width, height)
  draw.rectangle((left, top, right, bottom), outline=(150, 150, 150))
  draw.text((left, 4), title, fill=(0, 0, 0), font=font)
  low, high = value_range(series, y_range)
  max_step = max([max(s.steps) for s in series if len(s.steps)] + [1])
  draw.text((2, top), _fmt(high), fill=(80, 80, 80), font=font)
  draw.text((2, bottom - pics.LABEL_FONT_PX), _fmt(low), fill=(80, 80, 80),
            font=font)
  draw.text((left, bottom + 3), "0", fill=(80, 80, 80), font=font)
  step_label = f"step {int(max_step)}"
  draw.text((right - 7 * len(step_label), bottom + 3), step_label,
            fill=(80, 80, 80), font=font)

  def xy(step, value):
    x = left + step / max_step * (right - left)
    y = bottom - (value - low) / (high - low) * (bottom - top)
    return (round(x), round(min(max(y, top), bottom)))

  legend_x = left
  for i, s in enumerate(series):
    color = COLORS[i % len(COLORS)]
    points = [xy(t, v) for t, v in zip(s.steps, s.values) if math.isfinite(v)]
    if len(points) > 1:
      draw.line(points, fill=color, width=2)
    for x, y in points:
      draw.rectangle((x - 1, y - 1, x + 1, y + 1), fill=color)
    draw.text((legend_x, bottom + 17), s.label, fill=color, font=font)
    legend_x += int(draw.textlength(s.label, font=font)) + 12
  return np.asarray(image)
