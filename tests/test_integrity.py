"""Files are read only as they were written: the corruption suite.

Two workdirs are made once, by the real stages at configs/test.py sizes
(seeds 0 and 1). Each case copies the first, damages one input of one stage
(a flipped run of bytes, a truncation, a deleted file, or the same file from
the seed-1 workdir) and runs that stage: it must stop while planning with
one error naming the damaged file and the stage that wrote it, and leave
every byte of the workdir as it was (no number is written). The intact copy
passes the same checks (the control).
"""
import json
import logging
import os
import shutil
import subprocess
import sys

from absl import logging as absl_logging
import numpy as np
import pytest

from configs import test as test_config
from gansseg_jax.infra import errors
from gansseg_jax.run import stages
from gansseg_jax.infra import workdir as wd
from gansseg_jax.run import workdir_inputs
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import fingerprints
from file_listing import listing

# Two real runs of five stages (mostly compiling): minutes on 2 cores. The
# same promises on fake stages and a small checkpoint, in seconds:
# tests/test_integrity_units.py.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILT = "convert,discover,score,train,eval"


def config(stage_names: str, seed: int = 0, **fields):
  c = test_config.get_config()
  c.stages = stage_names
  c.seed = seed
  for key, value in fields.items():  # section__field=value, or field=value.
    *section, name = key.split("__")
    (c[section[0]] if section else c)[name] = value
  return c


# The seed-1 run, in a second process beside the first: most of the time
# goes to compiling, one core each.
BUILD = f"""
import sys
sys.path.insert(0, {ROOT!r})
from configs import test
from gansseg_jax.run import stages
c = test.get_config()
c.stages, c.seed = {BUILT!r}, 1
c.score.index = 0  # Seed 1's random generator fails the automatic pick.
stages.run(c, sys.argv[1])
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory):
  """{seed: workdir} of two finished runs (every stage but synth, segment)."""
  out = {seed: tmp_path_factory.mktemp(f"seed{seed}") / "w" for seed in (0, 1)}
  other = subprocess.Popen([sys.executable, "-c", BUILD, str(out[1])],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, cwd=ROOT)
  try:
    stages.run(config(BUILT, 0), str(out[0]))
  finally:
    log, _ = other.communicate(timeout=1200)
  assert other.returncode == 0, log[-3000:]
  return out


def largest_file(workdir, path):
  """The largest file under `path` (itself if a file), relative to workdir."""
  full = workdir / path
  if full.is_file():
    return path
  files = [p for p in full.rglob("*") if p.is_file()]
  return str(max(files, key=lambda p: p.stat().st_size).relative_to(workdir))


def flip(file):
  """Inverts 64 bytes in the middle of `file` (fewer if it is smaller)."""
  data = bytearray(file.read_bytes())
  start = max(0, len(data) // 2 - 32)
  for i in range(start, min(len(data), start + 64)):
    data[i] ^= 0xFF
  file.write_bytes(bytes(data))


def truncate(file):
  """Keeps the first 1,000 bytes (half of a smaller file)."""
  data = file.read_bytes()
  file.write_bytes(data[:min(1000, len(data) // 2)])


# (what the stage reads, the stage that wrote it, the run that reads it)
READS = {
    "generator": ("convert", config("score", force=True)),
    "directions.npy": ("discover", config("score", force=True)),
    "bg_direction.npy": ("score", config("train", force=True)),
    "bg_affine.npy": ("score", config("train", force=True,
                                      synth__mask_rule="affine")),
    "unet": ("train", config("eval",
                             eval__datasets="scenes:5:8:32,scenes:6:8:32")),
    "ranking.csv": ("score", config("report")),
    "strips": ("score", config("report")),
    "eval.json": ("eval", config("report")),
}
DAMAGES = ("flip", "truncate", "delete", "swap")


def damage(kind, workdir, other, path):
  """Damages `path` in `workdir`; returns the file the error must name."""
  name = largest_file(workdir, path)
  if kind == "flip":
    flip(workdir / name)
  elif kind == "truncate":
    truncate(workdir / name)
  elif kind == "delete":
    os.remove(workdir / name)
  else:  # The same path from the other run.
    if (workdir / path).is_dir():
      shutil.rmtree(workdir / path)
      shutil.copytree(other / path, workdir / path)
    else:
      shutil.copy2(other / path, workdir / path)
  return name


def the_error(run, workdir):
  """The UserError `run` raises, as main prints it; the workdir unchanged."""
  before = listing(workdir)
  with pytest.raises(errors.UserError) as raised:
    stages.run(run, str(workdir))
  assert listing(workdir) == before
  message = str(raised.value)
  assert "\n" not in message
  return message


@pytest.fixture
def copies(made, tmp_path):
  """A fresh copy of the seed-0 workdir, and the seed-1 one (read only)."""
  workdir = tmp_path / "w"
  shutil.copytree(made[0], workdir)
  return workdir, made[1]


@pytest.mark.parametrize("path", sorted(READS))
def test_intact_inputs_pass(copies, path):
  """The control: with nothing damaged, planning the same run succeeds."""
  workdir, _ = copies
  _, run = READS[path]
  plan = stages.plan(run, str(workdir))
  assert plan.running()


@pytest.mark.parametrize("kind", DAMAGES)
@pytest.mark.parametrize("path", sorted(READS))
def test_damaged_input_is_named_and_nothing_is_read(copies, path, kind):
  workdir, other = copies
  writer, run = READS[path]
  name = damage(kind, workdir, other, path)
  message = the_error(run, workdir)
  named, what = message.split(": ", 1)
  assert named.startswith(f"{workdir}/{path}")
  if kind != "swap":
    assert named == f"{workdir}/{name}"
  expected = {"flip": "content differs", "truncate": "truncated",
              "delete": "missing"}.get(kind, "")
  assert what.startswith(expected)
  if kind == "delete" and name == path and path in run_inputs(run):
    # A whole input file gone: the planner's "missing" names its stage.
    assert what.endswith(f"(written by stage '{writer}': add it to "
                         "config.stages)")
  else:
    assert what.endswith(f"(written by stage '{writer}'); remake it with "
                         f"--config.stages={writer} --config.force=True")


def run_inputs(run):
  return [p for name in run.stages.split(",")
          for p in stages.BY_NAME[name].inputs(run)]


def resumable(workdir, stage_name, run):
  """The workdir as a killed run of `stage_name` leaves it (checkpoints)."""
  stage = stages.BY_NAME[stage_name]
  config_dict = wd.config_to_dict(run)
  os.remove(wd.marker_path(str(workdir), stage_name))
  wd.write_started(str(workdir), stage_name,
                   stages.stage_hash(stage, config_dict),
                   stages._relevant(stage, config_dict))  # pylint: disable=protected-access


@pytest.mark.parametrize("kind", ("flip", "truncate", "delete", "swap"))
@pytest.mark.parametrize("stage_name", ("discover", "train"))
def test_damaged_latest_checkpoint_is_named_not_skipped(copies, stage_name,
                                                        kind):
  workdir, other = copies
  run = config(stage_name)
  resumable(workdir, stage_name, run)
  folder = workdir / "checkpoints" / stage_name
  steps = checkpointing.saved_steps(str(folder))
  assert len(steps) >= 2, steps  # An older one exists; it must not be used.
  latest = f"checkpoints/{stage_name}/{steps[-1]}"
  name = damage(kind, workdir, other, latest)
  message = the_error(run, workdir)
  named = message.split(":")[0]
  assert named.startswith(f"{workdir}/{latest}")
  if kind != "swap":
    assert named == f"{workdir}/{name}"
  assert (f"(checkpoint of step {steps[-1]} saved by stage '{stage_name}')"
          in message)
  assert f"delete {workdir}/{latest} to resume" in message


def test_intact_checkpoint_resumes(copies):
  workdir, _ = copies
  run = config("train")
  resumable(workdir, "train", run)
  assert stages.plan(run, str(workdir)).running() == ["train"]


def test_fingerprints_are_sha256_of_every_file_written(made):
  """The marker against hashlib and os.walk directly."""
  import hashlib  # pylint: disable=g-import-not-at-top
  workdir = made[0]
  marker = json.loads((workdir / "stages" / "train.json").read_text())
  assert marker["outputs"] == ["unet"]
  on_disk = listing(workdir / "unet")
  assert sorted(marker["files"]) == sorted(
      os.path.join("unet", name) for name in on_disk)
  for name, data in on_disk.items():
    size, digest = marker["files"][os.path.join("unet", name)]
    assert size == len(data)
    assert digest == hashlib.sha256(data).hexdigest()
  step = checkpointing.saved_steps(str(workdir / "checkpoints" / "train"))[-1]
  recorded = json.loads((workdir / "checkpoints" / "train"
                         / f"{step}.files.json").read_text())["files"]
  assert sorted(recorded) == sorted(
      os.path.join(str(step), name)
      for name in listing(workdir / "checkpoints" / "train" / str(step)))


@pytest.fixture
def warnings_seen():
  """absl WARNING lines logged while the test runs."""
  seen = []
  handler = logging.Handler(logging.WARNING)
  handler.emit = lambda record: seen.append(record.getMessage())
  absl_logging.get_absl_logger().addHandler(handler)
  workdir_inputs._warned.clear()  # pylint: disable=protected-access
  yield seen
  absl_logging.get_absl_logger().removeHandler(handler)


def test_marker_made_before_fingerprints_reads_unverified_with_a_warning(
    copies, warnings_seen):
  """An older workdir stays usable: its files are read, one warning says so."""
  workdir, _ = copies
  path = workdir / "stages" / "train.json"
  marker = json.loads(path.read_text())
  del marker["files"], marker["outputs"]
  path.write_text(json.dumps(marker))
  flip(workdir / largest_file(workdir, "unet"))  # Not found: not recorded.
  run = READS["unet"][1]
  stages.plan(run, str(workdir))
  stages.plan(run, str(workdir))  # Planned again under the lock: no repeat.
  about = [w for w in warnings_seen if str(path) in w]
  assert about == [f"{path}: made before files were fingerprinted; its "
                   "outputs are read unverified (re-run it with "
                   "--config.stages=train --config.force=True to record "
                   "them)"]


def test_checkpoint_without_fingerprints_warns(copies, warnings_seen):
  workdir, _ = copies
  folder = workdir / "checkpoints" / "train"
  step = checkpointing.saved_steps(str(folder))[-1]
  os.remove(folder / f"{step}.files.json")
  run = config("train")
  resumable(workdir, "train", run)
  assert stages.plan(run, str(workdir)).running() == ["train"]
  assert any(w.startswith(f"{folder}/{step}: no fingerprints")
             for w in warnings_seen)


def test_a_file_added_to_an_output_folder_is_named(copies):
  workdir, _ = copies
  (workdir / "unet" / "extra.bin").write_bytes(b"x")
  message = the_error(READS["unet"][1], workdir)
  assert message.startswith(f"{workdir}/unet/extra.bin: not among the files "
                            "it wrote (written by stage 'train')")


def test_embeddings_are_verified(copies, tmp_path):
  """embeddings.npy as the embed stage records it (no encoder at test size)."""
  workdir, _ = copies
  run = config("train", force=True, synth__latents="embeddings")
  np.save(workdir / "embeddings.npy",
          np.random.default_rng(0).normal(size=(16, 120)).astype(np.float32))
  wd.write_marker(str(workdir), "embed", "h", {}, 1.0, ["embeddings.npy"],
                  fingerprints.record(str(workdir), ["embeddings.npy"]))
  stages.plan(run, str(workdir))  # Intact: passes.
  flip(workdir / "embeddings.npy")
  message = the_error(run, workdir)
  assert message == (f"{workdir}/embeddings.npy: content differs from what "
                     "was written (written by stage 'embed'); remake it with "
                     "--config.stages=embed --config.force=True")


def main(workdir, *overrides):
  return subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={ROOT}/configs/test.py", f"--workdir={workdir}",
       *overrides], capture_output=True, text=True, cwd=ROOT, timeout=600)


def one_error_line(proc):
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, proc.stderr[-3000:]
  return lines[0]


def test_command_line_truncated_unet_exits_2(copies):
  """Issue 32's probe: a truncated U-Net file was a TensorStore traceback."""
  workdir, _ = copies
  name = damage("truncate", workdir, None, "unet")
  before = listing(workdir)
  line = one_error_line(main(workdir, "--config.stages=eval",
                             "--config.eval.datasets=scenes:5:8:32,"
                             "scenes:6:8:32"))
  assert line.startswith(f"error: {workdir}/{name}: truncated (1000 of ")
  assert listing(workdir) == before


def test_command_line_flipped_checkpoint_exits_2(copies):
  workdir, _ = copies
  resumable(workdir, "train", config("train"))
  step = checkpointing.saved_steps(str(workdir / "checkpoints" / "train"))[-1]
  name = damage("flip", workdir, None, f"checkpoints/train/{step}")
  before = listing(workdir)
  line = one_error_line(main(workdir, "--config.stages=train"))
  assert line.startswith(f"error: {workdir}/{name}: content differs")
  assert listing(workdir) == before
