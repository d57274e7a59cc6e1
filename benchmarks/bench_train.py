r"""Samples/s of the fused training step, a breakdown, and the 12k-step time.

  # CPU, small: BigGAN-architecture generator 32 px ch 4 (random weights),
  # U-Net width 8, batch 16:
  python benchmarks/bench_train.py
  # The paper's setting on an accelerator: the full BigBiGAN architecture
  # (128 px, ch 96, attention at 64; random weights, timing does not depend
  # on them), U-Net width 64, batch 95, fp32 then bf16:
  python benchmarks/bench_train.py --preset=paper --dtype=float32
  python benchmarks/bench_train.py --preset=paper --dtype=bfloat16
  # The programs training runs against the plain step, on the demo and at
  # the paper's sizes (batch 4 on a CPU):
  python benchmarks/bench_train.py --preset=demo --rounds=10
  python benchmarks/bench_train.py --preset=paper --batch_size=4 --steps=2 \
      --rounds=3 --device_loop=

Every piece runs jitted on all devices (batch sharded on 'data') as in the
`train` stage (gansseg_jax.train.segmentation.build):
  generator      G on the 2 n stacked latents of one step (z and z + h),
                 n = ceil(batch * config.synth.oversample)
  synthesis      latents + generator + mask rule + filters + compaction
  masks+filters  synthesis - generator
  unet           U-Net forward/backward + Adam on a given batch
  fused step     everything in one program, one step per call
Each is timed over --steps calls after one compiling call.

Then the contenders, per step: call time / N, wall and process CPU time,
median over --rounds rounds after --warmup rounds; a round makes one call of
each contender in turn (so a change of load hits them alike), each on its
own training state from step 0:
  plain          `step`, the plain one-step program, one call per step
  training N     `run_steps` at N steps per call (config.train.steps_per_call
                 = N): what the `train` stage runs (on a CPU a host loop over
                 `step`, on TPUs and GPUs the device loop)
  device loop N  `steps`, the XLA while loop over N steps that TPUs and
                 GPUs train with (on a CPU: slow, see `device_loop`)
The 12k-step
projection is 12000 x fused step at this batch; the paper reports about 7 h
for 12k steps of batch 95 on two GTX 1080 Ti with online generation
(docs/method.md section 7), i.e. 45.2 samples/s, which the last column
compares with (paper preset only).

Writes benchmarks/results/bench_train.json (one entry per device, preset,
dtype and batch, replaced on re-run) and prints the markdown table.
"""
import functools
import json
import os
import time

from absl import app
from absl import flags
import jax
import numpy as np

from gansseg_jax.infra import fileio
from gansseg_jax.infra import machine
from gansseg_jax.generators import bigbigan
from gansseg_jax.generators import demo
from gansseg_jax.infra import config_files
from gansseg_jax.infra import sharding
from gansseg_jax.models import biggan
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.train import segmentation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "bench_train.json")
PAPER_HOURS = 7.0  # Two GTX 1080 Ti, 12k steps of batch 95 (the paper).
PAPER_STEPS = 12_000
PAPER_BATCH = 95
PAPER_SAMPLES_PER_S = PAPER_STEPS * PAPER_BATCH / (PAPER_HOURS * 3600)

flags.DEFINE_enum("preset", "small", ["small", "paper", "demo"],
                  "Sizes to time: configs/default.py:small or :paper, or "
                  "configs/demo.py and its generator.")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"],
                  "Activation dtype of the generator and the U-Net.")
flags.DEFINE_integer("batch_size", 0, "Global batch; 0 = the preset's.")
flags.DEFINE_integer("steps", 20, "Timed calls of each piece.")
flags.DEFINE_list("steps_per_call", ["1", "8"],
                  "Steps per call of the program training runs to time.")
flags.DEFINE_list("device_loop", ["1"],
                  "Steps per call of the device loop to time (empty: none).")
flags.DEFINE_integer("rounds", 5, "Timed rounds of the contenders.")
flags.DEFINE_integer("warmup", 1, "Untimed rounds first (after compiling).")
flags.DEFINE_string("out", RESULTS, "JSON results file.")
FLAGS = flags.FLAGS


def load_config():
  """configs/default.py at the preset's sizes (or configs/demo.py), dtype."""
  config = (config_files.load_checkout("demo") if FLAGS.preset == "demo"
            else config_files.load_checkout("default", FLAGS.preset))
  config.generator.dtype = config.unet.dtype = FLAGS.dtype
  config.train.batch_size = FLAGS.batch_size or config.train.batch_size
  return config


def timed(fn, args_fn, steps):
  """(first call s, mean s per call over `steps` pipelined calls).

  `args_fn(previous_result)` gives the next call's arguments (threads a
  donated state through).
  """
  start = time.perf_counter()
  result = fn(*args_fn(None))
  jax.block_until_ready(result)
  first = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(steps):
    result = fn(*args_fn(result))
  jax.block_until_ready(result)
  return first, (time.perf_counter() - start) / steps


def load_generator(preset: str, config):
  """(generate, params): the demo's shipped generator, or random BigGAN."""
  if preset == "demo":
    generate, params, _ = demo.import_demo_gan().load_builtin()
    return generate, params
  spec = bigbigan.generator_spec(config)
  return (biggan.make_generate(spec, config.generator.dtype,
                               config.generator.matmul_precision),
          biggan.init_params(spec, seed=0))


def contenders(fused, frozen, mesh):
  """{name: (steps per call, call(state, sums) -> (state, sums))}."""
  out = {"plain": (1, lambda state, sums: fused.step(state, sums, frozen))}
  for n in map(int, FLAGS.steps_per_call):
    out[f"training N={n}"] = (n, functools.partial(
        lambda state, sums, n: fused.run_steps(state, sums, frozen, n), n=n))
  for n in map(int, FLAGS.device_loop):
    count = sharding.replicate(np.int32(n), mesh)
    out[f"device loop N={n}"] = (n, functools.partial(
        lambda state, sums, count: fused.steps(state, sums, frozen, count),
        count=count))
  return out


def race(fused, frozen, mesh):
  """{name: {steps_per_call, step_s, step_cpu_s, first_call_s}}: medians.

  Each contender's first call compiles; then --warmup + --rounds rounds of
  one call of each in turn; per step = call time / steps per call.
  """
  runners = contenders(fused, frozen, mesh)
  states, times = {}, {name: [] for name in runners}
  first = {}
  for name, (_, call) in runners.items():
    start = time.perf_counter()
    states[name] = call(fused.init_state(), fused.zero_sums(frozen))
    jax.block_until_ready(states[name])
    first[name] = time.perf_counter() - start
  for round_ in range(FLAGS.warmup + FLAGS.rounds):
    for name, (n, call) in runners.items():
      wall, cpu = time.perf_counter(), time.process_time()
      states[name] = call(*states[name])
      jax.block_until_ready(states[name])
      if round_ >= FLAGS.warmup:
        times[name].append(((time.perf_counter() - wall) / n,
                            (time.process_time() - cpu) / n))
  return {name: {"steps_per_call": runners[name][0],
                 "step_s": float(np.median([t[0] for t in times[name]])),
                 "step_cpu_s": float(np.median([t[1] for t in times[name]])),
                 "first_call_s": first[name]}
          for name in runners}


def fused_step(preset: str, config):
  """(mesh, generate, fused, frozen): the preset's generator, a random
  direction (seed 0), the fused step built on all devices."""
  generate, gen_params = load_generator(preset, config)
  direction = np.random.default_rng(0).normal(
      size=config.generator.z_dim).astype(np.float32)
  mesh = sharding.data_mesh()
  fused = segmentation.build(config, mesh, generate)
  frozen = sharding.replicate(
      segmentation.Frozen(gen_params, direction, None, None), mesh)
  return mesh, generate, fused, frozen


def measure(config):
  """Seconds per call of each piece (module docstring)."""
  mesh, generate, fused, frozen = fused_step(FLAGS.preset, config)
  batch = config.train.batch_size
  chunks = sharding.synth_chunks(config.train, mesh.size)
  candidates = chunks * synth_batch.SynthSpec.from_config(
      config.synth).num_candidates(batch // chunks)
  z = jax.device_put(
      np.random.default_rng(1).normal(
          size=(2 * candidates, config.generator.z_dim)).astype(np.float32),
      sharding.batch_sharded(mesh))
  generator = jax.jit(generate, out_shardings=sharding.batch_sharded(mesh))
  index = sharding.replicate(np.int32(0), mesh)
  out = {}
  out["generator_first_s"], out["generator_s"] = timed(
      generator, lambda _: (frozen.gen_params, z), FLAGS.steps)
  out["synthesis_first_s"], out["synthesis_s"] = timed(
      lambda i: fused.synthesize("train", i, frozen), lambda _: (index,),
      FLAGS.steps)
  made = fused.synthesize("train", index, frozen)
  out["unet_first_s"], out["unet_s"] = timed(
      fused.update,
      lambda r: (fused.init_state() if r is None else r[0], *made[:3]),
      FLAGS.steps)
  out["step_first_s"], out["step_s"] = timed(
      fused.step,
      lambda r: ((fused.init_state(), fused.zero_sums(frozen)) if r is None
                 else r) + (frozen,),
      FLAGS.steps)
  out["masks_filters_s"] = out["synthesis_s"] - out["generator_s"]
  out["generated_per_step"] = candidates
  return out, race(fused, frozen, mesh)


def vs_paper(entry) -> str:
  """Our samples/s over the paper's (paper preset only: same sizes)."""
  if entry["preset"] != "paper":
    return "n/a (not the paper's sizes)"
  return f"{entry['throughput_vs_paper']:.2f}x"


def markdown(entries) -> str:
  lines = [
      "| device | preset | dtype | batch | generator ms | masks+filters ms "
      "| U-Net fwd/bwd ms | fused step ms | samples/s | 12k steps | "
      "samples/s vs paper (45.2/s: 12k x 95 in 7 h) |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
  for e in entries:
    t = e["times"]
    lines.append(
        f"| {e['device']} | {e['preset']} | {e['dtype']} | {e['batch_size']} "
        f"| {1e3 * t['generator_s']:.1f} | {1e3 * t['masks_filters_s']:.1f} "
        f"| {1e3 * t['unet_s']:.1f} | {1e3 * t['step_s']:.1f} "
        f"| {e['samples_per_s']:.1f} | {e['hours_12k_steps']:.2f} h "
        f"| {vs_paper(e)} |")
  lines += ["", "| device | preset | dtype | batch | program | steps per "
            "call | ms / step (wall, median) | ms / step (process CPU) "
            "| wall vs plain | load average (1 min, before/after) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
  for e in entries:
    plain = e.get("contenders", {}).get("plain")
    for name, c in e.get("contenders", {}).items():
      lines.append(
          f"| {e['device']} | {e['preset']} | {e['dtype']} "
          f"| {e['batch_size']} | {name} | {c['steps_per_call']} "
          f"| {1e3 * c['step_s']:.1f} | {1e3 * c['step_cpu_s']:.1f} "
          f"| {c['step_s'] / plain['step_s']:.2f}x "
          f"| {e['load_average'][0]} / {e['load_average_after'][0]} |")
  return "\n".join(lines)


def save_entry(path: str, entry: dict, key: tuple[str, ...]) -> list:
  """Adds `entry` to the JSON list at `path`, replacing the entry with the
  same values of the `key` fields (a re-run); returns the new list."""
  entries = []
  if os.path.exists(path):
    with open(path) as f:
      entries = json.load(f)
  same = lambda e: all(e[k] == entry[k] for k in key)
  entries = [e for e in entries if not same(e)] + [entry]
  fileio.write_json(path, entries)
  return entries


def main(argv):
  del argv
  config = load_config()
  load_before = [round(x, 2) for x in os.getloadavg()]
  times, raced = measure(config)
  step_s = times["step_s"]
  entry = {
      "device": machine.describe(), "preset": FLAGS.preset, "dtype": FLAGS.dtype,
      "batch_size": config.train.batch_size, "jax": jax.__version__,
      "generator": ("the demo's shipped generator 32px"
                    if FLAGS.preset == "demo" else
                    f"BigGAN-arch {config.generator.resolution}px "
                    f"ch{config.generator.ch} attn"
                    f"{config.generator.attention_resolution}, random weights"),
      "load_average": load_before,
      "load_average_after": [round(x, 2) for x in os.getloadavg()],
      "unet_width": config.unet.width, "timed_steps": FLAGS.steps,
      "rounds": FLAGS.rounds, "warmup_rounds": FLAGS.warmup,
      "times": {k: round(v, 5) for k, v in times.items()},
      "contenders": {name: {k: round(v, 5) for k, v in c.items()}
                     for name, c in raced.items()},
      "samples_per_s": config.train.batch_size / step_s,
      "hours_12k_steps": PAPER_STEPS * step_s / 3600,
  }
  if FLAGS.preset == "paper":
    entry["throughput_vs_paper"] = entry["samples_per_s"] / PAPER_SAMPLES_PER_S
  entries = save_entry(FLAGS.out, entry,
                       ("device", "preset", "dtype", "batch_size"))
  print(markdown(entries))


if __name__ == "__main__":
  app.run(main)
