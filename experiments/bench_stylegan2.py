"""StyleGAN2 generator forward images/s: Flax beside NVlabs' PyTorch, one run.

  .venv/bin/python experiments/bench_stylegan2.py [--nvlabs_dir=SRC]
      [--reference_python=PY] [--resolution 256] [--batch 4] [--iters 3]
      [--dtype float32|bfloat16]

Both generators are config F at --resolution (z_dim = w_dim = 512, 8 mapping
layers, channel_base 32768, channel_max 512, no clamp, const noise) with
random weights (values do not change the cost), z -> image. Flax:
`jax.jit(stylegan2.make_generate(spec, --dtype, latent_space='z'))` on the
default backend (--dtype is the activation dtype; parameters stay fp32).
Without --nvlabs_dir only Flax is timed (the row's reference is empty).
Reference (always fp32): NVlabs/stylegan2-ada-pytorch's training/networks.py
Generator from --nvlabs_dir (any checkout; tools/make_stylegan2_golden.py
names the commit used), in eval mode under torch.no_grad(), its reference ops
on CPU (its CUDA plug-ins are for GPUs), torch's default thread count. Each
is timed over --iters calls after a warm-up call. The reference runs in
--reference_python (an interpreter with torch, e.g. a venv with the `torch`
extra; default: this one) as a subprocess of this script, so that the two
never share a process. Updates experiments/results/bench_stylegan2.json and
prints its markdown table; the load average is recorded before and after.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "bench_stylegan2.json")
Z_DIM = W_DIM = 512
MAPPING_LAYERS = 8
CHANNEL_BASE, CHANNEL_MAX = 32768, 512


def measure_reference(nvlabs_dir: str, resolution: int, batch: int,
                      iters: int) -> dict:
  """NVlabs' Generator on CPU: {'images_per_s', 'torch', 'threads'}."""
  import torch  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, nvlabs_dir)
  from training import networks  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  g = networks.Generator(
      z_dim=Z_DIM, c_dim=0, w_dim=W_DIM, img_resolution=resolution,
      img_channels=3, mapping_kwargs=dict(num_layers=MAPPING_LAYERS),
      synthesis_kwargs=dict(channel_base=CHANNEL_BASE,
                            channel_max=CHANNEL_MAX, num_fp16_res=0,
                            conv_clamp=None)).eval().requires_grad_(False)
  z = torch.randn([batch, Z_DIM])
  with torch.no_grad():
    g(z, None, noise_mode="const")  # Warm-up.
    start = time.perf_counter()
    for _ in range(iters):
      g(z, None, noise_mode="const")
    seconds = time.perf_counter() - start
  return {"images_per_s": batch * iters / seconds, "torch": torch.__version__,
          "threads": torch.get_num_threads()}


def measure_flax(resolution: int, batch: int, iters: int,
                 dtype: str) -> dict:
  # jax is imported here: the reference subprocess runs without it.
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from gansseg_jax.models import stylegan2  # pylint: disable=all
  spec = stylegan2.StyleGAN2Spec(resolution, Z_DIM, W_DIM, MAPPING_LAYERS,
                                 CHANNEL_BASE, CHANNEL_MAX)
  params = jax.device_put(stylegan2.init_params(spec, 0))
  z = jax.device_put(np.random.default_rng(0).standard_normal(
      (batch, Z_DIM)).astype(np.float32))
  start = time.perf_counter()
  compiled = jax.jit(stylegan2.make_generate(
      spec, dtype, latent_space="z")).lower(params, z).compile()
  compile_s = time.perf_counter() - start
  compiled(params, z).block_until_ready()  # Warm-up.
  start = time.perf_counter()
  for _ in range(iters):
    out = compiled(params, z)
  out.block_until_ready()
  seconds = time.perf_counter() - start
  device = jax.devices()[0]
  return {"images_per_s": batch * iters / seconds,
          "compile_s": round(compile_s, 1), "jax": jax.__version__,
          "device": f"{device.platform}:{device.device_kind}"}


def table(entries: list[dict]) -> str:
  rows = ["| machine (load before/after) | px | batch | dtype | Flax images/s "
          "| PyTorch fp32 images/s | Flax / PyTorch |",
          "|---|---|---|---|---|---|---|"]
  for e in entries:
    reference, ratio = "—", "—"
    if e["reference"]:
      reference = f"{e['reference']['images_per_s']:.3g}"
      ratio = f"{e['ratio']:.2f}"
    rows.append(
        f"| {e['machine']} ({e['load'][0]:.1f}/{e['load'][1]:.1f}) | "
        f"{e['resolution']} | {e['batch']} | {e['dtype']} | "
        f"{e['flax']['images_per_s']:.3g} | {reference} | {ratio} |")
  return "\n".join(rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--nvlabs_dir", default="",
                      help="NVlabs checkout; empty: time Flax only")
  parser.add_argument("--reference_python", default=sys.executable)
  parser.add_argument("--resolution", type=int, default=256)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--iters", type=int, default=3)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"),
                      default="float32")
  parser.add_argument("--part", choices=("all", "reference"), default="all",
                      help="'reference': print the reference's JSON only")
  args = parser.parse_args()
  if args.part == "reference":
    print(json.dumps(measure_reference(args.nvlabs_dir, args.resolution,
                                       args.batch, args.iters)))
    return
  from gansseg_jax.infra import machine  # pylint: disable=import-outside-toplevel
  load_before = os.getloadavg()[0]
  flax = measure_flax(args.resolution, args.batch, args.iters, args.dtype)
  reference = None
  if args.nvlabs_dir:
    reference = subprocess.run(
        [args.reference_python, os.path.abspath(__file__), "--part=reference",
         f"--nvlabs_dir={args.nvlabs_dir}", f"--resolution={args.resolution}",
         f"--batch={args.batch}", f"--iters={args.iters}"],
        check=True, capture_output=True, text=True).stdout
    reference = json.loads(reference.strip().splitlines()[-1])
  entry = {
      "machine": machine.describe(), "host": platform.node(),
      "load": [load_before, os.getloadavg()[0]],
      "date": time.strftime("%Y-%m-%d"), "resolution": args.resolution,
      "batch": args.batch, "iters": args.iters, "dtype": args.dtype,
      "flax": flax, "reference": reference,
      "ratio": (flax["images_per_s"] / reference["images_per_s"]
                if reference else None),
  }
  entries = []
  if os.path.exists(RESULTS):
    with open(RESULTS) as f:
      entries = json.load(f)["runs"]
  key = lambda e: (e["machine"], e["resolution"], e["batch"], e["dtype"],
                   bool(e["reference"]))  # A Flax-only run keeps a full row.
  entries = [e for e in entries if key(e) != key(entry)] + [entry]
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump({"benchmark": "bench_stylegan2", "runs": entries}, f, indent=2)
  print(table(entries))


if __name__ == "__main__":
  main()
