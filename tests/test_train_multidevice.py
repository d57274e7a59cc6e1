"""Data parallelism: 1 vs 4 fake CPU devices, and two jax.distributed processes.

Both run in subprocesses (the device count is fixed when JAX starts).
"""
import os

import numpy as np
import pytest

import test_train_fixtures as f

# Subprocesses that compile and run JAX stages: minutes on a loaded 2-core CPU.
pytestmark = pytest.mark.slow

MESHES_SCRIPT = """
import sys
sys.modules["clu"] = None
import jax, numpy as np
import test_train_fixtures as f
from gansseg_jax.infra import errors
from gansseg_jax.infra import sharding
from gansseg_jax.train import segmentation
assert jax.device_count() == 4, jax.devices()
config = f.tiny_config()
for n in (1, 4):
  mesh = jax.make_mesh((n,), ("data",), devices=jax.devices()[:n],
                       axis_types=(jax.sharding.AxisType.Auto,))
  fused = segmentation.build(config, mesh, f.disc_generate)
  frozen = sharding.replicate(segmentation.Frozen(
      f.DISC_PARAMS, f.background_direction(), None, None), mesh)
  images, masks, weights, _ = fused.synthesize(
      "train", sharding.replicate(np.int32(0), mesh), frozen)
  print(n, "image shards", sorted({s.data.shape for s in
                                   images.addressable_shards}))
  state, sums = fused.init_state(), fused.zero_sums(frozen)
  losses = []
  for _ in range(3):
    state, sums = fused.step(state, sums, frozen)
    losses.append(float(sums["loss"]))
  print(n, "params replicated", all(
      x.sharding.is_fully_replicated for x in jax.tree.leaves(state)))
  leaves = [np.asarray(x) for x in jax.tree.leaves(state["params"])]
  np.savez(sys.argv[1] + f"/mesh{n}.npz", images=np.asarray(images),
           masks=np.asarray(masks), weights=np.asarray(weights),
           cumulative_losses=np.array(losses),
           **{f"param{i}": x for i, x in enumerate(leaves)})
config.train.batch_size = 6
try:
  segmentation.build(config, sharding.data_mesh(), f.disc_generate)
except errors.UserError as e:
  print("USERERROR:", e)
"""

PROCESS_SCRIPT = """
import sys
sys.modules["clu"] = None
import jax
process_id, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(coordinator_address=f"localhost:{port}",
                           num_processes=2, process_id=process_id)
import numpy as np
import test_train_fixtures as f
from gansseg_jax.train import load, segmentation
config = f.tiny_config()
config.train.steps = 8
config.train.log_every = 4
config.train.checkpoint_every = 4
config.train.eval_every = 8
state = segmentation.train(config, workdir, f.disc_generate, f.DISC_PARAMS,
                           f.background_direction())
load.save_unet(workdir, state)
leaves = [np.asarray(x.addressable_data(0))
          for x in jax.tree.leaves(state["params"])]
np.savez(f"{workdir}/params_process{process_id}.npz",
         **{f"param{i}": x for i, x in enumerate(leaves)})
print("devices", jax.device_count(), jax.local_device_count())
"""


@pytest.fixture(scope="module")
def xla_cache_dir(tmp_path_factory):
  return f.shared_cache_dir(tmp_path_factory)


def test_one_and_four_devices_give_the_same_steps(tmp_path, xla_cache_dir):
  result = f.run_python(MESHES_SCRIPT.replace("sys.argv[1]",
                                              repr(str(tmp_path))),
                        f.python_env(xla_cache_dir, devices=4))
  assert result.returncode == 0, result.stdout + result.stderr
  assert "1 image shards [(8, 32, 32, 3)]" in result.stdout
  assert "4 image shards [(2, 32, 32, 3)]" in result.stdout
  assert "1 params replicated True" in result.stdout
  assert "4 params replicated True" in result.stdout
  assert ("USERERROR: config.train.batch_size: global batch 6 does not split "
          "evenly over 4 devices") in result.stdout
  one, four = (np.load(os.path.join(tmp_path, f"mesh{n}.npz")) for n in (1, 4))
  for name in ("images", "masks", "weights"):  # Same chunks, same keys.
    np.testing.assert_array_equal(one[name], four[name])
  np.testing.assert_allclose(np.diff(one["cumulative_losses"], prepend=0),
                             np.diff(four["cumulative_losses"], prepend=0),
                             rtol=1e-5)
  params = [k for k in one.files if k.startswith("param")]
  assert len(params) > 40
  for k in params:  # Three Adam steps of lr 1e-3 apart at most.
    np.testing.assert_allclose(one[k], four[k], atol=1e-4)


def test_two_processes_end_with_identical_params(tmp_path, xla_cache_dir):
  workdir = str(tmp_path)
  f.write_inputs(workdir)
  port = str(f.free_port())
  env = f.python_env(xla_cache_dir)
  procs = [f.start_python(PROCESS_SCRIPT, env, args=(str(i), port, workdir))
           for i in range(2)]
  outputs = [p.communicate(timeout=240)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out
    assert "devices 2 1" in out
  first, second = (np.load(os.path.join(workdir, f"params_process{i}.npz"))
                   for i in range(2))
  assert first.files == second.files
  for k in first.files:
    np.testing.assert_array_equal(first[k], second[k])
  assert f.step_dirs(os.path.join(workdir, "checkpoints", "train")) == [
      "4", "8"]
  assert os.path.isdir(os.path.join(workdir, "unet"))
  with open(os.path.join(workdir, "metrics.jsonl")) as fh:  # Process 0 only.
    steps = [line for line in fh if '"loss"' in line]
  assert len(steps) == 2
