"""The README's picture, from a finished demo workdir.

  python docs/images/demo_figure.py runs/demo docs/images/demo.png

Top: the chosen direction's strip (three latents; columns G(z + t h), then
the lighting and affine masks). Middle: kept synthetic pairs, the mask
outlined in green. Bottom: held-out scenes with the true mask outlined, and
the U-Net's probability map.
"""
import glob
import json
import os
import sys

import numpy as np
from PIL import Image

from gansseg_jax.report import images as pics

SAMPLES = 6
PREDICTIONS = 3


def figure(workdir: str) -> np.ndarray:
  strip = pics.read_png(sorted(glob.glob(
      os.path.join(workdir, "strips", "rank_01_*.png")))[0])
  strip = pics.upscale(strip, 3)
  folder = os.path.join(workdir, "synthetic")
  with open(os.path.join(folder, "index.csv")) as f:
    kept = [line.split(",")[0] for line in f.readlines()[1:]
            if line.split(",")[2] == "1"][:SAMPLES]
  samples = [pics.outline(
      pics.upscale(pics.read_png(os.path.join(folder, "images", name)), 3),
      pics.upscale(pics.read_png(os.path.join(folder, "masks", name))[..., 0],
                   3) / 255.0) for name in kept]
  with open(os.path.join(workdir, "eval.json")) as f:
    first = next(iter(json.load(f)["datasets"].values()))
  with np.load(os.path.join(workdir, first["samples"])) as data:
    predictions = []
    for j in range(PREDICTIONS):
      image = pics.upscale(data[f"image_{j}"], 3)
      truth = pics.upscale(data[f"mask_{j}"].astype(np.float32), 3)
      prob = pics.upscale(pics.gray_to_rgb(data[f"prob_{j}"]), 3)
      predictions += [pics.outline(image, truth), prob]
  height = samples[0].shape[0]
  return pics.column([strip, pics.row(samples, height, 6),
                      pics.row(predictions, height, 6)], gap=10)


if __name__ == "__main__":
  Image.fromarray(figure(sys.argv[1])).save(sys.argv[2], optimize=True)
