"""Compiling for NVIDIA GPUs on a CPU, and the FLOPs counted from HLO.

The HLO FLOP count (what benchmarks/aot_gpu.py reports, XLA:GPU having no
cost analysis) is checked on XLA:CPU programs against hand formulas. The
GPU compiles need the CUDA plugin (`make gpu-check` installs it and runs
this file); they are skipped without it.
"""
import collections
import importlib.util
import os
import re
import sys

# The CUDA plugin skips its check of the CUDA libraries (absent here):
# compiling needs neither them nor a GPU.
os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
from jax.sharding import PartitionSpec  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import aot_compile  # pylint: disable=g-import-not-at-top,wrong-import-position
from gansseg_jax.train import segmentation  # pylint: disable=g-import-not-at-top

needs_cuda_plugin = pytest.mark.skipif(
    importlib.util.find_spec("jax_cuda12_plugin") is None,
    reason="the CUDA plugin is not installed (pip install "
    "jax-cuda12-plugin==<jax> jax-cuda12-pjrt==<jax>; make gpu-check runs "
    "this test)")
HIGHEST = jax.lax.Precision.HIGHEST


def conv(x, w, precision=None):
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=precision)


def compiled_flops(f, *args) -> dict:
  return aot_compile.hlo_flops(jax.jit(f).lower(*args).compile().as_text())


def test_hlo_flops_of_dots_and_convolutions_match_hand_counts():
  a, b = jnp.zeros((32, 64)), jnp.zeros((64, 16))
  assert compiled_flops(jnp.matmul, a, b) == {"tf32": 2 * 32 * 64 * 16}
  batched = jnp.zeros((3, 5, 7)), jnp.zeros((3, 7, 2))
  assert compiled_flops(jnp.matmul, *batched) == {"tf32": 2 * 3 * 5 * 7 * 2}

  x, w = jnp.zeros((4, 16, 16, 3)), jnp.zeros((3, 3, 3, 8))
  forward = 2 * (4 * 16 * 16 * 8) * (3 * 3 * 3)  # Per output: 3x3x3 taps.
  assert compiled_flops(conv, x, w) == {"tf32": forward}

  def both_gradients(x, w, dy):  # Backward input + backward filter.
    _, back = jax.vjp(lambda x, w: conv(x, w, HIGHEST), x, w)
    return back(dy)
  assert compiled_flops(both_gradients, x, w, jnp.zeros((4, 16, 16, 8))) == {
      "fp32": 2 * forward}

  grouped = jnp.zeros((2, 8, 8, 6)), jnp.zeros((3, 3, 2, 6))
  depthwise = lambda x, w: jax.lax.conv_general_dilated(  # 3 groups of 2.
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=3)
  assert compiled_flops(depthwise, *grouped) == {
      "tf32": 2 * (2 * 8 * 8 * 6) * (3 * 3 * 2)}


def test_hlo_flops_reads_hlo_before_optimization_and_flop_shares():
  # Lowered HLO names operands bare ('dot(a.1, b.1)'); same counts as the
  # compiled program's.
  x, w = jnp.zeros((4, 16, 16, 3)), jnp.zeros((3, 3, 3, 8))
  a, b = jnp.zeros((32, 64)), jnp.zeros((64, 16))

  def mixed(x, w, a, b):
    return (conv(x, w, HIGHEST).sum() + jnp.matmul(a, b).sum()
            + jnp.matmul(b.T, a.T, precision="high").sum())
  lowered = jax.jit(mixed).lower(x, w, a, b)
  counts = {"fp32": 2 * (4 * 16 * 16 * 8) * (3 * 3 * 3),
            "tf32": 2 * 32 * 64 * 16, "fp32_high": 2 * 32 * 64 * 16}
  assert aot_compile.hlo_flops(lowered.as_text(dialect="hlo")) == counts
  assert compiled_flops(mixed, x, w, a, b) == counts
  shares = aot_compile.flop_shares(lambda: lowered)
  assert shares == pytest.approx(
      {c: f / sum(counts.values()) for c, f in counts.items()})


def test_gpu_roofline_runs_each_flop_class_at_its_peak():
  h100 = aot_compile.GPUS["h100"]
  by_class = {"bf16": 989.5e12, "tf32": 494.5e12, "fp32": 67e12}
  result = aot_compile.roofline(sum(by_class.values()), 1.0, h100, by_class)
  assert result["t_flops_s"] == pytest.approx(3.0)
  assert result["bound"] == "compute"
  # TPU: float32 runs as bf16 MXU passes, one at the default precision and
  # six at HIGHEST.
  tpu = aot_compile.CHIPS["v5e"]
  assert tpu.peak("tf32") == tpu.peak("bf16") == 197e12
  assert tpu.peak("fp32") == 197e12 / 6 and tpu.peak("fp32_high") == 197e12 / 3
  assert h100.peak("fp32_high") == h100.peak("tf32")
  result = aot_compile.roofline(0.0, 0.0, tpu, {"fp32": 197e12, "bf16": 0.0})
  assert result["t_flops_s"] == pytest.approx(6.0)


@needs_cuda_plugin
def test_sgd_step_compiles_for_two_h100s_with_its_inputs_per_device():
  gpus = aot_compile.gpu_slice("h100x2", "h100", 2)
  assert gpus.mesh.size == 2 and gpus.hosts == 1
  assert gpus.device_kind == "NVIDIA H100 80GB HBM3"
  batch, features, classes = 64, 96, 40
  replicated = NamedSharding(gpus.mesh, PartitionSpec())
  sharded = NamedSharding(gpus.mesh, PartitionSpec("data"))
  w = jax.ShapeDtypeStruct((features, classes), jnp.float32,
                           sharding=replicated)
  x = jax.ShapeDtypeStruct((batch, features), jnp.float32, sharding=sharded)

  def step(w, x):
    loss = lambda w: jnp.mean(jnp.dot(x, w, precision=HIGHEST) ** 2)
    return w - 0.1 * jax.grad(loss)(w)

  compiled = jax.jit(step, donate_argnums=0).lower(w, x).compile()
  result = aot_compile.analysis(compiled)

  # Per device: the whole w (replicated, donated: the output aliases it)
  # and half of x.
  w_bytes, x_bytes = features * classes * 4, batch * features * 4
  assert result["argument_bytes"] == w_bytes + x_bytes // 2
  assert result["alias_bytes"] == result["output_bytes"] == w_bytes
  assert result["cost_source"] == "hlo"
  # x @ w and x.T @ dy on 32 rows per device, float32 at HIGHEST.
  assert result["flops_by_class"] == {
      "fp32": 2 * (2 * (batch // 2) * features * classes)}
  # The gradient is summed over the two devices.
  assert "all-reduce" in compiled.as_text()
  assert result["bytes_accessed"] >= w_bytes + x_bytes // 2

  # XLA:GPU keeps bfloat16 dots in bfloat16 (XLA:CPU upcasts them).
  half = jax.ShapeDtypeStruct((batch, features), jnp.bfloat16,
                              sharding=sharded)
  bf16_w = jax.ShapeDtypeStruct((features, classes), jnp.bfloat16,
                                sharding=replicated)
  assert aot_compile.hlo_flops(
      jax.jit(jnp.dot).lower(half, bf16_w).compile().as_text()) == {
          "bf16": 2 * (batch // 2) * features * classes}


def tree_bytes(tree) -> int:
  return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
             for x in jax.tree.leaves(tree))



def tiny_config():
  """The default config at compile-test size: 32 px generator, ch 2, U-Net
  width 4, batch 4, one synthesis round."""
  config = aot_compile.load_default_config()
  config.generator.update(resolution=32, ch=2, shared_dim=4,
                          attention_resolution=0)
  config.unet.width = 4
  config.train.batch_size = 4
  config.synth.max_rounds = 1
  return config

@pytest.mark.slow  # About a minute of compiling on two loaded cores.
@needs_cuda_plugin
def test_fused_training_step_compiles_for_two_a100s():
  gpus = aot_compile.gpu_slice("a100x2", "a100", 2)
  assert gpus.device_kind == "NVIDIA A100-SXM4-80GB"
  config = tiny_config()
  fused = aot_compile.fused_training(config, gpus.mesh)
  frozen = aot_compile.abstract_frozen(config, gpus.mesh)
  sums = jax.eval_shape(fused.zero_sums, frozen)

  result = aot_compile.analysis(aot_compile.compile_lowered(
      aot_compile.train_step(config, gpus))[0])

  # Replicated state, sums and generator on each GPU, unpadded (XLA:GPU
  # keeps dense layouts); state and sums donated: outputs alias them.
  state_bytes = tree_bytes(fused.abstract_state) + tree_bytes(sums)
  assert result["alias_bytes"] == state_bytes
  assert result["argument_bytes"] == state_bytes + tree_bytes(frozen)
  assert 0 < result["peak_bytes"] < gpus.chip.hbm
  # The U-Net's first conv alone, forward, on 2 of the 4 samples: 3x3,
  # 3 -> 4 channels at 32x32 (default precision: TF32).
  assert result["flops_by_class"]["tf32"] > 2 * 2 * 1024 * 4 * 27
  # The generator asks for HIGHEST precision in float32.
  assert result["flops_by_class"]["fp32"] > 0


def convolutions_by_place(hlo: str) -> collections.Counter:
  """Convolutions of optimized HLO: ('in while' | 'outside', kind).

  kind: the cuDNN custom-call target, or 'convolution' for one left to
  XLA's own emitter. 'in while' = in a while body or condition or in a
  computation they call (fusions, nested loops), found by walking the
  calls from every while loop's body and condition.
  """
  callees, loops, bodies = collections.defaultdict(set), set(), {}
  computation = None
  for line in hlo.splitlines():
    header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if header:
      computation = header.group(1)
      bodies[computation] = []
      continue
    if computation is None:
      continue
    bodies[computation].append(line)
    callees[computation].update(re.findall(
        r"(?:body|condition|calls|to_apply|true_computation|"
        r"false_computation)=%?([\w.\-]+)", line))
    for branches in re.findall(r"branch_computations=\{([^}]*)\}", line):
      callees[computation].update(
          b.strip().lstrip("%") for b in branches.split(","))
    if " while(" in line:
      loops.update(re.findall(r"(?:body|condition)=%?([\w.\-]+)", line))
  inside, todo = set(), list(loops)
  while todo:
    name = todo.pop()
    if name not in inside:
      inside.add(name)
      todo.extend(callees[name])
  counts = collections.Counter()
  for name, lines in bodies.items():
    place = "in while" if name in inside else "outside"
    for line in lines:
      target = re.search(r'custom_call_target="(__cudnn\$conv\w*)"', line)
      if target:
        counts[place, target.group(1)] += 1
      elif re.search(r"= \S+ convolution\(", line):
        counts[place, "convolution"] += 1
  return counts


def test_convolutions_by_place_walks_into_loops():
  hlo = """
fused_conv {
  p = f32[2] parameter(0)
  c = f32[2] custom-call(p), custom_call_target="__cudnn$convForward"
}
body {
  x = f32[2] parameter(0)
  f = f32[2] fusion(x), kind=kCustom, calls=fused_conv
}
cond {
  x = f32[2] parameter(0)
}
ENTRY main {
  a = f32[2] parameter(0)
  w = f32[2] while(a), condition=cond, body=body
  b = f32[2] convolution(a, a), dim_labels=b01f_01io->b01f
  d = f32[2] custom-call(b), custom_call_target="__cudnn$convBackwardFilter"
}
"""
  assert convolutions_by_place(hlo) == collections.Counter({
      ("in while", "__cudnn$convForward"): 1,
      ("outside", "convolution"): 1,
      ("outside", "__cudnn$convBackwardFilter"): 1})


@pytest.mark.slow  # About a minute of compiling on two loaded cores.
@needs_cuda_plugin
def test_looped_training_keeps_cudnn_convolutions_inside_its_loop():
  """XLA:GPU gives a while body's convolutions cuDNN calls, unlike XLA:CPU.

  The looped program (`steps`, what GPUs train with) holds the whole step
  in its while loop: every convolution, the U-Net's gradient ones
  included, must be a cuDNN call there, none left to XLA's emitter.
  """
  gpus = aot_compile.gpu_slice("h100x1", "h100", 1)
  config = tiny_config()
  generate, _ = aot_compile.generator_parts(config, gpus.mesh)
  program, args = segmentation.steps_program(
      config, gpus.mesh, generate,
      aot_compile.abstract_frozen(config, gpus.mesh))
  counts = convolutions_by_place(program.lower(*args).compile().as_text())
  assert {place for place, _ in counts} == {"in while"}
  assert "convolution" not in {kind for _, kind in counts}
  for kind in ("convBackwardInput", "convBackwardFilter"):
    assert counts["in while", f"__cudnn${kind}"] >= 5
