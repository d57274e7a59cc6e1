"""The fused training step compiles for a 4-chip Cloud TPU slice, on a CPU.

Needs libtpu (`pip install -e ".[tpu]"`; `make tpu-check` installs it and
runs this test); skipped without it. A tiny config keeps the compile short;
benchmarks/aot_tpu.py compiles every program at the paper's sizes.
"""
import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gansseg_jax.infra import sharding

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


def test_highest_precision_flops_are_split_out_of_xlas_count():
  # XLA's TPU cost analysis counts a float32 multiply-add once whatever the
  # precision; HIGHEST runs as six bf16 MXU passes, and the TPU compile
  # keeps each dot's precision. The roofline charges the classes.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  tpu = aot_compile.tpu_slice("v5e-4", "v5e:2x2")
  rows = jax.sharding.NamedSharding(tpu.mesh, jax.sharding.PartitionSpec(
      sharding.DATA_AXIS))
  whole = jax.sharding.NamedSharding(tpu.mesh, jax.sharding.PartitionSpec())
  a = jax.ShapeDtypeStruct((8, 64, 256), np.float32, sharding=rows)
  b = jax.ShapeDtypeStruct((256, 128), np.float32, sharding=whole)
  f = jax.jit(lambda a, b: (jnp.einsum("bij,jk->bik", a, b, precision="highest")
                            + jnp.einsum("bij,jk->bik", a, b)))
  compiled = f.lower(a, b).compile()
  result = aot_compile.analysis(compiled)
  by_class = aot_compile.hlo_flops(compiled.as_text())
  one_dot = 2 * 2 * 64 * 256 * 128  # Per chip: 2 of the 8 rows.
  assert by_class == {"fp32": one_dot, "tf32": one_dot}
  assert result["flops"] == pytest.approx(2 * one_dot, rel=0.01)
  roofline = aot_compile.roofline(result["flops"], 0.0, tpu.chip, by_class)
  assert roofline["t_flops_s"] == pytest.approx(7 * one_dot / 197e12)


def test_flop_shares_of_the_one_device_lowering_against_the_tpu_compile():
  # aot_tpu.split_flops splits XLA's FLOPs by the shares of the program
  # lowered on one CPU device (the math: no padding). The TPU compile of
  # the same step keeps the generator's HIGHEST convolutions; counted from
  # its HLO (padding included: this config's 2-4 channels pad; XLA:TPU may
  # also rewrite a default-precision float32 convolution as a bf16 one,
  # both one pass), per chip at least the math's FLOPs of each kind, and
  # the HIGHEST share close to the lowering's.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  tpu = aot_compile.tpu_slice("v5e-4", "v5e:2x2")
  config = tiny_config(batch_size=8)
  compiled, _ = aot_compile.compile_lowered(
      aot_compile.train_step(config, tpu))
  by_class = aot_compile.hlo_flops(compiled.as_text())
  lowered = aot_compile.train_step(config, aot_compile.one_device_slice())()
  math = aot_compile.hlo_flops(lowered.as_text(dialect="hlo"))
  shares = aot_compile.flop_shares(lambda: lowered)
  assert set(math) == {"fp32", "tf32"} and set(by_class) <= {
      "fp32", "tf32", "bf16"}
  chips = tpu.mesh.size
  assert by_class["fp32"] >= math["fp32"] / chips
  single_pass = by_class.get("tf32", 0) + by_class.get("bf16", 0)
  assert single_pass >= math["tf32"] / chips
  share = by_class["fp32"] / sum(by_class.values())
  assert share == pytest.approx(shares["fp32"], abs=0.05)
