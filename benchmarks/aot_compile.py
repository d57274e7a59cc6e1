"""Compiling the project's jitted programs for Cloud TPU slices on a CPU.

Shared by aot_tpu.py (every program, every slice) and aot_fill.py (the
fused step at several max_rounds). Needs libtpu (`pip install
"jax[tpu]==<pinned jax>"`): `jax.experimental.topologies` then describes a
real TPU slice without a TPU, and `jit(f).lower(*abstract).compile()`
compiles for it. Nothing here runs on a device: every input is a
`jax.ShapeDtypeStruct` with the sharding the real run gives it.

A chip's numbers (published; `CHIPS` cites each):
  peak_flops  bf16 peak FLOP/s per chip. No fp32 peak is published; XLA
              runs fp32 matmuls at the default precision as bf16 passes on
              the MXU, so bf16 peak is the bound for both dtypes.
  hbm_bw      HBM bytes/s per chip;  hbm  HBM bytes per chip.
Roofline estimate of one call (per chip, programs are SPMD):
  max(FLOPs / peak_flops, bytes accessed / hbm_bw).
"""
import dataclasses
import importlib.util
import os
import re
import time
from typing import Any, Callable, NamedTuple

import jax
from jax.experimental import topologies
from jax.sharding import Mesh
import numpy as np

from gansseg_jax.generators import bigbigan
from gansseg_jax.models import biggan
from gansseg_jax.train import checkpointing
from gansseg_jax.train import segmentation
from gansseg_jax.train import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str
  peak_flops: float  # bf16 FLOP/s.
  hbm_bw: float  # bytes/s.
  hbm: float  # bytes.
  source: str


# Keyed by the topology name's generation ('v5e:2x4' -> 'v5e').
CHIPS = {
    "v5e": Chip("TPU v5e", 197e12, 819e9, 16e9,
                "https://cloud.google.com/tpu/docs/v5e (197 TFLOPs bf16; "
                "HBM2 16 GB, 819 GBps)"),
    "v4": Chip("TPU v4", 275e12, 1200e9, 32 * GIB,
               "https://cloud.google.com/tpu/docs/v4 (275 teraflops bf16; "
               "HBM2 32 GiB, 1200 GBps)"),
    "v5p": Chip("TPU v5p", 459e12, 2765e9, 95 * GIB,
                "https://cloud.google.com/tpu/docs/v5p-training (459 TFLOPs "
                "bf16; HBM2e 95 GiB, 2765 GBps)"),
}


class Slice(NamedTuple):
  """A TPU slice as libtpu describes it, and the 1-D 'data' mesh over it."""
  name: str
  topology: str
  chip: Chip
  mesh: Mesh
  hosts: int
  device_kind: str


def tpu_slice(name: str, topology: str, chip_config: str = "") -> Slice:
  """The slice `topology` ('v5e:2x4', 'v4:2x2x1'), one device per chip.

  `chip_config='megacore'` for v4/v5p (libtpu's default lists one device
  per TensorCore there).
  """
  kwargs = {"chip_config_name": chip_config} if chip_config else {}
  desc = topologies.get_topology_desc(topology_name=topology, platform="tpu",
                                      **kwargs)
  devices = desc.devices
  mesh = Mesh(np.array(devices), (sharding.DATA_AXIS,))
  return Slice(name, topology, CHIPS[topology.split(":")[0]], mesh,
               len({d.process_index for d in devices}),
               devices[0].device_kind)


def load_default_config():
  """configs/default.py's config (the benchmarks import no configs module)."""
  path = os.path.join(ROOT, "configs", "default.py")
  spec = importlib.util.spec_from_file_location("aot_default_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def compile_lowered(lower: Callable[[], Any]) -> tuple[Any, float]:
  """(compiled, seconds) of `lower().compile()`, tracing included."""
  start = time.perf_counter()
  compiled = lower().compile()
  return compiled, time.perf_counter() - start


def analysis(compiled) -> dict[str, float]:
  """Per-chip memory (bytes), FLOPs and bytes accessed of a compiled program.

  peak = arguments + outputs + temporaries - aliased (donated) bytes.
  """
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  out = {"argument_bytes": memory.argument_size_in_bytes,
         "output_bytes": memory.output_size_in_bytes,
         "temp_bytes": memory.temp_size_in_bytes,
         "alias_bytes": memory.alias_size_in_bytes,
         "flops": float(cost.get("flops", float("nan"))),
         "bytes_accessed": float(cost.get("bytes accessed", float("nan")))}
  out["peak_bytes"] = (out["argument_bytes"] + out["output_bytes"]
                       + out["temp_bytes"] - out["alias_bytes"])
  return out


def roofline(flops: float, bytes_accessed: float, chip: Chip) -> dict:
  """Seconds per call: compute time, memory time, their max and the bound."""
  t_flops, t_bytes = flops / chip.peak_flops, bytes_accessed / chip.hbm_bw
  return {"t_flops_s": t_flops, "t_bytes_s": t_bytes,
          "roofline_s": max(t_flops, t_bytes),
          "bound": "memory" if t_bytes >= t_flops else "compute"}


def abstract(shape, dtype, sharding_) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding_)


def generator_parts(config, mesh):
  """(generate, abstract generator params replicated on `mesh`)."""
  spec = bigbigan.generator_spec(config)
  params = checkpointing.abstract_like(biggan.abstract_params(spec),
                                       sharding.replicated(mesh))
  return biggan.make_generate(spec, config.generator.dtype), params


def abstract_frozen(config, mesh) -> segmentation.Frozen:
  """The fused step's Frozen inputs (prior latents, lighting rule)."""
  _, params = generator_parts(config, mesh)
  direction = abstract((config.generator.z_dim,), np.float32,
                       sharding.replicated(mesh))
  return segmentation.Frozen(params, direction, None, None)


def fused_training(config, mesh) -> segmentation.FusedTraining:
  """segmentation.build of `config` on `mesh` (the random-weight BigGAN)."""
  generate, _ = generator_parts(config, mesh)
  return segmentation.build(config, mesh, generate)


def train_step(config, tpu: Slice) -> Callable[[], Any]:
  """The fused training step, lowered on `tpu`'s mesh when called.

  Every program builder of aot_tpu.py has this form: (config, Slice) -> a
  thunk returning the Lowered program, for `compile_lowered`.
  """
  mesh = tpu.mesh
  fused, frozen = fused_training(config, mesh), abstract_frozen(config, mesh)
  sums = checkpointing.abstract_like(
      jax.eval_shape(fused.zero_sums, frozen), sharding.replicated(mesh))
  return lambda: fused.step.lower(fused.abstract_state, sums, frozen)


_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2,
                "u16": 2, "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8,
                "u64": 8}
_ARRAY = re.compile(r"\b([a-z]+[0-9]*)\[([0-9,]*)\]")
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT )?%?(?P<name>[\w.\-]+) = (?P<type>\(.*?\)|\S+) "
    r"(?P<op>[a-z][\w\-]*)\((?P<args>[^)]*)\)(?P<rest>.*)$")
_COMPUTATION = re.compile(r"^(?:ENTRY )?%?(?P<name>[\w.\-]+) .*\{\s*$")
# Control flow and aliases: no traffic of their own.
_NO_TRAFFIC = {"while", "tuple", "get-tuple-element", "parameter", "constant",
               "bitcast", "call", "conditional", "opt-barrier"}


def type_bytes(text: str) -> int:
  """Bytes of every array in an HLO type ('f32[2,3]{1,0}', tuples too)."""
  total = 0
  for dtype, dims in _ARRAY.findall(text):
    if dtype in _DTYPE_BYTES:
      total += _DTYPE_BYTES[dtype] * int(np.prod(
          [int(d) for d in dims.split(",") if d] or [1]))
  return total


def hlo_traffic(text: str) -> list[dict]:
  """Top-level instructions of optimized HLO text with their HBM traffic.

  One row per instruction outside fused computations (entry, while bodies
  and conditions, ...): opcode, fusion kind, output + operand bytes (a
  proxy for what it reads and writes: gathers and scatters at random
  indices move more), the computation it is in, and the JAX op_name of its
  metadata (the jitted functions it is inside). Per-op costs are not
  exposed by the compiled object.
  """
  rows, sizes, computation = [], {}, ""
  for line in text.splitlines():
    header = _COMPUTATION.match(line)
    if header and " = " not in line.split("{")[0]:
      computation, sizes = header.group("name"), {}
      continue
    m = _INSTRUCTION.match(line)
    if not m:
      continue
    out = type_bytes(m.group("type"))
    sizes[m.group("name")] = out
    if ("fused" in computation or m.group("op") in _NO_TRAFFIC
        or m.group("op").endswith("-done")):  # Counted at its -start.
      continue
    operands = re.findall(r"%([\w.\-]+)", m.group("args"))
    op_name = re.search(r'op_name="([^"]*)"', m.group("rest"))
    kind = re.search(r"kind=(k\w+)", m.group("rest"))
    rows.append({
        "name": m.group("name"), "op": m.group("op"),
        "kind": kind.group(1) if kind else "",
        "computation": computation,
        "bytes": out + sum(sizes.get(o, 0) for o in operands),
        "op_name": op_name.group(1) if op_name else ""})
  return rows
