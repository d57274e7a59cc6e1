"""ImageNet BigGAN-128 and BigGAN-deep-128 forward: Flax vs reference PyTorch.

  .venv/bin/python experiments/bench_biggan_imagenet.py \
      [--torch_python=/tmp/bgvenv/bin/python --biggan_pytorch=/tmp/bgref] \
      [--batch 4] [--iters 3] [--dtype float32|bfloat16]

Both networks at their published widths (BigGAN-128: G_ch 96, z 120, attention
at 64; BigGAN-deep-128: ch 128, z 128, attention at 64) with random weights
(values do not change the cost, as long as every one is initialised: no
NaN or denormal reaches the reference), batch --batch, on the CPU:
- Flax: `jax.jit` of gansseg_jax.models.{imagenet_biggan,biggan_deep}
  .make_generate(spec, --dtype) (the activation dtype; parameters stay fp32),
  one warm-up call (compilation, reported apart), then --iters timed calls;
- reference (always float32; skipped, and the row's reference left empty,
  without --torch_python and --biggan_pytorch): BigGAN-PyTorch's `Generator` (a checkout at --biggan_pytorch, the
  commit named in tools/make_biggan_golden.py) and pytorch-pretrained-biggan's
  `BigGAN` in eval mode under torch.no_grad(), timed the same way in a
  subprocess of --torch_python (a venv with torch and pytorch-pretrained-biggan:
  the project's own environment has no torch), one model after the other, with
  torch.set_num_threads(the usable cores).
The ratio is Flax images/s over the reference's. Updates
experiments/results/bench_biggan_imagenet.json and prints its markdown table.
"""
import argparse
import json
import os
import platform
import subprocess
import time

import jax
import numpy as np

from gansseg_jax.infra import machine
from gansseg_jax.models import biggan_deep
from gansseg_jax.models import imagenet_biggan

RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "bench_biggan_imagenet.json")
N_CLASSES = 1000

# Runs under --torch_python: argv = biggan_pytorch batch iters threads.
_REFERENCE = r"""
import json, sys, time
import torch
sys.path.insert(0, sys.argv[1])
batch, iters, threads = map(int, sys.argv[2:5])
torch.set_num_threads(threads)
import BigGAN
import pytorch_pretrained_biggan as ppb

def timed(call):
  with torch.no_grad():
    call()
    start = time.perf_counter()
    for _ in range(iters):
      call()
  return batch * iters / (time.perf_counter() - start)

torch.manual_seed(0)
y = torch.nn.functional.one_hot(torch.arange(batch) * 7, 1000).float()
G = BigGAN.Generator(G_ch=96, dim_z=120, resolution=128, G_attn='64',
                     n_classes=1000, G_shared=True, shared_dim=128, hier=True,
                     BN_eps=1e-4, SN_eps=1e-4, no_optim=True).eval()
z = torch.randn(batch, 120)
biggan = timed(lambda: G(z, y @ G.shared.weight))
deep = ppb.BigGAN(ppb.BigGANConfig()).eval()
with torch.no_grad():  # The package leaves the last BN's affine uninitialised.
  deep.generator.bn.weight.fill_(1.0)
  deep.generator.bn.bias.fill_(0.0)
z = torch.randn(batch, 128) * 0.5
deep_rate = timed(lambda: deep(z, y, 0.5))
print(json.dumps({"biggan": biggan, "biggan_deep": deep_rate,
                  "torch": torch.__version__,
                  "pytorch_pretrained_biggan": "0.1.1"}))
"""


def flax_rate(name: str, batch: int, iters: int,
              dtype: str) -> tuple[float, float]:
  """(images/s, compile seconds) of the Flax generator `name`."""
  if name == "biggan":
    spec = imagenet_biggan.ImageNetBigGANSpec.published(128)
    params = imagenet_biggan.init_params(spec, 0)
    generate = imagenet_biggan.make_generate(spec, dtype)
  else:
    spec = biggan_deep.BigGANDeepSpec(resolution=128)
    params = biggan_deep.init_params(spec, 0)
    generate = biggan_deep.make_generate(spec, dtype, truncation=0.5)
  rng = np.random.default_rng(0)
  z = rng.standard_normal((batch, spec.z_dim)).astype(np.float32)
  y = np.asarray(imagenet_biggan.one_hot(np.arange(batch) * 7, N_CLASSES))
  start = time.perf_counter()
  compiled = jax.jit(generate).lower(params, z, y).compile()
  compile_s = time.perf_counter() - start
  compiled(params, z, y).block_until_ready()
  start = time.perf_counter()
  for _ in range(iters):
    out = compiled(params, z, y)
  out.block_until_ready()
  return batch * iters / (time.perf_counter() - start), compile_s


def table(entries: list[dict]) -> str:
  rows = ["| generator | machine | batch | dtype | Flax images/s | reference "
          "fp32 images/s | ratio | Flax compile s |",
          "|---|---|---|---|---|---|---|---|"]
  for e in entries:
    reference, ratio = "—", "—"
    if e["reference"]:
      reference = f"{e['reference_images_per_s']:.3g} ({e['reference']})"
      ratio = f"{e['ratio']:.2f}"
    rows.append(f"| {e['generator']} | {e['device']} ({e['cpu_count']} CPUs, "
                f"load {e['load_average']}) | {e['batch']} | {e['dtype']} | "
                f"{e['flax_images_per_s']:.3g} | {reference} | {ratio} | "
                f"{e['compile_s']} |")
  return "\n".join(rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--torch_python", default="",
                      help="python of a venv with torch and "
                      "pytorch-pretrained-biggan; empty: time Flax only")
  parser.add_argument("--biggan_pytorch", default="",
                      help="checkout of ajbrock/BigGAN-PyTorch")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--iters", type=int, default=3)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"),
                      default="float32")
  args = parser.parse_args()
  if bool(args.torch_python) != bool(args.biggan_pytorch):
    parser.error("--torch_python and --biggan_pytorch go together")
  threads = machine.usable_cores()
  load = round(os.getloadavg()[0], 1)
  reference = None
  if args.torch_python:
    reference = json.loads(subprocess.run(
        [args.torch_python, "-c", _REFERENCE, args.biggan_pytorch,
         str(args.batch), str(args.iters), str(threads)],
        check=True, capture_output=True, text=True).stdout.splitlines()[-1])
  torch = f", torch {reference['torch']}" if reference else ""
  device = jax.devices()[0]
  names = {"biggan": ("BigGAN-128 (G_ch 96)",
                      "BigGAN-PyTorch Generator" + torch),
           "biggan_deep": ("BigGAN-deep-128 (ch 128)",
                           "pytorch-pretrained-biggan 0.1.1" + torch)}
  entries = []
  if os.path.exists(RESULTS):
    with open(RESULTS) as f:
      entries = json.load(f)["runs"]
  for name, (label, ref_label) in names.items():
    rate, compile_s = flax_rate(name, args.batch, args.iters, args.dtype)
    entry = {
        "generator": label,
        "device": f"{device.platform}:{device.device_kind}",
        "machine": machine.describe(),
        "host": platform.node(),
        "cpu_count": threads,
        "load_average": load,
        "batch": args.batch,
        "dtype": args.dtype,
        "iters": args.iters,
        "flax_images_per_s": rate,
        "compile_s": round(compile_s, 1),
        "reference": ref_label if reference else None,
        "reference_images_per_s": reference[name] if reference else None,
        "ratio": rate / reference[name] if reference else None,
        "jax": jax.__version__,
    }
    def key(e):
      # A Flax-only run keeps the row that has a reference.
      return (e["generator"], e["device"], e["batch"], e["dtype"],
              bool(e["reference"]))
    entries = [e for e in entries if key(e) != key(entry)] + [entry]
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump({"benchmark": "bench_biggan_imagenet", "runs": entries}, f,
              indent=2)
  print(table(entries))


if __name__ == "__main__":
  main()
