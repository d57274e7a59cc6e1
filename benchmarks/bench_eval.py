"""Evaluation throughput (images/s) over PASCAL-S with stand-in predictors.

  .venv/bin/python benchmarks/bench_eval.py [--data datasets/pascal-s]
      [--unet_images 128] [--unet_width 64]

The whole `eval` path of one dataset (gansseg_jax.eval.evaluate.evaluate_source:
decode, resize to a shorter side of 128, bucketed fixed-shape model calls,
resize back, jitted streaming metrics, PxAP) on the default JAX backend, with
  - `brightness`: a pixel-wise numpy predictor (no model cost: the pipeline's
    own throughput), over every image;
  - `unet_w<width>`: the paper's U-Net (gansseg_jax.models.unet) with random
    weights in eval mode, jitted, over the first --unet_images images (a
    trained U-Net costs the same).
Each is run twice: `cold` includes the jit compilations of every bucket
shape, `warm` reuses them. `predict_s` is the time spent inside the model
calls (results fetched), the rest is data and metrics.
Skips (writes nothing) when the data folder is absent. Writes
benchmarks/results/bench_eval.json and prints a markdown table.
"""
import argparse
import json
import os
import platform
import time

from flax import nnx
import jax
import numpy as np

from gansseg_jax.infra import machine
from gansseg_jax.data import sources
from gansseg_jax.eval import evaluate
from gansseg_jax.infra import config_files
from gansseg_jax.models import unet as unet_lib

RESULTS = os.path.join(os.path.dirname(__file__), "results", "bench_eval.json")
DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "datasets",
                            "pascal-s")

def default_eval_config():
  """config.eval of configs/default.py (loaded by path: run as a script)."""
  return config_files.load_checkout("default").eval


def brightness(images):
  return (np.asarray(images).mean(axis=-1) + 1.0) / 2.0


def random_unet(width: int):
  """predict(images) -> probs of a randomly initialised U-Net (eval mode)."""
  model = unet_lib.UNet(width, bn_momentum=0.9, bn_eps=1e-5,
                        rngs=nnx.Rngs(0))
  model.eval()
  graphdef, state = nnx.split(model)

  @jax.jit
  def forward(state, images):
    return unet_lib.foreground_probability(nnx.merge(graphdef, state)(images))

  return lambda images: forward(state, images)


class Timed:
  """Wraps predict; adds up the wall time of its calls (results on host)."""

  def __init__(self, predict):
    self._predict = predict
    self.seconds = 0.0

  def __call__(self, images):
    start = time.perf_counter()
    probs = np.asarray(self._predict(images))
    self.seconds += time.perf_counter() - start
    return probs


def run(predict, data: str, max_images: int, eval_config) -> dict:
  eval_config = eval_config.copy_and_resolve_references()
  eval_config.max_images = max_images
  out = {}
  for phase in ("cold", "warm"):
    timed = Timed(predict)
    source = sources.open_source(f"folder:{data}", eval_config)
    start = time.perf_counter()
    result = evaluate.evaluate_source(timed, source, eval_config, 1e9)
    seconds = time.perf_counter() - start
    out[phase] = {"images": result["images"], "seconds": seconds,
                  "images_per_s": result["images"] / seconds,
                  "predict_s": timed.seconds,
                  "model_calls": result["model_calls"],
                  "maxF": result["maxF"], "IoU": result["IoU"]}
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default=DEFAULT_DATA)
  parser.add_argument("--unet_images", type=int, default=128)
  parser.add_argument("--unet_width", type=int, default=64)
  args = parser.parse_args()
  if not os.path.isdir(os.path.join(args.data, "images")):
    print(f"skipped: {args.data} not found")
    return
  eval_config = default_eval_config()
  results = {
      "brightness": run(brightness, args.data, 0, eval_config),
      f"unet_w{args.unet_width}": run(random_unet(args.unet_width), args.data,
                                      args.unet_images, eval_config),
  }
  document = {
      "machine": {"platform": platform.platform(),
                  "processor": machine.cpu_model(), "cpus": machine.usable_cores(),
                  "jax_backend": jax.default_backend(),
                  "devices": [str(d) for d in jax.devices()]},
      "data": os.path.abspath(args.data),
      "eval_config": eval_config.to_dict(),
      "results": results,
  }
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump(document, f, indent=2, sort_keys=True)
  print(f"machine: {machine.describe()}, "
        f"backend {jax.default_backend()}")
  print("| predictor | images | cold img/s | warm img/s | warm predict share |"
        " model calls |")
  print("|---|---:|---:|---:|---:|---:|")
  for name, phases in results.items():
    warm = phases["warm"]
    print(f"| {name} | {warm['images']} | {phases['cold']['images_per_s']:.1f} "
          f"| {warm['images_per_s']:.1f} "
          f"| {warm['predict_s'] / warm['seconds']:.0%} "
          f"| {warm['model_calls']} |")


if __name__ == "__main__":
  main()
