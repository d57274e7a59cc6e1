r"""How far wCtr*'s scores move with settings a published row may differ in.

  PYTHONPATH=. python tools/wctr_sensitivity.py --images=<dir> --masks=<dir> \
    --every=17 --out=wctr_sensitivity.json

For every `--every`-th image (sorted by name; masks matched by file stem,
binarised at >= 0.5 of their range) wCtr* (gansseg_jax/eval/baselines/wctr.py)
is run under each setting below, and per-image metrics are computed with
numpy at the image's own size, the conventions of docs/method.md section 8:
maxF = max over t_k = k/255 of the mean over images of F_beta (beta^2 = 0.3),
IoU and acc of [map > 0.5] averaged over images. Extra rows per setting:
  raw      the solve's output s without the final per-image min-max
           (s is clipped to [0, 1]; the published maps are min-max scaled)
  pooled   IoU and acc from counts summed over all images (one image's
           weight = its pixels) instead of the mean of per-image values
  adaptive [map > 2 mean(map)] (the saliency toolbox's adaptive threshold)
Settings: the image at its own size vs resized to a shorter side of 128
(the GAN paper's segmentation resolution) with 600 or fewer pixels per
superpixel, SLIC's superpixel size and compactness. Prints a table and
writes the numbers to --out. A dev tool: not imported by the package.
"""
import argparse
import json
import os
import time

import numpy as np
from PIL import Image

from gansseg_jax.data import preprocess
from gansseg_jax.eval.baselines import wctr

_BETA2 = 0.3
_THRESHOLDS = np.arange(255) / 255.0
_SETTINGS = {  # name: (variant, short side (0 = own size), overrides)
    "own size": ("authors", 0, {}),
    "short side 128": ("authors", 128, {}),
    "short 128, px/sp 150": ("authors", 128, {"pixels_per_superpixel": 150.0}),
    "px/sp 300": ("authors", 0, {"pixels_per_superpixel": 300.0}),
    "px/sp 1200": ("authors", 0, {"pixels_per_superpixel": 1200.0}),
    "compactness 40": ("authors", 0, {"compactness": 40.0}),
    "paper, own size": ("paper", 0, {}),
    "paper, short side 128": ("paper", 128, {}),
}


def _params(variant: str, overrides: dict) -> wctr.Params:
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config().eval.wctr
  values = {f: config[f] for f in config.keys()}
  values.update(variant=variant, **overrides)
  return wctr.Params(**{f.name: f.type(values[f.name])
                        for f in wctr.dataclasses.fields(wctr.Params)})


def raw_saliency(image: np.ndarray, params: wctr.Params) -> np.ndarray:
  """superpixel_saliency's solve before its min-max, painted on the pixels."""
  labels = wctr.slic_labels(image, params)
  sp = wctr.describe(image, labels, params.boundary_width)
  n = len(sp.lab)
  colour = wctr.pairwise_distance(sp.lab)
  authors = params.variant == "authors"
  sigmas = (wctr.dynamic_sigmas(sp.adjacency, colour) if authors else
            wctr.Sigmas(0.0, params.sigma_clr, params.sigma_clr))
  bndcon = wctr.boundary_connectivity(sp, colour, params, sigmas)
  background = 1.0 - np.exp(-np.square(bndcon)
                            / (2.0 * params.sigma_bndcon ** 2))
  foreground = wctr.weighted_contrast(colour, sp.position, background, params)
  bg_weight = background
  if authors:
    bg_weight = np.where(bndcon > params.authors_high_bndcon,
                         params.authors_high_weight, background)
    bg_weight = bg_weight * params.authors_bg_lambda
  s = wctr.optimise(wctr.smoothness_weights(sp, colour, params, sigmas),
                    bg_weight, foreground) if n > 1 else np.zeros(n)
  return s[labels].astype(np.float32)


def _resize_short(image: np.ndarray, short: int) -> np.ndarray:
  h, w = image.shape[:2]
  scale = short / min(h, w)
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


class Scores:
  """Per-image F curves, IoU, acc; pooled counts; adaptive-threshold IoU."""

  def __init__(self):
    self.f, self.iou, self.acc, self.iou_adaptive = [], [], [], []
    self.pooled = np.zeros(3)  # intersection, union, correct
    self.pixels = 0

  def add(self, p: np.ndarray, g: np.ndarray) -> None:
    above = p[None] > _THRESHOLDS[:, None, None]
    tp = (above & g).sum((1, 2)).astype(float)
    pp = above.sum((1, 2)).astype(float)
    precision = np.where(pp > 0, tp / np.maximum(pp, 1), 1.0)
    recall = tp / g.sum() if g.any() else np.ones_like(tp)
    denominator = _BETA2 * precision + recall
    self.f.append(np.where(denominator > 0, (1 + _BETA2) * precision * recall
                           / np.maximum(denominator, 1e-12), 0.0))
    for binary, out in ((p > 0.5, self.iou), (p > 2 * p.mean(),
                                              self.iou_adaptive)):
      inter, union = (binary & g).sum(), (binary | g).sum()
      out.append(inter / union if union else 1.0)
    binary = p > 0.5
    self.acc.append((binary == g).mean())
    self.pooled += [(binary & g).sum(), (binary | g).sum(), (binary == g).sum()]
    self.pixels += g.size

  def result(self) -> dict:
    return {"maxF": float(np.mean(self.f, axis=0).max()),
            "IoU": float(np.mean(self.iou)), "acc": float(np.mean(self.acc)),
            "IoU pooled": float(self.pooled[0] / self.pooled[1]),
            "acc pooled": float(self.pooled[2] / self.pixels),
            "IoU adaptive": float(np.mean(self.iou_adaptive))}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", required=True)
  parser.add_argument("--masks", required=True)
  parser.add_argument("--every", type=int, default=5)
  parser.add_argument("--out", default="wctr_sensitivity.json")
  args = parser.parse_args()
  stems = sorted(os.path.splitext(n)[0] for n in os.listdir(args.images))
  stems = stems[::args.every]
  masks = {os.path.splitext(n)[0]: n for n in os.listdir(args.masks)}
  scores = {name: {"min-max": Scores(), "raw": Scores()} for name in _SETTINGS}
  params = {name: _params(v, o) for name, (v, _, o) in _SETTINGS.items()}
  seconds = {name: 0.0 for name in _SETTINGS}
  for i, stem in enumerate(stems):
    name = next(n for n in os.listdir(args.images)
                if os.path.splitext(n)[0] == stem)
    image = np.asarray(Image.open(os.path.join(args.images, name))
                       .convert("RGB"))
    mask = np.asarray(Image.open(os.path.join(args.masks, masks[stem]))
                      .convert("L")) >= 128
    for setting, (_, short, _) in _SETTINGS.items():
      start = time.process_time()
      work = _resize_short(image, short) if short else image
      raw = raw_saliency(work, params[setting])
      if short:
        raw = preprocess.resize_map(raw, image.shape[:2])
      seconds[setting] += time.process_time() - start
      span = raw.max() - raw.min()
      scaled = (raw - raw.min()) / span if span > 0 else np.zeros_like(raw)
      scores[setting]["min-max"].add(np.clip(scaled, 0, 1), mask)
      scores[setting]["raw"].add(np.clip(raw, 0, 1), mask)
    print(f"{i + 1}/{len(stems)} {stem}", flush=True)
  out = {"images": len(stems), "every": args.every,
         "cpu_seconds_per_image": {k: v / len(stems)
                                   for k, v in seconds.items()},
         "results": {s: {k: v.result() for k, v in by.items()}
                     for s, by in scores.items()}}
  with open(args.out, "w") as f:
    json.dump(out, f, indent=1)
  for setting, by in out["results"].items():
    for kind, r in by.items():
      print(f"{setting:24s} {kind:8s} " + " ".join(
          f"{k} {v:.3f}" for k, v in r.items()))


if __name__ == "__main__":
  main()
