"""Faults injected into real runs: NaN updates, SIGTERM, kill -9, full disks.

Every case compares with an independent reference: the state before the
step (a skipped update), an uninterrupted run's outputs (bit for bit), the
exit status a shell reports. Faults are planted in child processes by
tools/fault_injection.py (see its docstring for the kinds); kill points are
drawn from a seeded generator. Cases that start several child processes
that compile JAX are marked `slow`; benchmarks/faults.py runs the longer,
randomly timed version of this suite.
"""
import errno
import os
import random
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from gansseg_jax.infra import fileio
from gansseg_jax.directions import discover as discover_lib
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import finite as finite_lib
from gansseg_jax.infra import sharding
from gansseg_jax.train import segmentation
import test_directions_planted as planted_lib
import test_train_fixtures as f
from test_train_e2e import PRELUDE as TRAIN_PRELUDE

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "tools")
sys.path.insert(0, TOOLS)
import fault_injection  # pylint: disable=g-import-not-at-top,wrong-import-position

FAULTS_PRELUDE = f"""
import sys
sys.path.insert(0, {TOOLS!r})
import fault_injection
fault_injection.install()
"""


@pytest.fixture(scope="module")
def xla_cache_dir(tmp_path_factory):
  return f.shared_cache_dir(tmp_path_factory)


def _env(cache_dir, fault=""):
  env = f.python_env(cache_dir)
  env[fault_injection.ENV] = fault
  return env


# ------------------------------------------------------- non-finite updates


def test_all_finite_and_keep_finite_match_numpy():
  rng = np.random.default_rng(0)
  old = {"a": rng.normal(size=(3, 4)).astype(np.float32),
         "b": [rng.normal(size=5).astype(np.float32),
               np.arange(4, dtype=np.int32)]}
  for poison in (None, np.nan, np.inf, -np.inf):
    for leaf in range(2):
      new = jax.tree.map(lambda x: x + 1, old)
      if poison is not None:
        target = new["a"] if leaf == 0 else new["b"][0]
        target.flat[rng.integers(target.size)] = poison
      want = all(np.isfinite(x).all() for x in jax.tree.leaves(new))
      finite = finite_lib.all_finite(new)
      assert bool(finite) == want == (poison is None)
      kept = finite_lib.keep_finite(finite, new, old)
      jax.tree.map(np.testing.assert_array_equal, kept, new if want else old)
  assert bool(finite_lib.all_finite({"step": jnp.int32(3)}))


def _compiled_guard_size(num_leaves: int) -> int:
  """Lines of the optimised CPU program of one guarded update."""
  shapes = [(3, 3, 4, 4) if i % 2 else (4,) for i in range(num_leaves)]
  new = [jnp.ones(s) for s in shapes]

  def update(new, old):
    return finite_lib.keep_finite(finite_lib.all_finite(new), new, old)
  compiled = jax.jit(update).lower(new, new).compile()
  return compiled.as_text().count("\n")


def test_the_compiled_guard_grows_linearly_with_the_leaves():
  """4x the leaves, about 4x the program (an AND-reduction of the flags
  gave 13x: its chain fused into every leaf's select, and the U-Net's
  training step compiled 3x longer)."""
  assert _compiled_guard_size(160) < 6 * _compiled_guard_size(40)


@pytest.mark.slow
def test_an_update_with_a_nan_learning_rate_is_not_applied():
  """lr = NaN: the loss and gradients are finite, the new params are not.

  Also the run where every sample was rejected (weights 0, loss 0, zero
  gradients): Adam's update lr * 0 is still NaN.
  """
  config = f.tiny_config()
  config.train.learning_rate = float("nan")
  fused = segmentation.build(config, sharding.data_mesh(), f.disc_generate)
  z = jax.random.normal(jax.random.key(0), (8, f.Z_DIM))
  images = f.disc_generate(f.DISC_PARAMS, z)
  masks = (images[..., 0] > 0).astype(jnp.float32)
  state = fused.init_state()
  for weight in (1.0, 0.0):
    before = jax.tree.map(np.array, state)
    state, metrics = fused.update(state, images, masks,
                                  jnp.full((8,), weight))
    assert int(metrics["skipped"]) == 1
    assert np.isfinite(float(metrics["loss"]))
    jax.tree.map(np.testing.assert_array_equal,
                 jax.tree.map(np.array, state), before)


def test_a_nan_discovery_step_is_not_applied_nor_saved(tmp_path, monkeypatch):
  params = planted_lib.planted_params(np.eye(planted_lib.Z_DIM))
  config = planted_lib.make_config(steps=4, checkpoint_every=1, log_every=4,
                                   strip_every=0)
  config.directions.learning_rate = float("nan")
  with pytest.raises(discover_lib.NonFiniteStepError,
                     match="1 of steps 1-1 had a NaN or inf loss, gradient or "
                     "new params and were not applied; no checkpoint was "
                     "saved"):
    discover_lib.train(config, str(tmp_path), planted_lib.generate, params,
                       planted_lib.Z_DIM, jax.random.key(0))
  ckpt = tmp_path / "checkpoints" / "discover"
  assert not [p for p in os.listdir(ckpt) if p.isdigit()]


# ------------------------------------------------------------------ SIGTERM

SLOW_GENERATOR = """
import time
def slow_generate(params, z):
  images = f.disc_generate(params, z)
  return jax.pure_callback(lambda x: (time.sleep(0.05), x)[1],
                           jax.ShapeDtypeStruct(images.shape, images.dtype),
                           images, vmap_method="broadcast_all")
import jax
convert_load.load_generator = lambda config, workdir: (slow_generate, params)
from gansseg_jax.run import workdir_inputs
workdir_inputs.CHECKS.pop("generator")  # W/generator/ is a stand-in.
workdir_inputs.verify = lambda *args: None  # Stand-ins have no markers.
from gansseg_jax import main as main_lib
from absl import app
original_update = monitoring.Progress.update
def update(self, done):
  original_update(self, done)
  print("DONE", done, flush=True)
monitoring.Progress.update = update
sys.argv = ["gansseg_jax.main"] + sys.argv[1:]
app.run(main_lib.main, flags_parser=main_lib.parse_flags)
"""

TINY_FLAGS = ("--config.stages=train", "--config.generator.resolution=32",
              "--config.generator.z_dim=8", "--config.unet.width=4",
              "--config.train.steps=48", "--config.train.batch_size=8",
              "--config.train.decay_steps=(40,)", "--config.train.log_every=12",
              "--config.train.eval_every=12",
              "--config.train.checkpoint_every=12",
              "--config.train.keep_checkpoints=2",
              "--config.train.holdout_size=24",
              "--config.train.synth_chunks=4",
              "--config.log.progress_every_s=1000")


@pytest.mark.slow
def test_sigterm_stops_after_the_running_step_and_exits_143(
    tmp_path, xla_cache_dir):
  """The CLI in a real process; SIGTERM from outside while a step runs.

  Steps take >= 50 ms on the device (the generator sleeps in a callback),
  so a loop that queued steps ahead would stop only at its next log step
  (12) or later.
  """
  workdir = str(tmp_path / "w")
  f.write_inputs(workdir)
  os.makedirs(os.path.join(workdir, "generator"))  # Replaced by the disc.
  child = f.start_python(
      TRAIN_PRELUDE + SLOW_GENERATOR, f.python_env(xla_cache_dir),
      args=(f"--config={f.REPO_DIR}/configs/test.py", f"--workdir={workdir}",
            *TINY_FLAGS))
  lines = []
  for line in child.stdout:
    lines.append(line)
    if line.startswith("DONE 3"):
      child.send_signal(signal.SIGTERM)
      break
  output = "".join(lines) + child.stdout.read()
  assert child.wait(timeout=300) == checkpointing.PREEMPTED_EXIT, output
  stopped = [l for l in output.splitlines() if l.startswith("stopped: ")]
  assert len(stopped) == 1, output
  step = int(stopped[0].split("after step ")[1].split(";")[0])
  assert 3 <= step < 12, output
  saved = os.listdir(os.path.join(workdir, "checkpoints", "train"))
  assert str(step) in saved and not os.path.exists(
      os.path.join(workdir, "stages", "train.json"))


# ------------------------------------------------------ kill -9 and restart


def _run_until_done(script, workdir, env_of, faults, timeout=600):
  """Runs `script` once per fault (each must kill it), then once clean;
  the clean run must succeed and leave no temporary in `workdir`."""
  for fault in faults:
    result = f.run_python(script, env_of(fault), timeout=timeout)
    assert result.returncode == -signal.SIGKILL, (
        fault, result.stdout[-2000:] + result.stderr[-4000:])
  result = f.run_python(script, env_of(""), timeout=timeout)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
  assert fault_injection.leftovers(workdir) == []


EMBED_SCRIPT = FAULTS_PRELUDE + """
import contextlib, sys
sys.modules["clu"] = None
import numpy as np
from configs import test as test_config
from gansseg_jax.run import stages
from gansseg_jax.embed import stage as embed

@contextlib.contextmanager
def encoder(config, workdir, source):
  # A planted encoder: z = per-channel means and spreads of the image, tiled.
  def encode(images, start):
    stats = np.concatenate([images.mean(axis=(1, 2)), images.std(axis=(1, 2))],
                           axis=1)
    return np.tile(stats, (1, 20))[:, :config.generator.z_dim]
  yield encode
embed._encoder = encoder
config = test_config.get_config()
config.stages = "embed"
config.embed.source = "flax"
config.embed.dataset = {dataset!r}
config.embed.batch_size = 2
config.embed.parts_every = 2
config.embed.image_size = 16
stages.run(config, {workdir!r})
"""


def _scene_folder(folder, count=13):
  os.makedirs(folder)
  rng = np.random.default_rng(0)
  for i in range(count):
    Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), np.uint8)).save(
        os.path.join(folder, f"{i}.png"))


def _embed_reference(tmp_path, xla_cache_dir):
  """An uninterrupted embed run on a scene folder: (dataset, whole workdir,
  faulted workdir, env_of)."""
  dataset = str(tmp_path / "images")
  _scene_folder(dataset)
  whole, faulted = str(tmp_path / "whole"), str(tmp_path / "faulted")
  env_of = lambda fault: _env(xla_cache_dir, fault)
  _run_until_done(EMBED_SCRIPT.format(dataset=dataset, workdir=whole), whole,
                  env_of, [])
  return dataset, whole, faulted, env_of


def test_embed_killed_anywhere_resumes_to_the_same_table(tmp_path,
                                                         xla_cache_dir):
  """13 images, parts of 4: kill mid-part, while writing a part, and while
  writing embeddings.npy; the resumed table equals an uninterrupted one."""
  dataset, whole, faulted, env_of = _embed_reference(tmp_path, xla_cache_dir)
  rng = random.Random(18)
  faults = [f"step:{rng.choice([2, 6, 10])}",  # Mid-part (parts end at 4k).
            f"replace:part-:{rng.randint(1, 2)}",  # Completes no new part.
            "replace:embeddings.npy:1"]
  _run_until_done(EMBED_SCRIPT.format(dataset=dataset, workdir=faulted),
                  faulted, env_of, faults)
  assert fault_injection.digests(faulted, ["embeddings.npy"]) == (
      fault_injection.digests(whole, ["embeddings.npy"]))
  assert np.load(os.path.join(whole, "embeddings.npy")).shape == (13, 120)
  assert fault_injection.leftovers(faulted) == []
  assert not os.path.exists(os.path.join(faulted, "embeddings.partial"))


TRAIN_SCRIPT = FAULTS_PRELUDE + TRAIN_PRELUDE + """
stage.run(config, {workdir!r})
"""


@pytest.mark.slow
def test_train_killed_at_random_moments_resumes_bit_for_bit(
    tmp_path, xla_cache_dir):
  """kill -9 while the first step compiles, mid-interval, and while a
  checkpoint is written; then the final U-Net equals an uninterrupted one."""
  whole, faulted = str(tmp_path / "whole"), str(tmp_path / "faulted")
  for workdir in (whole, faulted):
    f.write_inputs(workdir)
  env_of = lambda fault: _env(xla_cache_dir, fault)
  _run_until_done(TRAIN_SCRIPT.format(workdir=whole), whole, env_of, [])
  rng = random.Random(18)
  mid = rng.choice([s for s in range(1, 24) if s % 12])
  faults = ["first:0", f"step:{mid}", f"save:{rng.choice([24, 36])}"]
  _run_until_done(TRAIN_SCRIPT.format(workdir=faulted), faulted, env_of,
                  faults)
  assert fault_injection.digests(faulted, ["unet"]) == (
      fault_injection.digests(whole, ["unet"]))
  assert fault_injection.leftovers(faulted) == []


DIRECTIONS_SCRIPT = FAULTS_PRELUDE + """
import sys
sys.modules["clu"] = None
import numpy as np
import test_directions_planted as t
from gansseg_jax.run import stages
from gansseg_jax.directions import stage
params = t.planted_params(np.eye(t.Z_DIM))
stage.load_generator = lambda config, workdir: (t.generate, params)
from gansseg_jax.run import workdir_inputs
workdir_inputs.CHECKS.pop("generator")  # W/generator/ is a stand-in.
workdir_inputs.verify = lambda *args: None  # Stand-ins have no markers.
config = t.make_config(source="discover", steps=12, checkpoint_every=4,
                       log_every=4, strip_every=4)
config.stages = "discover,score"
config.score.steps = 20
import os
os.makedirs(os.path.join({workdir!r}, "generator"), exist_ok=True)
stages.run(config, {workdir!r})
"""

DIRECTIONS_OUTPUTS = ("directions.npy", "discover_strips", "ranking.csv",
                      "ranking.md", "strips", "bg_direction.npy",
                      "bg_affine.npy")


@pytest.mark.slow
def test_discover_and_score_killed_at_random_moments_give_the_same_outputs(
    tmp_path, xla_cache_dir):
  whole, faulted = str(tmp_path / "whole"), str(tmp_path / "faulted")
  env_of = lambda fault: _env(xla_cache_dir, fault)
  _run_until_done(DIRECTIONS_SCRIPT.format(workdir=whole), whole, env_of, [])
  rng = random.Random(18)
  faults = ["first:0", f"step:{rng.choice([1, 2, 3, 5, 6, 7])}",
            f"save:{rng.choice([8, 12])}",
            f"replace:strips:{rng.randint(1, 1)}",
            "replace:bg_direction.npy:1"]
  _run_until_done(DIRECTIONS_SCRIPT.format(workdir=faulted), faulted, env_of,
                  faults)
  assert fault_injection.digests(faulted, DIRECTIONS_OUTPUTS) == (
      fault_injection.digests(whole, DIRECTIONS_OUTPUTS))
  assert fault_injection.leftovers(faulted) == []


# ------------------------------------------------------------- full disk


def test_a_full_disk_fails_cleanly_and_the_rerun_finishes(tmp_path,
                                                          xla_cache_dir):
  """ENOSPC at embed's second part write: the run fails, nothing half
  written stays, and the run after it (disk freed) gives the same table."""
  dataset, whole, faulted, env_of = _embed_reference(tmp_path, xla_cache_dir)
  script = EMBED_SCRIPT.format(dataset=dataset, workdir=faulted)
  full = f.run_python(script, env_of("enospc:part-:2"))
  assert full.returncode != 0
  assert os.strerror(errno.ENOSPC) in full.stderr
  assert fault_injection.leftovers(faulted) == []
  assert os.listdir(os.path.join(faulted, "embeddings.partial")) == [
      "meta.json", "part-000000000.npy"]
  _run_until_done(script, faulted, env_of, [])
  assert fault_injection.digests(faulted, ["embeddings.npy"]) == (
      fault_injection.digests(whole, ["embeddings.npy"]))


def test_temporaries_of_killed_writers_are_removed_and_nothing_else(
    tmp_path):
  (tmp_path / "unet.tmp-abcd_123").mkdir()
  (tmp_path / "unet.tmp-abcd_123" / "x").write_text("half")
  (tmp_path / "ckpt").mkdir()
  (tmp_path / "ckpt" / "3.orbax-checkpoint-tmp-17").mkdir()
  (tmp_path / "ranking.md.tmp-zz99yy88").write_text("half")
  keep = ["notes.tmp-1", "ranking.md", "ckpt/3", "my.tmp-notes.txt"]
  for name in keep:
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text("kept")
  removed = fileio.remove_temporaries(str(tmp_path))
  assert sorted(os.path.relpath(p, tmp_path) for p in removed) == [
      "ckpt/3.orbax-checkpoint-tmp-17", "ranking.md.tmp-zz99yy88",
      "unet.tmp-abcd_123"]
  assert fault_injection.leftovers(str(tmp_path)) == []
  for name in keep:
    assert (tmp_path / name).read_text() == "kept"
