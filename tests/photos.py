"""Real photos for the tests: scikit-image's bundled sample photos (a core
dependency; the files ship in its wheel), cropped and scaled to many sizes."""
import os

import numpy as np
from PIL import Image
import skimage

_DATA = os.path.join(os.path.dirname(skimage.__file__), "data")
# Colour photographs among scikit-image's bundled files.
SOURCES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
           "hubble_deep_field.jpg", "motorcycle_left.png", "ihc.png",
           "retina.jpg")


def photo(index: int, max_side: int = 160) -> np.ndarray:
  """uint8 RGB [H, W, 3]: source index % 8, a crop that depends on the index,
  scaled so its longer side is at most `max_side` (sizes and aspect ratios
  differ from one index to the next)."""
  image = Image.open(os.path.join(_DATA, SOURCES[index % len(SOURCES)]))
  image = image.convert("RGB")
  width, height = image.size
  turn = index // len(SOURCES)
  left, top = (turn * width) // 7, (turn * height) // 11
  box = (left, top, width - (turn * width) // 9, height - (turn * height) // 5)
  image = image.crop(box)
  scale = min(1.0, (max_side - 13 * turn) / max(image.size))
  size = (max(8, round(image.size[0] * scale)),
          max(8, round(image.size[1] * scale)))
  return np.asarray(image.resize(size, Image.BILINEAR))


def write_photos(folder: str, count: int) -> list[str]:
  """`count` photos as JPEG and PNG files in `folder`; their paths."""
  os.makedirs(folder, exist_ok=True)
  paths = []
  for i in range(count):
    path = os.path.join(folder, f"photo{i:02d}.{'jpg' if i % 2 else 'png'}")
    Image.fromarray(photo(i)).save(path)
    paths.append(path)
  return paths
