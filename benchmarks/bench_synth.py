"""Cost of mask synthesis: each filter, the whole batch, and CC vs scipy.

  .venv/bin/python benchmarks/bench_synth.py [--batch 95] [--size 128]

Runs on the default JAX backend (CPU here) with a stand-in generator: a
fixed random linear map z [120] -> an 8x8x3 image, bilinearly upsampled to
size x size and squashed by tanh, so G(z) and G(z + h) are smooth and the
lighting rule gives blob-like masks. Times (best of --repeats, compiled):
  - the stand-in generator on 2 x candidates latents (what one batch needs);
  - the lighting mask and each filter on the candidates' masks/images;
  - `synthesize` with every filter on, and with every filter off;
  - the components filter against a per-sample scipy.ndimage.label loop
    (label, sizes, removal) on realistic masks and on worst-case spirals.
Writes benchmarks/results/bench_synth.json and prints a markdown table.
`generator_forward_s` (the full BigBiGAN generator at the same batch) is left
null here, to be filled by a benchmark that has that generator; then
`filters_fraction_of_generator` = filters_total_s / generator_forward_s.
"""
import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy import ndimage

from gansseg_jax.infra import machine
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import filters
from gansseg_jax.synth import latents
from gansseg_jax.synth import masks as masks_lib

Z_DIM = 120
COARSE = 8
RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "bench_synth.json")


def stand_in_generator(size):
  """generate(params, z) -> smooth [n, size, size, 3] images in [-1, 1]."""

  def generate(params, z):
    coarse = (z @ params["w"]).reshape(z.shape[0], COARSE, COARSE, 3)
    fine = jax.image.resize(coarse, (z.shape[0], size, size, 3), "bilinear")
    return jnp.tanh(fine)

  w = jax.random.normal(jax.random.key(0), (Z_DIM, COARSE * COARSE * 3))
  return generate, {"w": w / np.sqrt(Z_DIM)}


def spiral(n):
  m = np.zeros((n, n), bool)
  lo, hi = 0, n - 1
  while lo <= hi:
    m[lo, lo:hi + 1] = True
    m[lo:hi + 1, hi] = True
    m[hi, lo:hi + 1] = True
    if lo + 2 <= hi:
      m[lo + 2:hi + 1, lo] = True
      m[lo + 2, lo:lo + 3] = True
    lo += 2
    hi -= 2
  return m


def best_time(fn, *args, repeats):
  """Best wall time of a compiled call (first call = compile, not counted)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def scipy_components_filter(masks, structure, ratio=0.2):
  """The per-sample CPU loop the device filter replaces."""
  out = np.zeros_like(masks)
  for i, mask in enumerate(masks):
    comp, num = ndimage.label(mask, structure=structure)
    if num:
      sizes = np.bincount(comp.ravel())
      sizes[0] = 0
      keep = sizes >= ratio * sizes.max()
      keep[0] = False
      out[i] = keep[comp]
  return out


def scipy_time(masks, structure, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    scipy_components_filter(masks, structure)
    times.append(time.perf_counter() - start)
  return min(times)


def synth_config(**overrides):
  c = ml_collections.ConfigDict(dict(
      latents="prior", truncation=0.0, embedding_noise=0.2,
      mask_rule="lighting", shift_radius=5.0, oversample=1.5,
      max_starved_batches=20, starved_fraction=0.05, size_filter=True,
      max_foreground=0.5, strict_size=False, histogram_filter=True, histogram_rule="paper",
      histogram_bins=12, histogram_window=3, components_filter=True,
      connectivity=4, min_component_ratio=0.2, strict_ratio=False))
  c.update(overrides)
  return c


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=95)
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  repeats = args.repeats

  config = synth_config()
  spec = batch_lib.SynthSpec.from_config(config)
  n = spec.num_candidates(args.batch)
  generate, params = stand_in_generator(args.size)
  sample = latents.make_sampler(config, Z_DIM)
  direction = jax.random.normal(jax.random.key(1), (Z_DIM,))
  z = sample(jax.random.key(2), n)
  h = batch_lib.shift_vector(direction, spec.shift_radius)
  both_z = jnp.concatenate([z, z + h], axis=0)

  gen = jax.jit(generate)
  both = gen(params, both_z)
  images, shifted = both[:n], both[n:]
  lighting = jax.jit(masks_lib.lighting_mask)
  masks = lighting(images, shifted)

  timings = {}
  timings["stand_in_generator_s"] = best_time(gen, params, both_z,
                                              repeats=repeats)
  timings["lighting_mask_s"] = best_time(lighting, images, shifted,
                                         repeats=repeats)
  timings["size_filter_s"] = best_time(
      lambda m: filters.size_filter(m, max_foreground=0.5), masks,
      repeats=repeats)
  for rule in filters.HISTOGRAM_RULES:
    timings[f"histogram_filter_{rule}_s"] = best_time(
        lambda s, rule=rule: filters.histogram_filter(
            s, rule=rule, bins=12, window=3), shifted, repeats=repeats)

  spirals = np.stack([spiral(args.size), spiral(args.size).T,
                      spiral(args.size)[::-1, ::-1],
                      spiral(args.size)[:, ::-1]] * (n // 4 + 1))[:n]
  cases = {"realistic": np.asarray(masks), "spiral": spirals}
  components = {}
  for connectivity in filters.CONNECTIVITIES:
    structure = ndimage.generate_binary_structure(2, connectivity // 4)
    cc = lambda m, c=connectivity: filters.connected_components_filter(
        m, connectivity=c, min_ratio=0.2, strict=False)
    for case, case_masks in cases.items():
      _, rounds = filters.label_components(case_masks,
                                           connectivity=connectivity)
      device_s = best_time(cc, case_masks, repeats=repeats)
      scipy_s = scipy_time(case_masks, structure, repeats)
      same = np.array_equal(
          np.asarray(cc(case_masks)),
          scipy_components_filter(case_masks, structure))
      components[f"{case}_conn{connectivity}"] = {
          "jax_s": device_s, "scipy_loop_s": scipy_s,
          "rounds": int(rounds), "identical_output": bool(same),
          "foreground_fraction": float(case_masks.mean())}
      if case == "realistic":
        timings[f"components_filter_conn{connectivity}_s"] = device_s

  run = lambda key, spec_: batch_lib.synthesize(
      key, generate, params, direction, sample, spec_, args.batch)
  key = jax.random.key(3)
  timings["synthesize_all_filters_s"] = best_time(run, key, spec,
                                                  repeats=repeats)
  no_filters = batch_lib.SynthSpec.from_config(synth_config(
      size_filter=False, histogram_filter=False, components_filter=False))
  timings["synthesize_no_filters_s"] = best_time(run, key, no_filters,
                                                 repeats=repeats)
  stats = {k: int(v) for k, v in run(key, spec).stats.items()}
  filters_total = (timings["size_filter_s"]
                   + timings["histogram_filter_paper_s"]
                   + timings["components_filter_conn4_s"])

  result = {
      "machine": {
          "backend": jax.default_backend(),
          "device": str(jax.devices()[0].device_kind),
          "cpu_count": machine.usable_cores(), "processor": machine.cpu_model(),
          "platform": platform.platform(), "jax": jax.__version__,
          "load_average_1min_after": os.getloadavg()[0]},
      "setup": {"batch_size": args.batch, "candidates": n,
                "image_size": args.size, "repeats": repeats,
                "mask_rule": "lighting", "histogram_rule": "paper",
                "connectivity": 4, "generator": "stand-in (linear 8x8 + "
                "bilinear upsampling + tanh), not BigBiGAN"},
      "timings_s": timings,
      "components_vs_scipy": components,
      "synthesize_stats_stand_in": stats,
      "filters_total_s": filters_total,
      "generator_forward_s": None,
      "filters_fraction_of_generator": None,
  }
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump(result, f, indent=2, sort_keys=True)
    f.write("\n")

  device = (f"{machine.describe()} ("
            f"load average {os.getloadavg()[0]:.1f})")
  print(f"\nbench_synth on {device}, batch {args.batch} ({n} candidates), "
        f"{args.size}x{args.size}\n")
  print("| step | time (ms) |\n|---|---|")
  for name, seconds in timings.items():
    print(f"| {name[:-2]} | {1000 * seconds:.1f} |")
  print(f"| filters total (size + histogram + components) | "
        f"{1000 * filters_total:.1f} |")
  print("\n| components filter | masks | JAX (ms) | scipy loop (ms) | rounds |"
        " identical |\n|---|---|---|---|---|---|")
  for name, row in components.items():
    case, conn = name.rsplit("_", 1)
    print(f"| {conn} | {case} | {1000 * row['jax_s']:.1f} | "
          f"{1000 * row['scipy_loop_s']:.1f} | {row['rounds']} | "
          f"{row['identical_output']} |")
  print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
  main()
