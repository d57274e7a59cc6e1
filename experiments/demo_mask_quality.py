r"""How good are the demo's synthetic masks? Judged by a U-Net that knows.

  make demo   # or any run of configs/demo.py, for W/generator and W/bg_direction.npy
  python experiments/demo_mask_quality.py [--workdir=runs/demo] [--samples=1024] [--steps=1500]

GAN samples have no ground truth. Their stand-in here is the "oracle": the
demo's U-Net trained on procedural scenes with exact masks
(`demo_ceiling.train_on_exact_masks`, IoU 0.997 on the held-out scenes). Its
thresholded prediction on G(z) is compared with the mask the demo's synthesis
(W/config.json's `synth`: rule, shift, filters) makes for the same z, on the
samples the filters keep. The IoU is split by the sample's polarity, the
oracle's mean gray inside minus outside: dark objects on lit backgrounds
against lit objects on dark ones. A direction that segments makes both halves
high; the gap between this IoU and 1 is what the U-Net has to average away.

Writes experiments/results/demo_mask_quality.json and prints a markdown table.
"""
import json
import os
import sys
import tempfile

from absl import app
from absl import flags
import jax
import ml_collections
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks import demo_ceiling  # pylint: disable=g-import-not-at-top
from configs import demo
from gansseg_jax.infra import fileio
from gansseg_jax.infra import machine
from gansseg_jax.convert import load as generator_load
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import inputs as inputs_lib
from gansseg_jax.synth import masks as masks_lib
from gansseg_jax.train import load as unet_load

_WORKDIR = flags.DEFINE_string("workdir", "runs/demo",
                               "A workdir of configs/demo.py after 'score'.")
_SAMPLES = flags.DEFINE_integer("samples", 1024, "GAN samples judged.")

RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "demo_mask_quality.json")
LATENT_SEED = 123
CHUNK = 256


def _workdir_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise app.UsageError(f"{path}: no such file; run make demo first")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Per-sample IoU of bool masks [N, H, W]; 1 where both are empty."""
  union = (a | b).sum((1, 2))
  return np.where(union > 0, (a & b).sum((1, 2)) / np.maximum(union, 1), 1.0)


def main(argv):
  del argv
  workdir = _WORKDIR.value
  config = _workdir_config(workdir)
  # --steps comes with demo_ceiling: the oracle's steps, 0 = the demo's.
  steps = flags.FLAGS.steps or demo.get_config().train.steps
  state, _, train_seconds = demo_ceiling.train_on_exact_masks(config, steps)
  with tempfile.TemporaryDirectory() as oracle_dir:
    unet_load.save_unet(oracle_dir, state)
    oracle = unet_load.load_predictor(config, oracle_dir)

  spec, direction, _, affine_maps = inputs_lib.load(config, workdir)
  generate, gen_params = generator_load.load_generator(config, workdir)
  candidates = jax.jit(lambda z: batch_lib.make_candidates(
      z, generate, gen_params, direction, spec, affine_maps))
  z = jax.random.normal(jax.random.key(LATENT_SEED),
                        (_SAMPLES.value, config.generator.z_dim))
  images, masks, keep = [], [], []
  for start in range(0, _SAMPLES.value, CHUNK):
    cand = jax.device_get(candidates(z[start:start + CHUNK]))
    images.append(cand.images)
    masks.append(cand.masks)
    keep.append(cand.keep)
  images, masks, keep = map(np.concatenate, (images, masks, keep))
  truth = np.concatenate([np.asarray(oracle(images[i:i + CHUNK])) > 0.5
                          for i in range(0, len(images), CHUNK)])

  gray = np.asarray(masks_lib.gray(images))
  inside = (gray * truth).sum((1, 2)) / np.maximum(truth.sum((1, 2)), 1)
  outside = (gray * ~truth).sum((1, 2)) / np.maximum((~truth).sum((1, 2)), 1)
  lit = inside > outside
  iou = _iou(masks, truth)
  out = {
      "machine": machine.describe(), "workdir": os.path.abspath(workdir),
      "oracle_steps": steps, "oracle_train_seconds": round(train_seconds, 1),
      "samples": int(len(keep)), "kept": round(float(keep.mean()), 3),
      "mask_rule": spec.mask_rule, "shift_radius": spec.shift_radius,
      "iou_kept": round(float(iou[keep].mean()), 3),
      "iou_kept_dark_objects": round(float(iou[keep & ~lit].mean()), 3),
      "iou_kept_lit_objects": round(float(iou[keep & lit].mean()), 3),
      "share_kept_below_0.3": round(float((iou[keep] < 0.3).mean()), 3),
      "mask_area_kept": round(float(masks[keep].mean()), 3),
      "oracle_area_kept": round(float(truth[keep].mean()), 3),
  }
  fileio.write_json(RESULTS, out)
  print("| rule, shift | kept | IoU vs oracle (kept) | dark objects | "
        "lit objects | kept with IoU < 0.3 |")
  print("|---|---|---|---|---|---|")
  print(f"| {out['mask_rule']}, {out['shift_radius']} | {out['kept']:.3f} | "
        f"{out['iou_kept']:.3f} | {out['iou_kept_dark_objects']:.3f} | "
        f"{out['iou_kept_lit_objects']:.3f} | "
        f"{out['share_kept_below_0.3']:.3f} |")


if __name__ == "__main__":
  app.run(main)
