"""The README's portraits picture, from a finished configs/celeba.py workdir.

  python docs/images/celeba_figure.py runs/celeba docs/images/celeba.png

One row per portrait of the evaluated half (the first ones eval kept, face
target): the photo with the true face outlined, then the probability maps of
the U-Net trained on GAN pairs only, of that U-Net after self-training on the
other half's unlabelled photos, and of the supervised ceiling.
"""
import os
import sys

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, REPO)  # Run as a script from anywhere.

# pylint: disable=g-import-not-at-top,wrong-import-position
from configs import celeba
from gansseg_jax.eval import layout
from gansseg_jax.report import images as pics

ROWS = 6
HEIGHT = 80
PREDICTORS = ("unet", "selftrain", "supervised")


def _samples(workdir: str, predictor: str) -> np.lib.npyio.NpzFile:
  return np.load(os.path.join(workdir, layout.samples_path(
      celeba.portraits("face", "2/2"), predictor)))


def figure(workdir: str) -> np.ndarray:
  found = {name: _samples(workdir, name) for name in PREDICTORS}
  rows = []
  for j in range(ROWS):
    first = found[PREDICTORS[0]]
    photo = pics.fit_height(first[f"image_{j}"], HEIGHT)
    truth = pics.fit_height(pics.gray_to_rgb(first[f"mask_{j}"] * 255),
                            HEIGHT)[..., 0] / 255.0
    cells = [pics.outline(photo, truth)]
    cells += [pics.gray_to_rgb(np.asarray(Image.fromarray(
        found[name][f"prob_{j}"]).resize((HEIGHT, HEIGHT), Image.BILINEAR)))
              for name in PREDICTORS]
    rows.append(pics.row(cells, HEIGHT, 2))
  return pics.column(rows, 2)


if __name__ == "__main__":
  Image.fromarray(figure(sys.argv[1])).save(sys.argv[2], optimize=True)
