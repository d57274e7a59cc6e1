"""Pictures for the report: PNG bytes, mask overlays and image grids."""
import io

import numpy as np
from PIL import Image

FOREGROUND_TINT = np.array([40, 220, 90], np.float32)  # Green.
OVERLAY_ALPHA = 0.45


def png_bytes(image: np.ndarray) -> bytes:
  """uint8 [H, W] or [H, W, 3] as PNG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
  return buffer.getvalue()


def read_png(path: str) -> np.ndarray:
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
  """uint8 [H, W] -> uint8 [H, W, 3]."""
  return np.repeat(np.asarray(gray, np.uint8)[..., None], 3, axis=-1)


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """`image` (uint8 RGB) with the pixels where `mask` > 0.5 tinted green."""
  out = image.astype(np.float32)
  chosen = np.asarray(mask, np.float32) > 0.5
  out[chosen] = (1 - OVERLAY_ALPHA) * out[chosen] + OVERLAY_ALPHA * FOREGROUND_TINT
  return np.round(out).astype(np.uint8)


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
  """Nearest-neighbour resize of uint8 RGB to `height` (aspect kept)."""
  h, w = image.shape[:2]
  width = max(1, round(w * height / h))
  return np.asarray(Image.fromarray(image).resize((width, height),
                                                  Image.NEAREST))


def row(images: list[np.ndarray], height: int, gap: int = 2) -> np.ndarray:
  """Images side by side at a common height, white gaps between them."""
  parts = []
  for image in images:
    if parts:
      parts.append(np.full((height, gap, 3), 255, np.uint8))
    parts.append(fit_height(image, height))
  return np.concatenate(parts, axis=1)


def column(rows: list[np.ndarray], gap: int = 2) -> np.ndarray:
  """Rows stacked, left-aligned, padded white to the widest."""
  width = max(r.shape[1] for r in rows)
  parts = []
  for r in rows:
    if parts:
      parts.append(np.full((gap, width, 3), 255, np.uint8))
    pad = np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)
    parts.append(np.concatenate([r, pad], axis=1))
  return np.concatenate(parts, axis=0)


OUTLINE_COLOR = (40, 220, 90)  # Green, as the overlay tint.
KEPT_COLOR = (20, 130, 50)  # Label of a kept sample.
REJECTED_COLOR = (200, 30, 30)  # Label of a rejected sample.
LABEL_FONT_PX = 12


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
  """Nearest-neighbour enlargement by an integer factor (every pixel a block)."""
  factor = max(1, int(factor))
  return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def readable_factor(size: int, target: int) -> int:
  """The integer factor that brings `size` pixels to at least `target`."""
  return max(1, -(-int(target) // max(1, int(size))))


def outline(image: np.ndarray, mask: np.ndarray,
            color=OUTLINE_COLOR) -> np.ndarray:
  """`image` with the mask's boundary (foreground pixels with a background
  4-neighbour or on the image edge) painted `color`; the rest untouched."""
  inside = np.asarray(mask, np.float32) > 0.5
  padded = np.pad(inside, 1, constant_values=False)
  interior = (padded[:-2, 1:-1] & padded[2:, 1:-1]
              & padded[1:-1, :-2] & padded[1:-1, 2:])
  out = np.array(image, np.uint8, copy=True)
  out[inside & ~interior] = color
  return out


def _font():
  from PIL import ImageFont  # pylint: disable=g-import-not-at-top
  return ImageFont.load_default(size=LABEL_FONT_PX)


def labelled(image: np.ndarray, lines: list[tuple[str, tuple]],
             width: int = 0) -> np.ndarray:
  """`image` above a white band with one text line per (text, colour), the
  band as wide as the image or `width`, whichever is larger."""
  from PIL import ImageDraw  # pylint: disable=g-import-not-at-top
  font = _font()
  line_h = LABEL_FONT_PX + 3
  w = max(image.shape[1], width)
  band = Image.new("RGB", (w, line_h * len(lines) + 2), (255, 255, 255))
  draw = ImageDraw.Draw(band)
  for i, (text, color) in enumerate(lines):
    draw.text((1, 1 + i * line_h), text, fill=tuple(color), font=font)
  top = np.full((image.shape[0], w, 3), 255, np.uint8)
  top[:, :image.shape[1]] = image
  return np.concatenate([top, np.asarray(band)], axis=0)


def grid(cells: list[np.ndarray], columns: int, gap: int = 6) -> np.ndarray:
  """Cells (same height per row) in rows of `columns`, white gaps between."""
  rows = [cells[i:i + columns] for i in range(0, len(cells), columns)]
  height = max(c.shape[0] for c in cells)
  padded = [[np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0)),
                    constant_values=255) for c in r] for r in rows]
  return column([row(r, height, gap) for r in padded], gap)
