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
