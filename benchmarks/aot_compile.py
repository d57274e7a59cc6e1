"""Compiling the project's jitted programs for Cloud TPU slices on a CPU.

Shared by aot_tpu.py (every program, every slice), aot_gpu.py (the same for
NVIDIA GPUs) and aot_fill.py (the fused step at several max_rounds). Needs
libtpu (`pip install "jax[tpu]==<pinned jax>"`): `jax.experimental.
topologies` then describes a real TPU slice without a TPU, and
`jit(f).lower(*abstract).compile()` compiles for it. For GPUs the CUDA
plugin (`jax-cuda12-plugin`, `jax-cuda12-pjrt` at the pinned jax; no CUDA
libraries, no GPU) does the same from a target config (gpu_targets/).
Nothing here runs on a device: every input is a `jax.ShapeDtypeStruct` with
the sharding the real run gives it.

A chip's numbers (published; `CHIPS` cites each):
  peak_flops  bf16 peak FLOP/s per chip. No fp32 peak is published: the
              MXU runs a float32 matmul or convolution as bfloat16 passes,
              one at the default precision, three at Precision.HIGH and
              six at Precision.HIGHEST (jax.lax.Precision's docstring),
              which the generator's float32 layers ask for by default; so
              the float32 classes of `hlo_flops` run at peak_flops ('tf32',
              default), peak_flops / 3 ('fp32_high') and peak_flops / 6
              ('fp32', HIGHEST). XLA's TPU cost analysis counts each
              multiply-add once whatever the precision, so its FLOPs are
              split by each class's share of the program (`flop_shares`).
  hbm_bw      HBM bytes/s per chip;  hbm  HBM bytes per chip.
Roofline estimate of one call (per chip, programs are SPMD):
  max(sum over classes of FLOPs / the class's peak, bytes / hbm_bw).
A GPU has its own tf32_flops and fp32_flops: XLA:GPU runs float32 matmuls
and convolutions as TF32 on tensor cores at the default precision and on
the FP32 cores at Precision.HIGHEST.

XLA:GPU's compile-only executables report no cost analysis (None); their
FLOPs and bytes are then counted from the optimized HLO (`hlo_flops`,
`hlo_traffic`), `cost_source` says which.
"""
import dataclasses
import os
import re
import time
from typing import Any, Callable, NamedTuple

import jax
from jax.experimental import topologies
from jax.sharding import Mesh
import numpy as np

from gansseg_jax.generators import bigbigan
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import sharding
from gansseg_jax.models import biggan
from gansseg_jax.train import segmentation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str
  peak_flops: float  # bf16 FLOP/s.
  hbm_bw: float  # bytes/s.
  hbm: float  # bytes.
  source: str
  tf32_flops: float = 0.0  # FLOP/s of float32 at default precision; 0: bf16.
  fp32_flops: float = 0.0  # FLOP/s of float32 at HIGHEST; 0: bf16 peak.
  high_flops: float = 0.0  # FLOP/s of float32 at HIGH; 0: bf16 peak.

  def peak(self, flop_class: str) -> float:
    """FLOP/s of a `hlo_flops` class ('bf16', 'tf32', 'fp32', 'fp32_high')."""
    return {"tf32": self.tf32_flops, "fp32": self.fp32_flops,
            "fp32_high": self.high_flops}.get(flop_class,
                                              0.0) or self.peak_flops


# bfloat16 MXU passes of a float32 matmul on TPU at Precision.HIGHEST and
# Precision.HIGH (jax.lax.Precision).
HIGHEST_PASSES, HIGH_PASSES = 6, 3
# Keyed by the topology name's generation ('v5e:2x4' -> 'v5e').
CHIPS = {
    "v5e": Chip("TPU v5e", 197e12, 819e9, 16e9,
                "https://cloud.google.com/tpu/docs/v5e (197 TFLOPs bf16; "
                "HBM2 16 GB, 819 GBps)", fp32_flops=197e12 / HIGHEST_PASSES,
                high_flops=197e12 / HIGH_PASSES),
    "v4": Chip("TPU v4", 275e12, 1200e9, 32 * GIB,
               "https://cloud.google.com/tpu/docs/v4 (275 teraflops bf16; "
               "HBM2 32 GiB, 1200 GBps)", fp32_flops=275e12 / HIGHEST_PASSES,
               high_flops=275e12 / HIGH_PASSES),
    "v5p": Chip("TPU v5p", 459e12, 2765e9, 95 * GIB,
                "https://cloud.google.com/tpu/docs/v5p-training (459 TFLOPs "
                "bf16; HBM2e 95 GiB, 2765 GBps)",
                fp32_flops=459e12 / HIGHEST_PASSES,
                high_flops=459e12 / HIGH_PASSES),
}

# NVIDIA's dense (no sparsity) tensor-core peaks; the datasheets list
# TF32/BF16 "with sparsity", twice these. Each GPU's target config (the
# GpuTargetConfigProto XLA compiles for) is in gpu_targets/.
GPUS = {
    "h100": Chip("NVIDIA H100 SXM5 80GB", 989.5e12, 3.35e12, 80e9,
                 "https://www.nvidia.com/en-us/data-center/h100/ datasheet, "
                 "H100 SXM: FP32 67 TFLOPS, TF32 989 / BF16 1,979 TFLOPS "
                 "with sparsity (halved here), 80 GB HBM3, 3.35 TB/s",
                 tf32_flops=494.5e12, fp32_flops=67e12,
                 high_flops=494.5e12),
    "h200": Chip("NVIDIA H200 SXM 141GB", 989.5e12, 4.8e12, 141e9,
                 "https://www.nvidia.com/en-us/data-center/h200/ datasheet, "
                 "H200 SXM: FP32 67 TFLOPS, TF32 989 / BF16 1,979 TFLOPS "
                 "with sparsity (halved here), 141 GB HBM3e, 4.8 TB/s",
                 tf32_flops=494.5e12, fp32_flops=67e12,
                 high_flops=494.5e12),
    "a100": Chip("NVIDIA A100 SXM4 80GB", 312e12, 2.039e12, 80e9,
                 "https://www.nvidia.com/en-us/data-center/a100/ datasheet, "
                 "A100 80GB SXM: FP32 19.5, TF32 156, BF16 312 TFLOPS "
                 "(dense), 80 GB HBM2e, 2,039 GB/s",
                 tf32_flops=156e12, fp32_flops=19.5e12,
                 high_flops=156e12),
}
GPU_TARGETS = {"h100": "h100_sxm_80gb.txtpb", "a100": "a100_sxm_80gb.txtpb"}
# name -> (GPUS key, GPUs): one process, one device per GPU.
GPU_SLICES = {"h100x8": ("h100", 8), "a100x8": ("a100", 8)}


class Slice(NamedTuple):
  """A TPU slice (or GPU box) and the 1-D 'data' mesh over its chips."""
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


def gpu_slice(name: str, gpu: str, count: int) -> Slice:
  """`count` compile-only GPUs of kind `gpu` (GPUS) in one process.

  Needs the CUDA plugin, whose check of the CUDA libraries (absent here)
  is skipped with JAX_PLATFORMS=cpu or JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1;
  topology 1x1xN = one slice, one host, N devices.
  """
  path = os.path.join(ROOT, "benchmarks", "gpu_targets", GPU_TARGETS[gpu])
  with open(path) as f:
    target_config = f.read()
  topology = f"1x1x{count}"
  desc = topologies.get_topology_desc(
      topology_name=topology, platform="cuda", topology=topology,
      target_config=target_config)
  devices = desc.devices
  mesh = Mesh(np.array(devices), (sharding.DATA_AXIS,))
  return Slice(name, topology, GPUS[gpu], mesh,
               len({d.process_index for d in devices}),
               devices[0].device_kind)


def compile_lowered(lower: Callable[[], Any]) -> tuple[Any, float]:
  """(compiled, seconds) of `lower().compile()`, tracing included."""
  start = time.perf_counter()
  compiled = lower().compile()
  return compiled, time.perf_counter() - start


def analysis(compiled) -> dict:
  """Per-chip memory (bytes), FLOPs and bytes accessed of a compiled program.

  peak = arguments + outputs + temporaries - aliased (donated) bytes.
  FLOPs and bytes from XLA's cost analysis, or where it gives none
  (XLA:GPU compile-only) from the optimized HLO: FLOPs of its dots and
  convolutions by class (`flops_by_class`), bytes = the kernels' operand +
  output bytes (`hlo_traffic`). (TPU's optimized HLO is not counted: on the
  paper's step at 128 samples per chip `hlo_flops` gave 38x XLA's total,
  the TPU's rewritten convolutions not being the forms it counts;
  aot_tpu.py splits XLA's FLOPs by `flop_shares` instead.)
  """
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  out = {"argument_bytes": memory.argument_size_in_bytes,
         "output_bytes": memory.output_size_in_bytes,
         "temp_bytes": memory.temp_size_in_bytes,
         "alias_bytes": memory.alias_size_in_bytes}
  if cost:
    out.update(cost_source="xla",
               flops=float(cost.get("flops", float("nan"))),
               bytes_accessed=float(cost.get("bytes accessed",
                                             float("nan"))))
  else:
    text = compiled.as_text()
    by_class = hlo_flops(text)
    out.update(cost_source="hlo", flops_by_class=by_class,
               flops=float(sum(by_class.values())),
               bytes_accessed=float(sum(r["bytes"]
                                        for r in hlo_traffic(text))))
  out["peak_bytes"] = (out["argument_bytes"] + out["output_bytes"]
                       + out["temp_bytes"] - out["alias_bytes"])
  return out


def roofline(flops: float, bytes_accessed: float, chip: Chip,
             flops_by_class: dict | None = None) -> dict:
  """Seconds per call: compute time, memory time, their max and the bound.

  With `flops_by_class` (hlo_flops) each class runs at its own peak
  (Chip.peak) and `flops` is not used: elementwise work, which XLA's cost
  analysis counts too, does not run on the MXU or tensor cores.
  """
  if flops_by_class:
    t_flops = sum(f / chip.peak(c) for c, f in flops_by_class.items())
  else:
    t_flops = flops / chip.peak_flops
  t_bytes = bytes_accessed / chip.hbm_bw
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
  return biggan.make_generate(
      spec, config.generator.dtype,
      precision=config.generator.matmul_precision), params


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


def _inner_computations(text: str) -> set[str]:
  """Computations run inside one instruction: fusion bodies, reducers.

  Fusion bodies by the fusions' `calls=` (XLA:GPU names them
  'fused_*', 'gemm_fusion_*', ...), and by name; reducers and comparators
  by `to_apply=`.
  """
  names = set(re.findall(r"to_apply=%?([\w.\-]+)", text))
  for line in text.splitlines():
    if " fusion(" in line:
      names.update(re.findall(r"calls=%?([\w.\-]+)", line))
  names.update(m.group("name") for m in map(_COMPUTATION.match,
                                            text.splitlines())
               if m and "fused" in m.group("name"))
  return names


def hlo_traffic(text: str) -> list[dict]:
  """Top-level instructions of optimized HLO text with their HBM traffic.

  One row per instruction outside fused computations (entry, while bodies
  and conditions, ...): opcode, fusion kind, output + operand bytes (a
  proxy for what it reads and writes: gathers and scatters at random
  indices move more), the computation it is in, and the JAX op_name of its
  metadata (the jitted functions it is inside). Per-op costs are not
  exposed by the compiled object.
  """
  inner = _inner_computations(text)
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
    if (computation in inner or m.group("op") in _NO_TRAFFIC
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


# cuDNN convolution custom call -> (the forward convolution's output, its
# kernel): "out" = the call's first result, an int = that operand.
_CUDNN_CONVOLUTIONS = {
    "__cudnn$convForward": ("out", 1),
    "__cudnn$convBiasActivationForward": ("out", 1),
    "__cudnn$convBackwardInput": (0, 1),
    "__cudnn$convBackwardFilter": (1, "out"),
}
_CUBLAS_GEMMS = ("__cublas$gemm", "__cublas$lt$matmul")


def _first_array(type_text: str) -> tuple[str, list[int]]:
  """(dtype, dims) of the first array of an HLO type (a tuple's first)."""
  dtype, dims = _ARRAY.search(type_text).groups()
  return dtype, [int(d) for d in dims.split(",") if d]


_PRECISION = re.compile(r"operand_precision=\{(\w+)", re.IGNORECASE)
# float32 classes by operand precision (absent: the default).
_FLOAT32_CLASSES = {"highest": "fp32", "high": "fp32_high"}


def _flop_class(dtype: str, rest: str) -> str:
  if dtype in ("bf16", "f16"):
    return "bf16"
  precision = _PRECISION.search(rest)
  return _FLOAT32_CLASSES.get(precision.group(1).lower() if precision else "",
                              "tf32")


def operand_names(args: str) -> list[str]:
  """Operand names of an instruction's argument list: '%name's in optimized
  HLO ('f32[4]{0} %a, ...'), bare names before optimization ('a.1, b.1')."""
  return (re.findall(r"%([\w.\-]+)", args)
          or [a.strip() for a in args.split(",") if a.strip()])


def one_device_slice() -> Slice:
  """This process's first CPU device as a one-chip 'slice': a program
  lowered on it holds all its work in one HLO module (no partitioning),
  which is what `flop_shares` counts."""
  device = jax.devices("cpu")[0]
  return Slice("cpu-1", "", Chip("CPU", 0.0, 0.0, 0.0, ""),
               Mesh(np.array([device]), (sharding.DATA_AXIS,)), 1,
               device.device_kind)


def flop_shares(lower: Callable[[], Any]) -> dict[str, float]:
  """Each class's share of the dot and convolution FLOPs (`hlo_flops`) of a
  lowered program, counted before optimization (`lower()` returns the
  Lowered program; build it on `one_device_slice()`)."""
  by_class = hlo_flops(lower().as_text(dialect="hlo"))
  total = sum(by_class.values())
  return {c: f / total for c, f in by_class.items()} if total else {}


def hlo_flops(text: str) -> dict[str, float]:
  """FLOPs of the dots and convolutions of optimized HLO text, by class.

  Each instruction once, fusion bodies included (a while body once, as
  XLA's cost analysis counts it); elementwise work is not counted.
    dot, cuBLAS gemm: 2 * output elements * contracted size (the lhs's
      contracting dimensions);
    convolution, cuDNN convolutions: 2 * forward output elements * kernel
      elements / kernel output features ('o' of dim_labels), i.e. two
      FLOPs per multiply-add (backward input and filter passes do as many
      as the forward).
  Class (Chip.peak): 'bf16' for 16-bit operands; float32 is 'fp32' at
  operand_precision highest (GPU: FP32 cores; TPU: six bf16 passes),
  'fp32_high' at high (GPU: TF32; TPU: three passes), else 'tf32' (the
  default: GPU TF32, TPU one bf16 pass). Reads optimized HLO
  (compiled.as_text()) and HLO before optimization (lowered.as_text(
  dialect='hlo'), whose operands are bare names).
  """
  types, flops = {}, {}
  for line in text.splitlines():
    m = _INSTRUCTION.match(line)
    if not m:
      continue
    types[m.group("name")] = m.group("type")
    op, rest = m.group("op"), m.group("rest")
    operands = [types.get(o, "") for o in operand_names(m.group("args"))]
    target = re.search(r'custom_call_target="([^"]+)"', rest)
    target = target.group(1) if target else ""
    if op == "dot" or target in _CUBLAS_GEMMS:
      if op == "dot":
        contracting = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", rest)
        contracting = contracting.group(1).split(",")
      else:
        contracting = re.search(
            r'"lhs_contracting_dimensions":\[([^\]]*)\]', rest)
        contracting = re.findall(r"\d+", contracting.group(1))
      dtype, lhs = _first_array(operands[0])
      _, out = _first_array(m.group("type"))
      macs = np.prod(out) * np.prod([lhs[int(d)] for d in contracting if d])
    elif op == "convolution" or target in _CUDNN_CONVOLUTIONS:
      output, kernel = _CUDNN_CONVOLUTIONS.get(target, ("out", 1))
      arrays = {"out": m.group("type"), 0: operands[0], 1: operands[1]}
      _, output = _first_array(arrays[output])
      _, kernel_dims = _first_array(arrays[kernel])
      labels = re.search(r"dim_labels=[^_]+_([^-]+)->", rest).group(1)
      dtype, _ = _first_array(operands[0])
      macs = (np.prod(output) * np.prod(kernel_dims)
              / kernel_dims[labels.index("o")])
    else:
      continue
    cls = _flop_class(dtype, rest)
    flops[cls] = flops.get(cls, 0.0) + 2.0 * float(macs)
  return flops
