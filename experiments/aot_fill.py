r"""Compiles the fused training step for a Cloud TPU slice on this machine.

  # needs `pip install "jax[tpu]==0.10.2"` (libtpu compiles for TPU
  # topologies without a TPU); the paper's sizes, one round vs the loop:
  JAX_PLATFORMS=cpu python experiments/aot_fill.py --topology=v5e:2x2 \
      --max_rounds=1,16

For each config.synth.max_rounds it lowers `segmentation.build(...).step` of
configs/default.py at the preset's sizes (configs/default.py:small or :paper =
BigGAN-128 ch 96 random weights, U-Net width 64) on a 1-D mesh over the
slice's chips (one device per chip), global batch --batch_size, and records
XLA's compile-time analysis per chip: peak memory (arguments + outputs +
temporaries - aliased), FLOPs and bytes accessed from `cost_analysis()`.
XLA costs a `while_loop` body once, whatever its trip count, so the loop's
FLOPs are those of one round plus the loop's bookkeeping; a step that runs k
rounds does about k times the synthesis part (see bench_fill.py for measured
times).

Writes experiments/results/aot_fill.json (one entry per topology, preset,
batch and max_rounds, replaced on re-run) and prints the markdown table.
"""
import json
import os
import sys

from absl import app
from absl import flags
import jax

from gansseg_jax.infra import fileio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The durable tools this study builds on.
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import aot_compile  # pylint: disable=g-import-not-at-top,wrong-import-position
import bench_train  # pylint: disable=g-import-not-at-top,wrong-import-position

RESULTS = os.path.join(ROOT, "experiments", "results", "aot_fill.json")

flags.DEFINE_string("topology", "v5e:2x2", "TPU slice, e.g. v5e:2x2, v4:2x2x1.")
flags.DEFINE_string("chip_config", "", "'megacore' for v4/v5p (one device "
                    "per chip); empty = libtpu's default.")
flags.DEFINE_list("max_rounds", ["1", "16"], "config.synth.max_rounds values.")
flags.DEFINE_string("aot_out", RESULTS, "JSON results file.")
FLAGS = flags.FLAGS


def analysis(compiled) -> dict:
  """Per-chip peak and temp GiB, TFLOP and GB accessed of a compiled step."""
  a = aot_compile.analysis(compiled)
  return {"peak_gib": a["peak_bytes"] / 2**30,
          "temp_gib": a["temp_bytes"] / 2**30, "tflop": a["flops"] / 1e12,
          "gb_accessed": a["bytes_accessed"] / 1e9}


def markdown(entries) -> str:
  lines = ["| slice | preset | dtype | global batch | max_rounds | compile s "
           "| peak GiB / chip | TFLOP / chip | GB accessed / chip |",
           "|---|---|---|---|---|---|---|---|---|"]
  for e in entries:
    lines.append(
        f"| {e['topology']} | {e['preset']} | {e['dtype']} | {e['batch_size']} "
        f"| {e['max_rounds']} | {e['compile_s']:.0f} | {e['peak_gib']:.2f} "
        f"| {e['tflop']:.2f} | {e['gb_accessed']:.1f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  tpu = aot_compile.tpu_slice(FLAGS.topology, FLAGS.topology,
                              FLAGS.chip_config)
  entries = []
  if os.path.exists(FLAGS.aot_out):
    with open(FLAGS.aot_out) as f:
      entries = json.load(f)
  key = lambda e: (e["topology"], e["preset"], e["dtype"], e["batch_size"],
                   e["max_rounds"])
  for rounds in FLAGS.max_rounds:
    config = bench_train.load_config()
    config.synth.max_rounds = int(rounds)
    compiled, seconds = aot_compile.compile_lowered(
        aot_compile.train_step(config, tpu))
    entry = {"topology": FLAGS.topology, "chips": tpu.mesh.size,
             "device_kind": tpu.device_kind,
             "preset": FLAGS.preset, "dtype": FLAGS.dtype,
             "batch_size": config.train.batch_size,
             "max_rounds": int(rounds), "jax": jax.__version__,
             "compile_s": seconds, **analysis(compiled)}
    print(json.dumps(entry), flush=True)
    entries = [e for e in entries if key(e) != key(entry)] + [entry]
    fileio.write_json(FLAGS.aot_out, entries)
  print(markdown(entries))


if __name__ == "__main__":
  app.run(main)
