"""config.train.steps_per_call: N fused steps per call, same results.

The reference for N > 1 is the run with N = 1 (one step per call), and for
a resumed run the uninterrupted one; every comparison is bit for bit, for
both ways of running N steps: the host loop over the plain one-step program
(what CPUs run) and the device loop (TPUs and GPUs; forced here on the CPU
by replacing `segmentation.device_loop`). The runs share one subprocess
(and its persistent compilation cache: every run of one config compiles
each program once).
"""
import json
import os
import re
import types

import numpy as np
import pytest

from configs import default
from gansseg_jax.run import stages
from gansseg_jax.infra import workdir as wd
from gansseg_jax.infra import training_loop
from gansseg_jax.train import segmentation
import test_train_fixtures as f



def call_size(step, c):
  """The loop's call size under `c`'s (config.train's) schedule."""
  return training_loop.call_size(
      step, c.steps_per_call, c.steps,
      [c.log_every, c.eval_every, c.checkpoint_every])


# Boundaries at 4, 5, 6, 8 and 10 (log 4, hold-out 5, checkpoint 6, end 10).
SCHEDULE = dict(steps=10, log_every=4, eval_every=5, checkpoint_every=6)

SCRIPT = """
import os, shutil, signal, sys
sys.modules["clu"] = None  # metrics.jsonl only: no tensorflow import.
import jax, numpy as np
import test_train_fixtures as f
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import checkpointing, sharding
from gansseg_jax.train import segmentation
out = sys.argv[1]
SCHEDULE = {schedule!r}

def config(n, **train):
  c = f.tiny_config()
  c.train.update(steps_per_call=n, **SCHEDULE, **train)
  return c

def train(c, name):
  state = segmentation.train(c, os.path.join(out, name), f.disc_generate,
                             f.DISC_PARAMS, f.background_direction())
  np.savez(os.path.join(out, name + ".npz"),
           *[np.asarray(x) for x in jax.tree.leaves(state)])

assert not segmentation.device_loop(sharding.data_mesh())
train(config(1), "one")
train(config(3), "three")

# The plain one-step program called once per step, outside the loop.
mesh = sharding.data_mesh()
fused = segmentation.build(config(1), mesh, f.disc_generate)
frozen = sharding.replicate(segmentation.Frozen(
    f.DISC_PARAMS, f.background_direction(), None, None), mesh)
state, sums = fused.init_state(), fused.zero_sums(frozen)
for _ in range(SCHEDULE["steps"]):
  state, sums = fused.step(state, sums, frozen)
np.savez(os.path.join(out, "plain.npz"),
         *[np.asarray(x) for x in jax.tree.leaves(state)])

# The device loop (TPUs, GPUs) forced on the CPU: 6 steps as 6 calls of 1,
# 2 of 3 and 1 of 6.
host_loop = segmentation.device_loop
segmentation.device_loop = lambda mesh: True
fused = segmentation.build(config(1), mesh, f.disc_generate)
for n in (1, 3, 6):
  state, sums = fused.init_state(), fused.zero_sums(frozen)
  for _ in range(6 // n):
    state, sums = fused.run_steps(state, sums, frozen, n)
  np.savez(os.path.join(out, f"device_{{n}}.npz"),
           *[np.asarray(x) for x in jax.tree.leaves((state, sums))])
segmentation.device_loop = host_loop

original_update = monitoring.Progress.update
def update(self, done):
  original_update(self, done)
  if done == 3:
    os.kill(os.getpid(), signal.SIGTERM)
monitoring.Progress.update = update
try:
  train(config(3), "resumed")
except checkpointing.Preempted as e:
  print("PREEMPTED:", e, flush=True)
monitoring.Progress.update = original_update
print("AFTER SIGTERM:", f.step_dirs(out + "/resumed/checkpoints/train"))
shutil.copytree(out + "/resumed", out + "/resumed_n2")
train(config(3), "resumed")
train(config(2), "resumed_n2")

# lr(s) = NaN from s = 1: step 2 (the 2nd of the first call's 3) fails.
import jax.numpy as jnp
segmentation.learning_rate_schedule = lambda c: (
    lambda s: jnp.where(s >= 1, jnp.nan, c.learning_rate))
nan = config(3)
try:
  train(nan, "nan")
except segmentation.NonFiniteLossError as e:
  print("NONFINITE:", e, flush=True)
print("NAN CHECKPOINTS:", f.step_dirs(out + "/nan/checkpoints/train"))
for loop, on_device in (("host", False), ("device", True)):
  segmentation.device_loop = lambda mesh: on_device
  fused = segmentation.build(nan, mesh, f.disc_generate)
  for n in (1, 3):
    state, sums = fused.run_steps(fused.init_state(),
                                  fused.zero_sums(frozen), frozen, n)
    np.savez(os.path.join(out, f"nan_{{loop}}_call{{n}}.npz"),
             *[np.asarray(x) for x in jax.tree.leaves(state)])
    print(f"NAN {{loop}} CALL {{n}}:", int(state["step"]),
          {{k: int(sums[k]) for k in ("steps", "skipped")}}, flush=True)
"""


def _leaves(path):
  with np.load(path) as npz:
    return [npz[f"arr_{i}"] for i in range(len(npz.files))]


def _assert_identical(a, b):
  assert len(a) == len(b) > 20
  for x, y in zip(a, b):
    assert x.dtype == y.dtype
    np.testing.assert_array_equal(x, y)


def _records(workdir):
  """metrics.jsonl less the wall-clock fields (and the seal over them)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as fh:
    records = [json.loads(line) for line in fh]
  return [{k: v for k, v in r.items()
           if k not in ("time", "samples_per_s", "sha256")} for r in records]


def test_a_call_ends_at_every_boundary():
  """The call sizes against a brute-force walk over the steps."""
  c = f.tiny_config().train
  c.update(**SCHEDULE)
  boundaries = {s for s in range(1, 11)
                if s % 4 == 0 or s % 5 == 0 or s % 6 == 0 or s == 10}
  for n in (1, 2, 3, 7, 100):
    c.steps_per_call = n
    sizes, step = [], 0
    while step < c.steps:
      sizes.append(call_size(step, c))
      step += sizes[-1]
    ends = np.cumsum(sizes)
    assert all(1 <= s <= n for s in sizes)
    assert boundaries <= set(ends)  # Never crosses one ...
    for start, size in zip([0, *ends[:-1]], sizes):  # ... and is full else.
      if size < n:
        assert start + size in boundaries
  c.steps_per_call = 3
  assert [call_size(s, c) for s in (0, 3, 4, 5, 6, 8)] == [3, 1, 1, 1, 2, 2]


def test_steps_per_call_does_not_change_the_train_stage_hash():
  """Any N gives the same results, so a run may resume with another."""
  config = default.get_config()
  train = stages.BY_NAME["train"]
  before = stages.stage_hash(train, wd.config_to_dict(config))
  config.train.steps_per_call = 8
  assert stages.stage_hash(train, wd.config_to_dict(config)) == before
  config.train.log_every += 1
  assert stages.stage_hash(train, wd.config_to_dict(config)) != before


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  cache = f.shared_cache_dir(tmp_path_factory)
  out = tmp_path_factory.mktemp("steps_per_call")
  script = SCRIPT.format(schedule=SCHEDULE) + "\nprint('DONE')\n"
  proc = f.start_python(script, f.python_env(cache), (str(out),))
  output, _ = proc.communicate(timeout=1800)
  assert proc.returncode == 0 and "DONE" in output, output[-4000:]
  return str(out), output


def test_the_loop_runs_on_the_devices_except_on_cpus():
  device = lambda platform: types.SimpleNamespace(platform=platform)
  mesh = lambda *platforms: types.SimpleNamespace(
      devices=np.array([device(p) for p in platforms]))
  assert not segmentation.device_loop(mesh("cpu"))
  assert not segmentation.device_loop(mesh("cpu", "cpu"))
  assert segmentation.device_loop(mesh("tpu", "tpu"))
  assert segmentation.device_loop(mesh("gpu"))


@pytest.mark.slow
def test_three_steps_per_call_is_bit_identical_to_one(runs):
  out, _ = runs
  _assert_identical(_leaves(f"{out}/three.npz"), _leaves(f"{out}/one.npz"))
  one, three = _records(f"{out}/one"), _records(f"{out}/three")
  assert one == three
  assert [r["step"] for r in one if "loss" in r] == [4, 8, 10]
  assert [r["step"] for r in one if "holdout/loss" in r] == [0, 5, 10]
  assert f.step_dirs(f"{out}/three/checkpoints/train") == ["10", "6"]


@pytest.mark.slow
def test_the_device_loop_gives_the_same_bits_for_every_n(runs):
  """State and metric sums after 6 steps: 6 x 1, 2 x 3 and 1 x 6 per call."""
  out, _ = runs
  one = _leaves(f"{out}/device_1.npz")
  _assert_identical(_leaves(f"{out}/device_3.npz"), one)
  _assert_identical(_leaves(f"{out}/device_6.npz"), one)


@pytest.mark.slow
def test_on_a_cpu_training_is_the_plain_step_program(runs):
  """The host loop's bits are those of `build(...).step` called per step."""
  out, _ = runs
  _assert_identical(_leaves(f"{out}/one.npz"), _leaves(f"{out}/plain.npz"))


@pytest.mark.slow
def test_resume_mid_run_is_bit_identical_also_with_another_n(runs):
  out, output = runs
  assert "PREEMPTED: train: stopped by SIGTERM after step 3" in output
  assert "AFTER SIGTERM: ['3']" in output  # Mid-interval: no boundary at 3.
  uninterrupted = _leaves(f"{out}/three.npz")
  _assert_identical(_leaves(f"{out}/resumed.npz"), uninterrupted)
  _assert_identical(_leaves(f"{out}/resumed_n2.npz"), uninterrupted)


@pytest.mark.slow
def test_a_nan_inside_a_call_is_not_applied_and_ends_the_call(runs):
  out, output = runs
  assert re.search(r"NONFINITE: train: the loss, gradients or new params are "
                   r"NaN or inf at step 2 \(not applied\); the last good "
                   r"state \(step 1\) is checkpoint 1 in ", output), output
  assert "NAN CHECKPOINTS: ['1']" in output
  # One call of 3 from step 0: step 1 applied, step 2 not, step 3 not run.
  for loop in ("host", "device"):
    assert f"NAN {loop} CALL 1: 1 {{'steps': 1, 'skipped': 0}}" in output
    assert f"NAN {loop} CALL 3: 1 {{'steps': 2, 'skipped': 1}}" in output
    _assert_identical(_leaves(f"{out}/nan_{loop}_call3.npz"),
                      _leaves(f"{out}/nan_{loop}_call1.npz"))


def test_steps_program_lowers_one_while_loop_for_any_count():
  """The AOT entry point: its abstract arguments fit the looped program."""
  import jax  # pylint: disable=g-import-not-at-top
  from gansseg_jax.infra import sharding  # pylint: disable=g-import-not-at-top
  mesh = sharding.data_mesh()
  program, args = segmentation.steps_program(
      f.tiny_config(), mesh, f.disc_generate, segmentation.Frozen(
          f.DISC_PARAMS, f.background_direction(), None, None))
  state, sums, _, count = args
  assert count.shape == () and count.dtype == np.int32
  assert set(sums) >= {"loss", "steps", "skipped", "synth/rounds"}
  lowered = program.lower(*args)
  out_state, out_sums = lowered.out_info
  assert jax.tree.structure(out_state) == jax.tree.structure(state)
  assert jax.tree.map(lambda x: (x.shape, x.dtype), out_sums) == (
      jax.tree.map(lambda x: (x.shape, x.dtype), sums))
  text = lowered.as_text()
  # The steps loop around the synthesis loops (rounds, components).
  assert text.count("stablehlo.while") >= 2

