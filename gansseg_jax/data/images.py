"""Reading any image Pillow can open as RGB, and any mask as a binary map.

Images: every Pillow mode becomes uint8 RGB [H, W, 3]. Grayscale ('1', 'L',
'I;16', 'I', 'F') is replicated to three channels, palette images are
expanded through their palette, CMYK/YCbCr/LAB are converted by Pillow, and
images with transparency ('RGBA', 'LA', 'PA', palette with a transparent
index) are composited over white. 16-bit integer
images ('I;16*', and 'I') are scaled by 65535; float ('F') images are taken
to lie in [0, 1].

Masks: "binarised at 0.5 of their range" (docs/method.md section 8) - the value
range of the file's type, not of the image's values (an all-zero mask stays
empty): uint8 masks give foreground where value > 127.5 (i.e. >= 128),
16-bit where > 32767.5, float masks where > 0.5, 1-bit masks as stored.
Colour masks are reduced to luminance first ('L', ITU-R 601-2).

A file that is not an image, is truncated, or exceeds Pillow's decompression
bomb limit (2 x Image.MAX_IMAGE_PIXELS, ~179 megapixels) raises
`UnreadableImageError` (one line naming the file), never a Pillow traceback.
"""
from typing import BinaryIO, Optional, Union

import numpy as np
from PIL import Image
from PIL import ImageOps

# Pillow modes whose values are integers of this range (in bits). Mode 'I'
# (32-bit) is what Pillow gives some 16-bit files, so it is read as 16-bit;
# larger values clip to 1.
_INTEGER_BITS = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 16}


class UnreadableImageError(Exception):
  """A file Pillow cannot decode completely; the message names the file."""


def image_extensions() -> frozenset[str]:
  """Lower-case file extensions (with the dot) of every format Pillow reads."""
  return frozenset(ext.lower() for ext in Image.registered_extensions())


def open_image(source: Union[str, BinaryIO], name: Optional[str] = None,
               exif_transpose: bool = False) -> Image.Image:
  """Opens and fully decodes a path or file object.

  Raises UnreadableImageError naming `name` (default: the path) on failure.
  With `exif_transpose`, the EXIF orientation tag is applied, so the pixels
  are in the orientation a viewer shows (for the user's photos; dataset masks
  are stored in the file's raw orientation, so datasets keep it off).
  """
  name = name if name is not None else str(source)
  try:
    with Image.open(source) as image:
      image.load()
      if exif_transpose:
        return ImageOps.exif_transpose(image)
      return image.copy()
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(f"{name}: not a readable image ({e})") from e


def file_format(path: str) -> Optional[str]:
  """Pillow's name of the file's format ('JPEG', 'PNG', ...) from its header."""
  try:
    with Image.open(path) as image:
      return image.format
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(f"{path}: not a readable image ({e})") from e


def _integer_to_unit(values: np.ndarray, bits: int) -> np.ndarray:
  return values.astype(np.float64) / float(2**bits - 1)


def to_unit_gray(image: Image.Image) -> np.ndarray:
  """One channel in [0, 1], scaled by the range of the image's value type."""
  mode = image.mode
  if mode == "1":
    return np.asarray(image, dtype=np.float64)
  if mode in _INTEGER_BITS:
    return np.clip(_integer_to_unit(np.asarray(image), _INTEGER_BITS[mode]),
                   0.0, 1.0)
  if mode == "F":
    return np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
  if mode in ("LA", "PA", "RGBA", "RGBa", "La"):
    image = image.convert("RGBA").convert("RGB")
  return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def to_rgb(image: Image.Image) -> np.ndarray:
  """uint8 RGB [H, W, 3] from any Pillow mode (see the module docstring)."""
  mode = image.mode
  if mode == "P" and "transparency" in image.info:
    image = image.convert("RGBA")
    mode = "RGBA"
  if mode in _INTEGER_BITS or mode == "F":
    gray = np.round(to_unit_gray(image) * 255.0).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
  if mode in ("LA", "PA", "RGBA", "RGBa", "La"):
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    image = Image.alpha_composite(canvas, rgba)
  return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_rgb(source: Union[str, BinaryIO], name: Optional[str] = None,
             exif_transpose: bool = False) -> np.ndarray:
  """uint8 RGB [H, W, 3] of an image file (path or file object)."""
  return to_rgb(open_image(source, name, exif_transpose=exif_transpose))


def binarize(unit_gray: np.ndarray) -> np.ndarray:
  """Foreground where the value is above half the range (docs/method.md s. 8)."""
  return np.asarray(unit_gray) > 0.5


def read_mask(source: Union[str, BinaryIO],
              name: Optional[str] = None) -> np.ndarray:
  """bool [H, W]: a mask file binarised at 0.5 of its type's range."""
  return binarize(to_unit_gray(open_image(source, name)))


# Pillow modes whose values are class ids as stored ('P': palette indices).
_CLASS_MAP_MODES = ("L", "P", "I;16", "I;16B", "I;16L", "I;16N", "I")


def read_class_map(source: Union[str, BinaryIO],
                   name: Optional[str] = None) -> np.ndarray:
  """int32 [H, W]: a label map's class ids, as stored (8/16-bit gray, or the
  palette indices of a palette PNG). Colour files are refused
  (UnreadableImageError): their pixels are no ids."""
  name = name if name is not None else str(source)
  image = open_image(source, name)
  if image.mode not in _CLASS_MAP_MODES:
    raise UnreadableImageError(
        f"{name}: not a class-id map (mode {image.mode}; expected one "
        "integer id per pixel: 8- or 16-bit gray or palette)")
  return np.asarray(image).astype(np.int32)


def too_small(shape: tuple[int, ...], min_side: int) -> bool:
  """True when an [H, W, ...] image is below `min_side` pixels on a side."""
  return min(shape[0], shape[1]) < min_side
