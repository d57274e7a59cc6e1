"""Which histogram rule lets samples through: the evidence for the default.

  .venv/bin/python experiments/filter_pass_rates.py NAME=WORKDIR [NAME=WORKDIR ...]

Each WORKDIR is a finished run (W/config.json, W/generator/,
W/bg_direction.npy: stages convert, discover and score). For its direction,
under its own synth settings, the filters' pass rates
(gansseg_jax.synth.pass_rates, 512 pairs, the run's seed) are measured with
config.synth.histogram_rule = 'paper' and = 'authors', the size and
components filters as configured. Writes
experiments/results/filter_pass_rates.json and prints a markdown table
(docs/method.md section 6 cites it).
"""
import json
import os
import sys
import time

import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import machine
from gansseg_jax.convert import load as convert_load
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import latents as synth_latents
from gansseg_jax.synth import pass_rates

SAMPLES = 512
RULES = ("paper", "authors")
RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "filter_pass_rates.json")


def rates_of(workdir: str) -> dict:
  """{rule: PassRates dict} for the run in `workdir` (module docstring)."""
  with open(os.path.join(workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  direction = np.load(os.path.join(workdir, "bg_direction.npy"))
  embeddings = None
  if config.synth.latents == "embeddings":
    embeddings = synth_latents.load_embeddings(
        os.path.join(workdir, "embeddings.npy"), config.generator.z_dim)
  affine_maps = None
  if config.synth.mask_rule == "affine":
    affine_maps = np.load(os.path.join(workdir, "bg_affine.npy"))
  generate, params = convert_load.load_generator(config, workdir)
  sampler = synth_latents.make_sampler(config.synth, config.generator.z_dim,
                                       embeddings)
  out = {"settings": pass_rates.filter_settings(config.synth)}
  for rule in RULES:
    config.synth.histogram_rule = rule
    spec = synth_batch.SynthSpec.from_config(config.synth)
    start = time.perf_counter()
    rates = pass_rates.measure(jax.random.key(config.seed), generate, params,
                               direction, sampler, spec, SAMPLES,
                               affine_maps)
    out[rule] = dict(rates.as_dict(), seconds=time.perf_counter() - start)
  return out


def main(argv: list[str]) -> None:
  runs = dict(arg.split("=", 1) for arg in argv[1:])
  if not runs:
    sys.exit(__doc__)
  results = {"machine": machine.describe(), "load": os.getloadavg(),
             "samples": SAMPLES,
             "runs": {name: rates_of(path) for name, path in runs.items()}}
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump(results, f, indent=1)
  print("| generator | histogram rule | size alone | histogram alone | "
        "kept by every filter |")
  print("|---|---|---|---|---|")
  for name, run in results["runs"].items():
    for rule in RULES:
      r = run[rule]
      print(f"| {name} | {rule} | {r['size']:.1%} | {r['histogram']:.1%} | "
            f"{r['kept']:.1%} |")


if __name__ == "__main__":
  main(sys.argv)
