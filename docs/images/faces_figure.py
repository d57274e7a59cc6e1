"""The README's faces picture, from a finished configs/faces.py workdir.

  python docs/images/faces_figure.py runs/faces docs/images/faces.png

Top: the chosen direction's strip (three latents; columns G(z + t h), then
the lighting and affine masks). Middle: kept synthetic pairs of the synth
stage, the mask outlined in green. Bottom: further faces of the synth stage
(drawn with the synth stage's own key, never a training sample), each
followed by the trained U-Net's probability map.
"""
import csv
import glob
import json
import os
import sys

import ml_collections
import numpy as np

from gansseg_jax.report import images as pics
from gansseg_jax.train import load

SAMPLES = 6
PREDICTIONS = 4
ZOOM = 2


def _kept_files(folder: str) -> list[str]:
  with open(os.path.join(folder, "index.csv"), newline="") as f:
    return [row["file"] for row in csv.DictReader(f) if row["kept"] == "1"]


def figure(workdir: str) -> np.ndarray:
  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  strip = pics.upscale(pics.read_png(sorted(glob.glob(
      os.path.join(workdir, "strips", "rank_01_*.png")))[0]), ZOOM)
  folder = os.path.join(workdir, config.export.output_dir)
  files = _kept_files(folder)
  image = lambda name: pics.read_png(os.path.join(folder, "images", name))
  mask = lambda name: pics.read_png(os.path.join(folder, "masks", name))[..., 0]
  pairs = [pics.outline(pics.upscale(image(n), ZOOM),
                        pics.upscale(mask(n), ZOOM) / 255.0)
           for n in files[:SAMPLES]]
  faces = files[SAMPLES:SAMPLES + PREDICTIONS]
  batch = np.stack([image(n) for n in faces]).astype(np.float32) / 127.5 - 1
  probs = np.asarray(load.load_predictor(config, workdir)(batch))
  predictions = []
  for name, prob in zip(faces, probs):
    predictions += [pics.upscale(image(name), ZOOM),
                    pics.upscale(pics.gray_to_rgb(
                        np.round(prob * 255).astype(np.uint8)), ZOOM)]
  height = pairs[0].shape[0]
  return pics.column([strip, pics.row(pairs, height, 4),
                      pics.row(predictions, height, 4)])


if __name__ == "__main__":
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(figure(sys.argv[1])).save(sys.argv[2])
