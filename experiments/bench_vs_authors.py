r"""The paper's training step beside the authors' PyTorch step, on the same cores.

  python experiments/bench_vs_authors.py \
      --torch_python=/path/to/venv-with-torch/bin/python --cores=0,1

Two long-lived processes pinned to the same cores (`taskset -c --cores`):
  authors  experiments/authors_step_torch.py --serve (their step in PyTorch:
           BigGAN-128 G(z), G(z + r h), lighting mask, their filters,
           U-Net forward/backward + Adam)
  jax      this script with --worker: segmentation.build(...).step, the
           plain one-step program, with the authors' filter rules
           (histogram_rule 'authors', 8-connected components, strict
           ratio 0.2, size < 0.5) and as many candidates as they generate
           (synth.oversample 1: 2 x batch images a round)
Both use the same random generator weights: authors_step_torch.py --save
writes them in BigBiGAN_x1.pth's keys and the JAX side converts them with
convert/torch_checkpoint.py (the worker reports max |G_jax(z) - G_torch(z)|
on two latents). Each side draws its own latents, so their keep rates differ;
--rounds 1 (default) makes a step one synthesis round on both sides (the
U-Net then trains on all `batch` slots, the rejected with weight 0), so the
work per step is the same whatever is kept.

The driver triggers one step at a time over each process's stdin,
alternating authors, jax, authors, jax, ... (--calls each after --warmup
each, the JAX warm-up compiling); each process times its own step
(perf_counter around the step, the JAX one until block_until_ready, and
the process's CPU time, which a shared machine's load disturbs less) and
reports it with its parts: the authors' generator / filters / U-Net, and
with --profile the JAX pieces compiled alone (generator on the 2 x batch
latents, synthesis = generator + masks + filters, U-Net update), medians
of --profile_calls. Writes experiments/results/bench_vs_authors.json
(one entry per run, appended) with `lscpu` and `uptime` before and after,
and prints a markdown row.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results", "bench_vs_authors.json")
TORCH_SCRIPT = os.path.join(ROOT, "experiments", "authors_step_torch.py")


def jax_config(batch: int, rounds: int, radius: float):
  """configs/default.py at the paper's sizes, fp32, the authors' rules."""
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import device_check  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  config = device_check.paper_config("paper", "float32", batch,
                                     rounds or 16)
  config.synth.update(histogram_rule="authors", connectivity=8,
                      strict_ratio=True, strict_size=True, oversample=1.0,
                      shift_radius=radius)
  return config


def worker(args) -> None:
  """The JAX side: one step per 'step' line on stdin, JSON on stdout."""
  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  import jax
  import numpy as np
  from gansseg_jax.convert import torch_checkpoint
  from gansseg_jax.generators import bigbigan
  from gansseg_jax.models import biggan
  from gansseg_jax.train import segmentation
  from gansseg_jax.infra import sharding

  config = jax_config(args.batch, args.rounds, args.radius)
  spec = bigbigan.generator_spec(config)
  path = os.path.join(args.weights, "state.npz")
  with np.load(path) as f:
    params, _ = torch_checkpoint.convert(spec, dict(f),
                                         config.generator.sn_eps, path)
  generate = biggan.make_generate(spec, config.generator.dtype,
                                  config.generator.matmul_precision)
  with np.load(os.path.join(args.weights, "check.npz")) as f:
    images = np.asarray(jax.jit(generate)(params, f["z"]))
    same = float(np.max(np.abs(images - f["images"].transpose(0, 2, 3, 1))))
  direction = np.load(os.path.join(args.weights, "direction.npy"))
  mesh = sharding.data_mesh()
  fused = segmentation.build(config, mesh, generate)
  frozen = sharding.replicate(
      segmentation.Frozen(params, direction, None, None), mesh)
  state, sums = fused.init_state(), fused.zero_sums(frozen)
  print(json.dumps({"ready": True, "max_abs_image_difference": same,
                    "jax": jax.__version__}), flush=True)
  for line in sys.stdin:
    command = line.strip()
    if command == "quit":
      break
    if command == "profile":
      print(json.dumps(profile(fused, frozen, generate, config, args)),
            flush=True)
      continue
    before = int(sharding.fetch(state["step"]))
    sums = fused.zeros_like(sums)
    t, cpu = time.perf_counter(), time.process_time()
    state, sums = fused.step(state, sums, frozen)
    jax.block_until_ready((state, sums))
    step_ms = 1e3 * (time.perf_counter() - t)
    step_cpu_ms = 1e3 * (time.process_time() - cpu)
    totals = sharding.fetch(sums)
    print(json.dumps({
        "step_ms": step_ms, "step_cpu_ms": step_cpu_ms,
        "rounds": int(totals["synth/rounds"]),
        "kept": int(totals["synth/filled"]), "loss": float(totals["loss"]),
        "applied": int(sharding.fetch(state["step"])) - before}), flush=True)


def profile(fused, frozen, generate, config, args) -> dict:
  """Medians (ms) of the step's pieces compiled alone (module docstring)."""
  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  import jax
  import numpy as np
  from gansseg_jax.infra import sharding

  mesh = sharding.data_mesh()
  index = sharding.replicate(np.int32(0), mesh)
  z = np.random.default_rng(1).normal(
      size=(2 * args.batch, config.generator.z_dim)).astype(np.float32)
  made = fused.synthesize("train", index, frozen)
  jax.block_until_ready(made)
  state = fused.init_state()
  pieces = {
      "generator_ms": lambda s: (jax.jit(generate)(frozen.gen_params, z), s),
      "synthesis_ms": lambda s: (fused.synthesize("train", index, frozen), s),
      "unet_update_ms": lambda s: fused.update(s, *made[:3])[::-1],
  }
  out = {}
  for name, call in pieces.items():
    result, state = call(state)  # Compiles.
    jax.block_until_ready((result, state))
    times = []
    for _ in range(args.profile_calls):
      t = time.perf_counter()
      result, state = call(state)
      jax.block_until_ready((result, state))
      times.append(1e3 * (time.perf_counter() - t))
    out[name] = statistics.median(times)
  out["masks_filters_ms"] = out["synthesis_ms"] - out["generator_ms"]
  return out


class Contender:
  """A pinned long-lived process answering one JSON line per command."""

  def __init__(self, name: str, command: list[str], cores: str, env: dict):
    self.name = name
    self.proc = subprocess.Popen(
        ["taskset", "-c", cores] + command, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    self.ready = self.read()

  def read(self) -> dict:
    while True:
      line = self.proc.stdout.readline()
      if not line:
        raise RuntimeError(f"{self.name} exited ({self.proc.wait()})")
      if line.startswith("{"):
        return json.loads(line)

  def ask(self, command: str = "step") -> dict:
    self.proc.stdin.write(command + "\n")
    self.proc.stdin.flush()
    return self.read()

  def close(self):
    self.proc.stdin.write("quit\n")
    self.proc.stdin.flush()
    self.proc.wait(timeout=60)


def shell(command: str) -> str:
  return subprocess.run(command, shell=True, capture_output=True,
                        text=True).stdout.strip()


def markdown(entry: dict) -> str:
  a, j = entry["authors"], entry["jax"]
  return (f"| {entry['date']} | {entry['cpu']} (cores {entry['cores']}) "
          f"| {entry['uptime_before'].split('load average:')[-1].strip()} "
          f"| batch {entry['batch']}, {entry['rounds']} round(s) "
          f"| {a['step_ms_median']:.0f} | {j['step_ms_median']:.0f} "
          f"| {entry['speedup_ms']:.2f}x "
          f"| {a['step_cpu_ms_median']:.0f} | {j['step_cpu_ms_median']:.0f} "
          f"| {entry['speedup_cpu']:.2f}x |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--worker", action="store_true",
                      help="Run as the JAX contender (internal).")
  parser.add_argument("--torch_python", default="python3")
  parser.add_argument("--cores", default="0,1", help="taskset core list.")
  parser.add_argument("--weights", default="/tmp/bench_vs_authors",
                      help="Folder of authors_step_torch.py --save (made "
                      "if absent).")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--rounds", type=int, default=1,
                      help="Synthesis rounds per step (0 = until full).")
  parser.add_argument("--radius", type=float, default=5.0)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--calls", type=int, default=3)
  parser.add_argument("--profile", action="store_true")
  parser.add_argument("--profile_calls", type=int, default=2)
  parser.add_argument("--out", default=RESULTS)
  args = parser.parse_args()
  if args.worker:
    worker(args)
    return
  if not os.path.exists(os.path.join(args.weights, "direction.npy")):
    subprocess.run([args.torch_python, TORCH_SCRIPT, f"--save={args.weights}",
                    f"--radius={args.radius}"], check=True)
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  common = [f"--batch={args.batch}", f"--rounds={args.rounds}",
            f"--radius={args.radius}"]
  entry = {"date": datetime.date.today().isoformat(), "cores": args.cores,
           "cpu": shell("lscpu | sed -n 's/^Model name: *//p'"),
           "lscpu": shell("lscpu"), "uptime_before": shell("uptime"),
           "batch": args.batch, "rounds": args.rounds,
           "warmup": args.warmup, "calls": args.calls}
  contenders = [
      Contender("authors", [args.torch_python, TORCH_SCRIPT,
                            f"--load={args.weights}", "--serve"] + common,
                args.cores, env),
      Contender("jax", [sys.executable, os.path.abspath(__file__), "--worker",
                        f"--weights={args.weights}",
                        f"--profile_calls={args.profile_calls}"] + common,
                args.cores, env)]
  runs = {c.name: {"ready": c.ready, "warmup": [], "steps": []}
          for c in contenders}
  for phase, count in (("warmup", args.warmup), ("steps", args.calls)):
    for _ in range(count):
      for c in contenders:
        runs[c.name][phase].append(c.ask())
        print(c.name, phase, json.dumps(runs[c.name][phase][-1]), flush=True)
  if args.profile:
    runs["jax"]["profile"] = contenders[1].ask("profile")
    print("jax profile", json.dumps(runs["jax"]["profile"]), flush=True)
  for c in contenders:
    c.close()
  for name, run in runs.items():
    for key in ("step_ms", "step_cpu_ms"):
      run[f"{key}_median"] = statistics.median(s[key] for s in run["steps"])
    entry[name] = run
  entry["uptime_after"] = shell("uptime")
  for key in ("step_ms", "step_cpu_ms"):
    entry[f"speedup_{key.split('_')[1]}"] = (
        entry["authors"][f"{key}_median"] / entry["jax"][f"{key}_median"])
  entries = []
  if os.path.exists(args.out):
    with open(args.out) as f:
      entries = json.load(f)
  with open(args.out, "w") as f:
    json.dump(entries + [entry], f, indent=1)
  print("| date | machine | load (1, 5, 15 min) | step | authors ms "
        "| JAX ms | authors / JAX | authors CPU ms | JAX CPU ms "
        "| authors / JAX (CPU) |\n|---|---|---|---|---|---|---|---|---|---|")
  print(markdown(entry))


if __name__ == "__main__":
  main()
