"""The fused training step compiles for a 4-chip Cloud TPU slice, on a CPU.

Needs libtpu (`pip install -e ".[tpu]"`; `make tpu-check` installs it and
runs this test); skipped without it. A tiny config keeps the compile short;
benchmarks/aot_tpu.py compiles every program at the paper's sizes.
"""
import importlib.util
import os
import sys

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import aot_compile  # pylint: disable=g-import-not-at-top,wrong-import-position

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("libtpu") is None,
    reason="libtpu is not installed (pip install -e '.[tpu]'; make tpu-check "
    "runs this test)")


def tiny_config(batch_size):
  config = aot_compile.load_default_config()
  config.generator.update(resolution=32, ch=2, shared_dim=4,
                          attention_resolution=0)
  config.unet.width = 4
  config.train.batch_size = batch_size
  config.synth.max_rounds = 1
  return config


def tree_bytes(tree) -> int:
  return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
             for x in jax.tree.leaves(tree))


def test_fused_step_compiles_for_v5e_2x2_with_its_inputs_in_hbm():
  # Another process (a parallel test worker) may hold libtpu.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  tpu = aot_compile.tpu_slice("v5e-4", "v5e:2x2")
  assert tpu.mesh.size == 4 and tpu.device_kind == "TPU v5 lite"
  config = tiny_config(batch_size=8)
  fused = aot_compile.fused_training(config, tpu.mesh)
  frozen = aot_compile.abstract_frozen(config, tpu.mesh)
  sums = jax.eval_shape(fused.zero_sums, frozen)

  compiled, _ = aot_compile.compile_lowered(
      aot_compile.train_step(config, tpu))
  result = aot_compile.analysis(compiled)

  # Every input is replicated: each chip holds the whole state, the metric
  # sums and the generator. State and sums are donated: the outputs alias
  # them. TPU layouts pad small arrays to (8, 128) tiles, so the sizes are
  # at least the arrays' own bytes.
  state_bytes = tree_bytes(fused.abstract_state) + tree_bytes(sums)
  assert result["output_bytes"] >= result["alias_bytes"] >= state_bytes
  assert (result["argument_bytes"] - result["alias_bytes"]
          >= tree_bytes(frozen))
  assert 0 < result["peak_bytes"] < tpu.chip.hbm
  # Per chip: 2 of the 8 samples; the U-Net's first conv alone (3x3,
  # 3 -> 4 channels at 32x32, forward) is 2 * 2 * 1024 * 27 * 4 FLOPs.
  assert result["flops"] > 2 * 2 * 1024 * 27 * 4
