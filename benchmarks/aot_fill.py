r"""Compiles the fused training step for a Cloud TPU slice on this machine.

  # needs `pip install "jax[tpu]==0.10.2"` (libtpu compiles for TPU
  # topologies without a TPU); the paper's sizes, one round vs the loop:
  JAX_PLATFORMS=cpu python benchmarks/aot_fill.py --topology=v5e:2x2 \
      --max_rounds=1,16

For each config.synth.max_rounds it lowers `segmentation.build(...).step` of
configs/default.py at the preset's sizes (bench_train.py's presets; 'paper' =
BigGAN-128 ch 96 random weights, U-Net width 64) on a 1-D mesh over the
slice's chips (one device per chip), global batch --batch_size, and records
XLA's compile-time analysis per chip: peak memory (arguments + outputs +
temporaries - aliased), FLOPs and bytes accessed from `cost_analysis()`.
XLA costs a `while_loop` body once, whatever its trip count, so the loop's
FLOPs are those of one round plus the loop's bookkeeping; a step that runs k
rounds does about k times the synthesis part (see bench_fill.py for measured
times).

Writes benchmarks/results/aot_fill.json (one entry per topology, preset,
batch and max_rounds, replaced on re-run) and prints the markdown table.
"""
import json
import os
import time

from absl import app
from absl import flags
from flax import nnx
import jax
from jax.experimental import topologies
from jax.sharding import Mesh
import numpy as np

from gansseg_jax import fileio
from gansseg_jax.generators import bigbigan
from gansseg_jax.models import biggan
from gansseg_jax.train import checkpointing
from gansseg_jax.train import segmentation
from gansseg_jax.train import sharding

import bench_train  # pylint: disable=g-bad-import-order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "aot_fill.json")

flags.DEFINE_string("topology", "v5e:2x2", "TPU slice, e.g. v5e:2x2, v4:2x2x1.")
flags.DEFINE_string("chip_config", "", "'megacore' for v4/v5p (one device "
                    "per chip); empty = libtpu's default.")
flags.DEFINE_list("max_rounds", ["1", "16"], "config.synth.max_rounds values.")
flags.DEFINE_string("aot_out", RESULTS, "JSON results file.")
FLAGS = flags.FLAGS


def abstract_frozen(config, mesh):
  """ShapeDtypeStructs of the step's Frozen inputs, replicated on `mesh`."""
  spec = bigbigan.generator_spec(config)
  params = nnx.to_pure_dict(nnx.state(nnx.eval_shape(
      lambda: biggan.BigGAN(spec))))
  direction = jax.ShapeDtypeStruct((config.generator.z_dim,), np.float32)
  return checkpointing.abstract_like(
      segmentation.Frozen(params, direction, None, None),
      sharding.replicated(mesh)), spec


def compile_step(config, mesh):
  """(compiled step, seconds to compile) of `config` on `mesh`."""
  frozen, spec = abstract_frozen(config, mesh)
  fused = segmentation.build(
      config, mesh, biggan.make_generate(spec, config.generator.dtype))
  sums = checkpointing.abstract_like(
      jax.eval_shape(fused.zero_sums, frozen), sharding.replicated(mesh))
  start = time.perf_counter()
  compiled = fused.step.lower(fused.abstract_state, sums, frozen).compile()
  return compiled, time.perf_counter() - start


def analysis(compiled) -> dict:
  """Per-chip peak memory, FLOPs and bytes accessed of a compiled step."""
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  peak = (memory.argument_size_in_bytes + memory.output_size_in_bytes
          + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
  return {"peak_gib": peak / 2**30,
          "temp_gib": memory.temp_size_in_bytes / 2**30,
          "tflop": cost.get("flops", float("nan")) / 1e12,
          "gb_accessed": cost.get("bytes accessed", float("nan")) / 1e9}


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
  kwargs = {"chip_config_name": FLAGS.chip_config} if FLAGS.chip_config else {}
  topology = topologies.get_topology_desc(topology_name=FLAGS.topology,
                                          platform="tpu", **kwargs)
  mesh = Mesh(np.array(topology.devices), (sharding.DATA_AXIS,))
  entries = []
  if os.path.exists(FLAGS.aot_out):
    with open(FLAGS.aot_out) as f:
      entries = json.load(f)
  key = lambda e: (e["topology"], e["preset"], e["dtype"], e["batch_size"],
                   e["max_rounds"])
  for rounds in FLAGS.max_rounds:
    config = bench_train.load_config()
    config.synth.max_rounds = int(rounds)
    compiled, seconds = compile_step(config, mesh)
    entry = {"topology": FLAGS.topology, "chips": mesh.size,
             "device_kind": topology.devices[0].device_kind,
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
