r"""The training step measured on this machine's first device: `make device-check`.

  # On a machine with one GPU (JAX and its CUDA plugin, flax, optax, orbax,
  # chex, absl installed; no network needed): `make device-check`, i.e.
  python benchmarks/device_check.py --size=paper
  # Smoke run at tiny sizes on a CPU, seconds (the test suite runs it
  # in-process, tests/test_device_check.py):
  JAX_PLATFORMS=cpu python benchmarks/device_check.py --size=tiny

Programs, each built by the project's own code on a one-device 'data' mesh
(segmentation.build, as the `train` stage builds it):
  demo     configs/demo.py with its shipped generator (32 px, U-Net width
           16, batch 32), float32
  paper    configs/default.py at the paper's sizes (BigGAN-128 ch 96,
           attention at 64, random weights; U-Net width 64), batch --batch (96), in float32 (generator matmuls at
           'highest'), 'float32:high' (generator.matmul_precision='high':
           TF32 on GPUs) and bfloat16 (generator.dtype = unet.dtype)
each as the plain one-step program (`step`) and the looped one
(`steps`: config.train.steps_per_call steps in one XLA while loop, count
--steps_per_call). --size=tiny shrinks both to seconds on a CPU (the demo
at batch 4, width 4; 'paper' = the 32 px ch 4 BigGAN of configs/default.py:small, U-Net
width 4, batch 8).

Every step runs one synthesis round (config.synth.max_rounds = --max_rounds,
1): random weights keep an arbitrary share of candidates, so rounds until
full would time the keep rate rather than the program; one round is also
what the AOT estimates count (XLA costs a while loop's body once).

Per program: compile seconds (lower + compile, tracing included), then
--warmup calls, then --repeats timed calls, each waited for with
block_until_ready; ms per step = the median call over the steps it ran
(the step counter's advance; a non-finite step ends a looped call early).
Beside each: FLOPs of its dots and convolutions counted in the optimized
HLO by precision class (aot_compile.hlo_flops; XLA's own cost_analysis
FLOPs too where the backend gives them), bytes accessed, the roofline of
those on this chip (aot_compile.roofline; chips by device kind from
aot_compile.GPUS), MFU = dot/conv FLOPs / (step time x the chip's dense
bf16 peak) and the compute fraction = (the FLOPs at each class's peak) /
step time; peak memory from memory_analysis() (arguments + outputs +
temporaries - aliased) and the device's peak_bytes_in_use so far
(memory_stats(), where the backend keeps it). Paper rows carry the AOT
estimate of benchmarks/results/aot_gpu.json for 8 H100s (global batch 96,
12 per GPU) and that estimate times 8 (the same global batch on one GPU,
assuming linear scaling).

A program that fails records its error and the next one runs; programs
not started within --budget_s are recorded as skipped. Writes
benchmarks/results/device_check_<device>.json (or --out) after every
program and prints the markdown table.
"""
import argparse
import datetime
import json
import math
import os
import re
import statistics
import sys
import time
import traceback

import jax
import numpy as np

from gansseg_jax.infra import fileio
from gansseg_jax.infra import machine
from gansseg_jax.infra import config_files
from gansseg_jax.infra import sharding

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=g-import-not-at-top,wrong-import-position
import aot_compile
import bench_train

ROOT = aot_compile.ROOT
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
AOT_GPU = os.path.join(RESULTS_DIR, "aot_gpu.json")
AOT_SLICE = "h100x8"
PAPER_DTYPES = ("float32", "float32:high", "bfloat16")
# Sizes of --size=tiny (seconds on a CPU).
TINY = dict(demo_batch=4, demo_width=4, paper_preset="small", paper_width=4,
            paper_batch=8)
# Device kind (lower case) -> aot_compile.GPUS key.
CHIP_BY_KIND = (("h200", "h200"), ("h100", "h100"), ("a100", "a100"))


def load_config(name: str):
  """configs/<name>.py's config (benchmarks import no configs module)."""
  return config_files.load_checkout(name)


def demo_config(size: str, max_rounds: int):
  config = load_config("demo")
  if size == "tiny":
    config.train.batch_size = TINY["demo_batch"]
    config.unet.width = TINY["demo_width"]
  config.synth.max_rounds = max_rounds
  return config


def paper_config(size: str, dtype: str, batch: int, max_rounds: int):
  """configs/default.py at the paper's (or tiny) sizes; `dtype` 'float32',
  'bfloat16' or 'float32:<generator.matmul_precision>'."""
  config = config_files.load_checkout(
      "default", "paper" if size == "paper" else TINY["paper_preset"])
  dtype, _, precision = dtype.partition(":")
  config.generator.dtype = config.unet.dtype = dtype
  config.generator.matmul_precision = precision or "highest"
  if size != "paper":
    config.unet.width = TINY["paper_width"]
  config.train.batch_size = batch if size == "paper" else TINY["paper_batch"]
  config.synth.max_rounds = max_rounds
  return config


def programs(size: str, batch: int, max_rounds: int) -> list[dict]:
  """The rows to measure, in the order they run (cheap ones first)."""
  rows = [dict(preset="demo", dtype="float32",
               config=lambda: demo_config(size, max_rounds))]
  rows += [dict(preset="paper", dtype=d,
                config=lambda d=d: paper_config(size, d, batch, max_rounds))
           for d in PAPER_DTYPES]
  plain = [dict(r, program="plain") for r in rows]
  looped = [dict(r, program="looped") for r in rows]
  return plain[:1] + looped[:1] + plain[1:] + looped[1:]


def row_name(row: dict) -> str:
  """'preset:dtype:program', e.g. 'paper:bfloat16:looped' (--only)."""
  return f"{row['preset']}:{row['dtype']}:{row['program']}"


def chip_of(device):
  """aot_compile.GPUS entry of `device` by its kind, else None (CPU...)."""
  kind = device.device_kind.lower()
  return next((aot_compile.GPUS[k] for marker, k in CHIP_BY_KIND
               if marker in kind and k in aot_compile.GPUS), None)


def _optional(method):
  """method(), or None where the backend does not implement it (jax 0.10
  raises NotImplementedError for some; 0.11's Compiled returns None)."""
  try:
    return method()
  except NotImplementedError:
    return None


def costs(compiled) -> dict:
  """Memory, FLOPs (by class) and bytes of a compiled program, per call."""
  out = {}
  memory = _optional(compiled.memory_analysis)
  if memory is not None:
    out["peak_bytes"] = int(
        memory.argument_size_in_bytes + memory.output_size_in_bytes
        + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
    out["temp_bytes"] = int(memory.temp_size_in_bytes)
  cost = _optional(compiled.cost_analysis)
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  if cost:
    out["xla_flops"] = float(cost.get("flops", float("nan")))
    out["xla_bytes_accessed"] = float(cost.get("bytes accessed",
                                               float("nan")))
  text = _optional(compiled.as_text)
  if text:
    out["flops_by_class"] = aot_compile.hlo_flops(text)
    out["flops"] = float(sum(out["flops_by_class"].values()))
    out["hlo_bytes"] = float(sum(r["bytes"]
                                 for r in aot_compile.hlo_traffic(text)))
  # XLA's bytes where it counts them, else the kernels' operand + output
  # bytes (an upper bound, aot_compile.hlo_traffic).
  bytes_accessed = out.get("xla_bytes_accessed", out.get("hlo_bytes"))
  if bytes_accessed is not None and math.isfinite(bytes_accessed):
    out["bytes_accessed"] = bytes_accessed
  return out


def device_peak_bytes(device):
  stats = _optional(device.memory_stats)
  return int(stats["peak_bytes_in_use"]) if stats and (
      "peak_bytes_in_use" in stats) else None


def aot_estimate(preset: str, dtype: str, program: str, batch: int,
                 path: str = AOT_GPU):
  """The matching h100x8 entry of aot_gpu.json (its train_step for plain,
  train_loop for looped), or None."""
  if preset != "paper" or not os.path.exists(path):
    return None
  with open(path) as f:
    entries = json.load(f)
  wanted = ("train_step" if program == "plain" else "train_loop")
  for e in entries:
    if ((e["slice"], e["program"], e["size"], e["dtype"], e["batch"],
         e["status"]) == (AOT_SLICE, wanted, "paper", dtype, batch,
                          "compiled")):
      return {"slice": AOT_SLICE, "program": wanted, "chips": e["chips"],
              "roofline_ms": 1e3 * e["roofline_s"], "bound": e["bound"],
              "tflop_per_gpu": e["flops"] / 1e12,
              "peak_gib_per_gpu": e["peak_bytes"] / 2**30,
              "one_gpu_ms": 1e3 * e["roofline_s"] * e["chips"]}
  return None


def measure(row: dict, steps_per_call: int, warmup: int, repeats: int,
            compiler_options: dict) -> dict:
  """Compiles and times one program (module docstring)."""
  config = row["config"]()
  mesh, _, fused, frozen = bench_train.fused_step(row["preset"], config)
  state, sums = fused.init_state(), fused.zero_sums(frozen)
  n = steps_per_call if row["program"] == "looped" else 1
  start = time.perf_counter()
  if row["program"] == "looped":
    count = sharding.replicate(np.int32(n), mesh)
    compiled = fused.steps.lower(state, sums, frozen, count).compile(
        compiler_options=compiler_options)
    call = lambda s, m: compiled(s, m, frozen, count)
  else:
    compiled = fused.step.lower(state, sums, frozen).compile(
        compiler_options=compiler_options)
    call = lambda s, m: compiled(s, m, frozen)
  out = {"compile_s": time.perf_counter() - start, **costs(compiled)}
  for _ in range(warmup):
    state, sums = call(state, sums)
  jax.block_until_ready((state, sums))
  sums = fused.zeros_like(sums)
  wall, cpu = [], []
  done = int(sharding.fetch(state["step"]))
  for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    state, sums = call(state, sums)
    jax.block_until_ready((state, sums))
    t, c = time.perf_counter() - t, time.process_time() - c
    now = int(sharding.fetch(state["step"]))
    ran = max(now - done, 1)  # A call whose first step was not applied: 1.
    done = now
    wall.append(t / ran)
    cpu.append(c / ran)
  totals = sharding.fetch(sums)
  steps = max(int(totals["steps"]), 1)
  slots = float(totals["synth/filled"]) + float(totals["synth/unfilled"])
  step_s = statistics.median(wall)
  out.update(
      steps_per_call=n, batch=config.train.batch_size,
      warmup_calls=warmup, timed_calls=repeats,
      ms_per_step=1e3 * step_s, ms_per_step_min=1e3 * min(wall),
      ms_per_step_all=[1e3 * w for w in wall],
      cpu_ms_per_step=1e3 * statistics.median(cpu),
      samples_per_s=config.train.batch_size / step_s,
      rounds_per_step=float(totals["synth/rounds"]) / steps,
      filled_fraction=float(totals["synth/filled"]) / max(slots, 1.0),
      skipped_steps=int(totals["skipped"]))
  return out


def efficiency(entry: dict, chip) -> dict:
  """Roofline, MFU and compute fraction of a measured row on `chip`."""
  if chip is None or "flops_by_class" not in entry or not entry[
      "flops_by_class"] or "bytes_accessed" not in entry:
    return {}
  step_s = entry["ms_per_step"] / 1e3
  bound = aot_compile.roofline(entry["flops"], entry["bytes_accessed"], chip,
                               entry["flops_by_class"])
  return {"chip": chip.name, "roofline_ms": 1e3 * bound["roofline_s"],
          "bound": bound["bound"],
          "mfu": entry["flops"] / (step_s * chip.peak_flops),
          "compute_fraction": bound["t_flops_s"] / step_s,
          "roofline_fraction": bound["roofline_s"] / step_s}


def device_slug(device) -> str:
  """'cpu' or the device kind in lower case, words joined by '_'."""
  if device.platform == "cpu":
    return "cpu"
  return re.sub(r"[^a-z0-9]+", "_", device.device_kind.lower()).strip("_")


def run(size: str = "tiny", out: str = "", batch: int = 96,
        steps_per_call: int = 8, warmup: int = 1, repeats: int = 5,
        max_rounds: int = 1, budget_s: float = 420.0,
        only: tuple[str, ...] = ()) -> dict:
  """Measures every program (module docstring); returns the JSON document."""
  device = jax.devices()[0]
  chip = chip_of(device)
  out = out or os.path.join(RESULTS_DIR,
                            f"device_check_{device_slug(device)}.json")
  doc = {"device": machine.describe(), "device_kind": device.device_kind,
         "platform": device.platform, "jax": jax.__version__,
         "jaxlib": _jaxlib_version(),
         "size": size, "date": datetime.date.today().isoformat(),
         "load_average_before": [round(x, 2) for x in os.getloadavg()],
         "settings": {"batch": batch, "steps_per_call": steps_per_call,
                      "warmup_calls": warmup, "timed_calls": repeats,
                      "max_rounds": max_rounds, "budget_s": budget_s},
         "chip": chip.name if chip else None, "rows": []}
  # Tiny programs on a CPU compile at -O0 (half XLA:CPU's compile time,
  # as the tests do): a smoke run, not a CPU benchmark.
  compiler_options = ({"xla_backend_optimization_level": 0}
                      if size == "tiny" and device.platform == "cpu" else {})
  doc["settings"]["compiler_options"] = compiler_options
  start = time.perf_counter()
  for row in programs(size, batch, max_rounds):
    if only and row_name(row) not in only:
      continue
    entry = {k: row[k] for k in ("preset", "dtype", "program")}
    if time.perf_counter() - start > budget_s:
      entry.update(status="skipped", error=f"not started within --budget_s "
                   f"{budget_s:.0f}")
    else:
      try:
        entry.update(status="ok", **measure(row, steps_per_call, warmup,
                                            repeats, compiler_options))
        entry.update(efficiency(entry, chip))
        entry["device_peak_bytes"] = device_peak_bytes(device)
        entry["aot"] = aot_estimate(row["preset"], row["dtype"],
                                    row["program"], batch)
      except Exception as e:  # pylint: disable=broad-except
        entry.update(status="error", error=f"{type(e).__name__}: {e}"[:2000],
                     traceback=traceback.format_exc()[-3000:])
    doc["rows"].append(entry)
    doc["elapsed_s"] = time.perf_counter() - start
    doc["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    fileio.write_json(out, doc)
    print(json.dumps({k: entry.get(k) for k in (
        "preset", "dtype", "program", "status", "compile_s", "ms_per_step",
        "mfu", "peak_bytes", "error")}), flush=True)
  doc["out"] = out
  return doc


def _jaxlib_version():
  try:
    import jaxlib  # pylint: disable=import-outside-toplevel
    return jaxlib.__version__
  except (ImportError, AttributeError):
    return None


def _fmt(value, spec: str) -> str:
  return "" if value is None else format(value, spec)


def markdown(doc: dict) -> str:
  lines = [f"{doc['device']} ({doc['platform']}, jax {doc['jax']}), size "
           f"{doc['size']}, {doc['date']}, load {doc['load_average_before']}"
           f" -> {doc.get('load_average_after')}", "",
           "| preset | dtype | program | batch | compile s | ms / step "
           "(median) | samples/s | rounds | TFLOP / step | MFU | compute "
           "fraction | roofline ms (bound) | peak GiB (compiled / device) "
           "| AOT h100x8 ms (x8 for one GPU) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for e in doc["rows"]:
    head = f"| {e['preset']} | {e['dtype']} | {e['program']} "
    if e["status"] != "ok":
      lines.append(head + f"| {e['status']}: {e['error'][:100]} "
                   "| | | | | | | | | | |")
      continue
    program = (e["program"] if e["steps_per_call"] == 1
               else f"looped ({e['steps_per_call']} per call)")
    aot = e.get("aot")
    aot_cell = (f"{aot['roofline_ms']:.2f} ({aot['one_gpu_ms']:.1f})"
                if aot else "")
    device_peak = e.get("device_peak_bytes")
    lines.append(
        f"| {e['preset']} | {e['dtype']} | {program} | {e['batch']} "
        f"| {e['compile_s']:.1f} | {e['ms_per_step']:.2f} "
        f"| {e['samples_per_s']:.1f} | {e['rounds_per_step']:.2f} "
        f"| {_fmt(e.get('flops', 0) / 1e12, '.3f')} "
        f"| {_fmt(e.get('mfu'), '.3f')} "
        f"| {_fmt(e.get('compute_fraction'), '.3f')} "
        f"| {_fmt(e.get('roofline_ms'), '.2f')} {e.get('bound', '')} "
        f"| {_fmt(e.get('peak_bytes', 0) / 2**30, '.2f')} / "
        f"{_fmt(device_peak and device_peak / 2**30, '.2f')} "
        f"| {aot_cell} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--size", choices=("paper", "tiny"), default="paper")
  parser.add_argument("--out", default="", help="JSON file; default "
                      "benchmarks/results/device_check_<device>.json")
  parser.add_argument("--batch", type=int, default=96,
                      help="Global batch of the paper rows.")
  parser.add_argument("--steps_per_call", type=int, default=8,
                      help="Steps per call of the looped program.")
  parser.add_argument("--warmup", type=int, default=1,
                      help="Untimed calls after the compile.")
  parser.add_argument("--repeats", type=int, default=5, help="Timed calls.")
  parser.add_argument("--max_rounds", type=int, default=1,
                      help="config.synth.max_rounds of every program.")
  parser.add_argument("--budget_s", type=float, default=420.0,
                      help="Start no program after this many seconds.")
  parser.add_argument("--only", default="", help="Comma-separated rows "
                      "'preset:dtype:program' (e.g. paper:bfloat16:looped; "
                      "dtype float32:high has its own colon); default all.")
  args = parser.parse_args(argv)
  args.only = tuple(x for x in args.only.split(",") if x)
  doc = run(**vars(args))
  print(markdown(doc))
  print(f"wrote {doc['out']}")


if __name__ == "__main__":
  main()
