"""Decoding any image to RGB, masks to binary, and bad files to one error."""
import io
import os

import numpy as np
from PIL import Image
import pytest

from gansseg_jax.data import images


def _save(tmp_path, name, image, **kwargs):
  path = os.path.join(tmp_path, name)
  image.save(path, **kwargs)
  return path


def test_modes_convert_to_rgb(tmp_path):
  rng = np.random.default_rng(0)
  gray = rng.integers(0, 256, (6, 9)).astype(np.uint8)
  path = _save(tmp_path, "g.png", Image.fromarray(gray))
  np.testing.assert_array_equal(images.read_rgb(path),
                                np.repeat(gray[:, :, None], 3, axis=2))
  # Palette: each index becomes its palette colour.
  palette_image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
  palette_image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
  rgb = images.read_rgb(_save(tmp_path, "p.png", palette_image))
  np.testing.assert_array_equal(rgb[0, 0], [10, 20, 30])
  np.testing.assert_array_equal(rgb[0, 1], [200, 100, 50])
  # RGBA: alpha-composited over white.
  rgba = np.zeros((2, 2, 4), np.uint8)
  rgba[..., 0] = 200
  rgba[0, 0, 3], rgba[0, 1, 3], rgba[1, :, 3] = 255, 0, 128
  rgb = images.read_rgb(_save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA")))
  np.testing.assert_array_equal(rgb[0, 0], [200, 0, 0])
  np.testing.assert_array_equal(rgb[0, 1], [255, 255, 255])
  np.testing.assert_allclose(rgb[1, 0], [200 * 128 / 255 + 255 * 127 / 255,
                                         255 * 127 / 255, 255 * 127 / 255],
                             atol=1)
  # 16-bit gray: scaled by 65535.
  sixteen = np.array([[0, 65535], [32896, 257]], np.uint16)
  rgb = images.read_rgb(_save(tmp_path, "s.png", Image.fromarray(sixteen)))
  np.testing.assert_array_equal(rgb[..., 0], [[0, 255], [128, 1]])
  # Grayscale JPEG and CMYK JPEG decode to three channels.
  assert images.read_rgb(_save(tmp_path, "g.jpg", Image.fromarray(gray),
                               quality=95)).shape == (6, 9, 3)
  cmyk = Image.new("CMYK", (5, 4), (0, 0, 0, 0))
  np.testing.assert_array_equal(images.read_rgb(_save(tmp_path, "c.jpg", cmyk)),
                                np.full((4, 5, 3), 255))


def test_unreadable_files_raise_one_line(tmp_path):
  garbage = os.path.join(tmp_path, "x.jpg")
  with open(garbage, "wb") as f:
    f.write(b"not an image at all")
  with pytest.raises(images.UnreadableImageError, match="x.jpg"):
    images.read_rgb(garbage)
  buffer = io.BytesIO()
  Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(buffer, "JPEG")
  truncated = os.path.join(tmp_path, "t.jpg")
  with open(truncated, "wb") as f:
    f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
  with pytest.raises(images.UnreadableImageError, match="t.jpg"):
    images.read_rgb(truncated)
  with pytest.raises(images.UnreadableImageError):
    images.read_rgb(os.path.join(tmp_path, "missing.png"))


def test_masks_binarised_at_half_of_their_type_range(tmp_path):
  soft = np.array([[0, 127, 128, 255]], np.uint8)
  path = _save(tmp_path, "m.png", Image.fromarray(soft))
  np.testing.assert_array_equal(images.read_mask(path),
                                [[False, False, True, True]])
  # An all-dark soft mask stays empty (range of the type, not of the values).
  dark = _save(tmp_path, "d.png", Image.fromarray(np.full((2, 2), 100,
                                                          np.uint8)))
  assert not images.read_mask(dark).any()
  sixteen = np.array([[32767, 32768]], np.uint16)
  path16 = _save(tmp_path, "m16.png", Image.fromarray(sixteen))
  np.testing.assert_array_equal(images.read_mask(path16), [[False, True]])
  one_bit = Image.fromarray(np.array([[True, False]]))
  np.testing.assert_array_equal(
      images.read_mask(_save(tmp_path, "b.png", one_bit)), [[True, False]])
  rgb = np.zeros((1, 2, 3), np.uint8)
  rgb[0, 1] = 255
  np.testing.assert_array_equal(
      images.read_mask(_save(tmp_path, "c.png", Image.fromarray(rgb))),
      [[False, True]])


def test_too_small():
  assert images.too_small((7, 100, 3), 8)
  assert images.too_small((100, 7), 8)
  assert not images.too_small((8, 8, 3), 8)


def test_image_extensions_cover_common_formats():
  extensions = images.image_extensions()
  assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif"} <= extensions
