"""benchmarks/device_check.py: its cost and efficiency columns, and a run.

The columns are checked on a convolution against hand formulas; the run
(`--size=tiny` on this CPU, in-process) is `slow`: XLA:CPU compiles the
fused step's U-Net update in ~35 CPU seconds even at -O0.
"""
import json
import math
import os
import sys

import jax
import jax.numpy as jnp
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import aot_compile  # pylint: disable=g-import-not-at-top,wrong-import-position
import device_check  # pylint: disable=g-import-not-at-top,wrong-import-position

ROW_KEYS = ("preset", "dtype", "program", "status", "compile_s",
            "ms_per_step", "ms_per_step_min", "ms_per_step_all",
            "cpu_ms_per_step", "samples_per_s", "steps_per_call", "batch",
            "rounds_per_step", "filled_fraction", "skipped_steps",
            "flops", "flops_by_class", "peak_bytes")


def conv(x, w):
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_costs_and_efficiency_of_a_convolution_match_hand_counts():
  x, w = jnp.zeros((4, 16, 16, 3)), jnp.zeros((3, 3, 3, 8))
  costs = device_check.costs(jax.jit(conv).lower(x, w).compile())
  flops = 2 * (4 * 16 * 16 * 8) * (3 * 3 * 3)
  assert costs["flops"] == flops and costs["flops_by_class"] == {
      "tf32": flops}
  # Arguments and output, at least (temporaries may add to them).
  assert costs["peak_bytes"] >= 4 * (x.size + w.size + 4 * 16 * 16 * 8)
  assert costs["bytes_accessed"] > 0

  chip = aot_compile.GPUS["h100"]
  entry = dict(costs, ms_per_step=2.0, bytes_accessed=1e9)
  got = device_check.efficiency(entry, chip)
  t_flops, t_bytes = flops / chip.tf32_flops, 1e9 / chip.hbm_bw
  assert got["mfu"] == pytest.approx(flops / (2e-3 * chip.peak_flops))
  assert got["compute_fraction"] == pytest.approx(t_flops / 2e-3)
  assert got["roofline_ms"] == pytest.approx(1e3 * max(t_flops, t_bytes))
  assert got["bound"] == "memory"
  assert device_check.efficiency(entry, None) == {}


def test_chips_by_device_kind_and_the_aot_rows_beside_them():
  kinds = {"NVIDIA H100 80GB HBM3": "h100", "NVIDIA H200": "h200",
           "NVIDIA A100-SXM4-80GB": "a100"}
  for kind, key in kinds.items():
    device = type("Device", (), {"device_kind": kind})()
    assert device_check.chip_of(device) is aot_compile.GPUS[key]
  cpu = type("Device", (), {"device_kind": "cpu", "platform": "cpu"})()
  assert device_check.chip_of(cpu) is None
  assert device_check.device_slug(cpu) == "cpu"

  with open(device_check.AOT_GPU) as f:
    entries = json.load(f)
  want = next(e for e in entries if (
      e["slice"], e["program"], e["dtype"], e["batch"]) == (
          "h100x8", "train_step", "bfloat16", 96))
  got = device_check.aot_estimate("paper", "bfloat16", "plain", 96)
  assert got["roofline_ms"] == pytest.approx(1e3 * want["roofline_s"])
  assert got["one_gpu_ms"] == pytest.approx(8e3 * want["roofline_s"])
  assert device_check.aot_estimate("paper", "bfloat16", "looped", 96)[
      "program"] == "train_loop"
  assert device_check.aot_estimate("demo", "float32", "plain", 96) is None


@pytest.mark.slow
def test_tiny_run_writes_finite_positive_times_for_each_program(tmp_path):
  out = str(tmp_path / "device_check.json")
  rows = ("paper:float32:plain", "paper:bfloat16:looped")
  doc = device_check.run(size="tiny", out=out, steps_per_call=2, warmup=1,
                         repeats=2, only=rows)
  with open(out) as f:
    written = json.load(f)
  assert written["rows"] == json.loads(json.dumps(doc["rows"]))
  assert written["platform"] == "cpu" and written["size"] == "tiny"
  assert [device_check.row_name(r) for r in doc["rows"]] == list(rows)
  for row in doc["rows"]:
    assert row["status"] == "ok", row.get("traceback")
    assert set(ROW_KEYS) <= set(row)
    for key in ("compile_s", "ms_per_step", "ms_per_step_min",
                "cpu_ms_per_step", "samples_per_s", "flops", "peak_bytes"):
      assert math.isfinite(row[key]) and row[key] > 0, key
    assert all(math.isfinite(t) and t > 0 for t in row["ms_per_step_all"])
    assert row["rounds_per_step"] == 1.0  # --max_rounds 1.
    assert row["skipped_steps"] == 0
  assert [r["steps_per_call"] for r in doc["rows"]] == [1, 2]
  table = device_check.markdown(doc)
  assert table.count("\n| paper |") == 2
