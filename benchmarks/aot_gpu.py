r"""Every jitted program of a real run, compiled for NVIDIA GPUs on a CPU.

  # needs the CUDA plugin at the pinned jax, without CUDA libraries or a GPU
  # (`make gpu-check` installs it into .venv-gpu):
  #   pip install "jax-cuda12-plugin==0.10.2" "jax-cuda12-pjrt==0.10.2"
  # small sizes, every program, 8 H100s (a few minutes):
  python benchmarks/aot_gpu.py --size=small
  # the paper's sizes:
  python benchmarks/aot_gpu.py --size=paper --slices=h100x8,a100x8

aot_tpu.py's programs, matrix, JSON and table (its flags, same meanings) for
the GPU boxes of aot_compile.GPU_SLICES: 'h100x8' = 8 H100 SXM5 80GB, one
process, a 1-D 'data' mesh over them; 'a100x8' the same with A100 SXM4
80GB. `jax.experimental.topologies` describes them from a
GpuTargetConfigProto (gpu_targets/, written from NVIDIA's published
numbers) through the CUDA plugin; JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1 skips
its check of the CUDA libraries, which a compile does not load.

Compiler-derived estimates, not measurements: nothing runs on a GPU.
memory_analysis() is XLA:GPU's per device. XLA:GPU's compile-only
executables return no cost_analysis(), so FLOPs are counted from the
optimized HLO (aot_compile.hlo_flops: dots and convolutions, by class,
each at its own peak: BF16 / TF32 tensor cores, FP32 cores for float32
at Precision.HIGHEST, which the generator asks for) and bytes are the
kernels' operand + output bytes (aot_compile.hlo_traffic), an upper bound
on HBM traffic that ignores L2 hits. aot_compile.GPUS cites each GPU's
numbers. Results: benchmarks/results/aot_gpu.json (resumable).
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

import aot_compile
import aot_tpu

RESULTS = os.path.join(aot_compile.ROOT, "benchmarks", "results",
                       "aot_gpu.json")

flags.FLAGS.set_default("slices", ["h100x8"])
flags.FLAGS.set_default("aot_out", RESULTS)
flags.FLAGS.set_default("multihost", [])
flags.FLAGS.set_default("search", False)
# A batch fits within JAX's default pool: 75% of the GPU's memory
# (XLA_PYTHON_CLIENT_MEM_FRACTION).
flags.FLAGS.set_default("hbm_fraction", 0.75)

if __name__ == "__main__":
  app.run(aot_tpu.main)
