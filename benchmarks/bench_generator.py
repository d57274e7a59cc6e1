"""BigGAN generator forward pass: throughput (images/s) and XLA-counted FLOPs.

  .venv/bin/python benchmarks/bench_generator.py [--batch 8] [--dtype float32]
      [--iters 5]

The full-size BigBiGAN generator of configs/default.py (BigGAN-128, ch 96,
attention at 64) with random parameters (values do not change the cost),
`jax.jit(generate)` on the default JAX backend. FLOPs per image are XLA's own
count for the compiled program (`.lower().compile().cost_analysis()`) divided
by the batch. Throughput is measured over --iters calls after one warm-up
call (compilation excluded, compile time reported separately).
Updates benchmarks/results/bench_generator.json (one entry per device kind,
batch and dtype; the machine and the load average before/after are
recorded) and prints its markdown table. On an accelerator:
  --batch 95 --dtype float32   and   --batch 95 --dtype bfloat16
"""
import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from gansseg_jax.infra import machine
from gansseg_jax.infra import config_files
from gansseg_jax.models import biggan

RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "bench_generator.json")

def default_spec() -> biggan.BigGANSpec:
  """BigGANSpec of configs/default.py (loaded by path: run as a script)."""
  g = config_files.load_checkout("default").generator
  return biggan.BigGANSpec(g.resolution, g.z_dim, g.ch, g.shared_dim,
                           g.attention_resolution, g.bn_eps)


def measure(batch: int, dtype: str, iters: int) -> dict:
  spec = default_spec()
  params = jax.device_put(biggan.init_params(spec, 0))
  z = jax.device_put(np.random.default_rng(0).standard_normal(
      (batch, spec.z_dim)).astype(np.float32))
  start = time.perf_counter()
  compiled = jax.jit(biggan.make_generate(spec, dtype)).lower(params,
                                                              z).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  compiled(params, z).block_until_ready()  # Warm-up.
  start = time.perf_counter()
  for _ in range(iters):
    out = compiled(params, z)
  out.block_until_ready()
  seconds = time.perf_counter() - start
  device = jax.devices()[0]
  return {
      "device": f"{device.platform}:{device.device_kind}",
      "host": platform.node(),
      "cpu_count": machine.usable_cores(),
      "batch": batch,
      "dtype": dtype,
      "resolution": spec.resolution,
      "ch": spec.ch,
      "iters": iters,
      "compile_s": round(compile_s, 2),
      "seconds_per_batch": seconds / iters,
      "images_per_s": batch * iters / seconds,
      "gflops_per_image": float(cost["flops"]) / batch / 1e9,
      "jax": jax.__version__,
  }


def table(entries: list[dict]) -> str:
  rows = ["| device | batch | dtype | images/s | s/batch | GFLOP/image "
          "(XLA) | compile s |", "|---|---|---|---|---|---|---|"]
  for e in entries:
    load = (f", load {e['load'][0]:.1f}/{e['load'][1]:.1f}" if "load" in e
            else "")
    rows.append(f"| {e['device']} ({e['cpu_count']} CPUs{load}) | "
                f"{e['batch']} | "
                f"{e['dtype']} | {e['images_per_s']:.3g} | "
                f"{e['seconds_per_batch']:.3g} | {e['gflops_per_image']:.1f} "
                f"| {e['compile_s']} |")
  return "\n".join(rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"),
                      default="float32")
  parser.add_argument("--iters", type=int, default=5)
  args = parser.parse_args()
  load_before = os.getloadavg()[0]
  entry = measure(args.batch, args.dtype, args.iters)
  entry.update(machine=machine.describe(),
               load=[load_before, os.getloadavg()[0]])
  entries = []
  if os.path.exists(RESULTS):
    with open(RESULTS) as f:
      entries = json.load(f)["runs"]
  def key(e):
    return e["device"], e["batch"], e["dtype"]
  entries = [e for e in entries if key(e) != key(entry)] + [entry]
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump({"benchmark": "bench_generator", "runs": entries}, f, indent=2)
  print(table(entries))


if __name__ == "__main__":
  main()
