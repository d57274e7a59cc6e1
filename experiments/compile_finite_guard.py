r"""Compile time of the fused training step under two forms of the finite guard.

  python experiments/compile_finite_guard.py                 # small and demo
  python experiments/compile_finite_guard.py --presets=paper --batch_size=4
  # Compile only, for a Cloud TPU slice (needs libtpu: make .venv-tpu/.installed)
  # or GPUs (the CUDA plugin), as benchmarks/aot_tpu.py does:
  JAX_PLATFORMS=cpu .venv-tpu/bin/python experiments/compile_finite_guard.py \
      --slice=v5e-8 --presets=small --batch_size=16 --warmup=1

The training step keeps the old state when any leaf of (loss, gradients, new
state) is not finite (gansseg_jax.infra.finite). The contenders reduce the
per-leaf flags to one bool in two ways:
  count        the number of finite leaves == the number of leaves (what
               `all_finite` does)
  and_reduce   jnp.all over the stacked flags (the earlier form): XLA rewrites
               it into a chain of scalar ANDs and fuses the whole chain into
               each leaf's select, so the program grows with leaves x leaves
On the local devices both give the same step (checked: identical state
after one call). Each round lowers and compiles the step once per
contender, in turn; medians over --rounds after --warmup untimed rounds
(bench_train's flags, as are --batch_size and --dtype; a TPU compiler's
first compile in a process includes its start-up). Writes
experiments/results/compile_finite_guard.json (--out) and prints a markdown
table.
"""
import os
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.infra import machine
from gansseg_jax.infra import config_files
from gansseg_jax.infra import finite

# The durable tools this study builds on.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks"))
import bench_train  # pylint: disable=g-import-not-at-top,wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results",
                       "compile_finite_guard.json")

flags.DEFINE_list("presets", ["small", "demo"], "bench_train presets to compile.")
flags.DEFINE_string("slice", "", "A TPU slice of aot_tpu.SLICES ('v5e-8', ...) "
                    "or GPUs of aot_compile.GPU_SLICES ('h100x8', ...): "
                    "compile for it, run nothing. Empty: the local devices.")
FLAGS = flags.FLAGS
FLAGS.set_default("out", RESULTS)
FLAGS.set_default("rounds", 2)
FLAGS.set_default("warmup", 0)


def and_reduce(tree):
  """The earlier guard: jnp.all over the stacked per-leaf flags."""
  checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(checks))


CONTENDERS = {"count": finite.all_finite, "and_reduce": and_reduce}


def compile_for_slice(preset: str, guard):
  """(seconds to lower and compile, program lines, None) on FLAGS.slice."""
  import aot_compile  # pylint: disable=g-import-not-at-top
  import aot_tpu  # pylint: disable=g-import-not-at-top
  batch = FLAGS.batch_size or config_files.load_checkout(
      "default", preset).train.batch_size
  config = aot_tpu.make_config(preset, FLAGS.dtype, batch)
  finite.all_finite = guard
  try:
    compiled, seconds = aot_compile.compile_lowered(
        aot_compile.train_step(config, aot_tpu.make_slice(FLAGS.slice)))
  finally:
    finite.all_finite = CONTENDERS["count"]
  return seconds, compiled.as_text().count("\n"), None


def compile_step(preset: str, guard):
  """(seconds to lower and compile, program lines, state after one call)."""
  if FLAGS.slice:
    return compile_for_slice(preset, guard)
  FLAGS.preset = preset
  config = bench_train.load_config()
  finite.all_finite = guard
  try:
    _, _, fused, frozen = bench_train.fused_step(preset, config)
    state, sums = fused.init_state(), fused.zero_sums(frozen)
    start = time.perf_counter()
    compiled = fused.step.lower(state, sums, frozen).compile()
    seconds = time.perf_counter() - start
  finally:
    finite.all_finite = CONTENDERS["count"]
  after, _ = compiled(state, sums, frozen)
  return seconds, compiled.as_text().count("\n"), jax.device_get(after)


def main(argv):
  del argv
  if FLAGS.slice and "demo" in FLAGS.presets:
    raise app.UsageError("--slice compiles the presets small and paper only")
  entry = {"device": machine.describe(), "target": FLAGS.slice or "local",
           "dtype": FLAGS.dtype, "batch_size": FLAGS.batch_size,
           "jax": jax.__version__,
           "xla_flags": os.environ.get("XLA_FLAGS", ""),
           "load_average": [round(x, 2) for x in os.getloadavg()],
           "rounds": FLAGS.rounds, "warmup_rounds": FLAGS.warmup,
           "presets": {}}
  for preset in FLAGS.presets:
    seconds = {name: [] for name in CONTENDERS}
    lines, states = {}, {}
    for round_ in range(FLAGS.warmup + FLAGS.rounds):
      for name, guard in CONTENDERS.items():
        s, lines[name], states[name] = compile_step(preset, guard)
        if round_ >= FLAGS.warmup:
          seconds[name].append(s)
    if not FLAGS.slice:
      jax.tree.map(np.testing.assert_array_equal, states["count"],
                   states["and_reduce"])
    entry["presets"][preset] = {
        name: {"compile_s": round(statistics.median(seconds[name]), 2),
               "program_lines": lines[name]} for name in CONTENDERS}
  entry["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
  entries = bench_train.save_entry(FLAGS.out, entry,
                                   ("device", "target", "dtype", "batch_size"))
  print("| compiled on | for | preset | dtype, batch | count: compile s "
        "(lines) | and_reduce: compile s (lines) |\n|---|---|---|---|---|---|")
  for e in entries:
    for preset, r in e["presets"].items():
      print(f"| {e['device']} | {e['target']} | {preset} | {e['dtype']}, "
            f"{e['batch_size'] or 'preset'} | {r['count']['compile_s']} "
            f"({r['count']['program_lines']}) | "
            f"{r['and_reduce']['compile_s']} "
            f"({r['and_reduce']['program_lines']}) |")


if __name__ == "__main__":
  app.run(main)
