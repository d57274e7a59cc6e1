"""The workdir's promises through the command line (docs/reliability.md).

One run per workdir (an OS lock, released on a crash); an unusable workdir
is one `error:` line, exit 2, nothing written.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from configs import test as test_config
from file_listing import listing
from stage_markers import mark_done

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main_command(workdir, *overrides):
  return [sys.executable, "-m", "gansseg_jax.main",
          f"--config={ROOT}/configs/test.py", f"--workdir={workdir}",
          *overrides]


def run_main(workdir, *overrides, timeout=300):
  return subprocess.run(main_command(workdir, *overrides), capture_output=True,
                        text=True, cwd=ROOT, timeout=timeout)


def the_error(proc):
  """The single `error:` line of a run that failed cleanly with exit 2."""
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, proc.stderr[-3000:]
  return lines[0]


HOLDER = textwrap.dedent("""
    import sys, time
    from gansseg_jax.run import lock
    with lock.WorkdirLock(sys.argv[1]):
      print("held", flush=True)
      time.sleep(120)
""")


@pytest.fixture
def held_workdir(tmp_path):
  """A workdir whose lock another live process holds; yields (path, process)."""
  workdir = tmp_path / "w"
  workdir.mkdir()
  holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
  assert holder.stdout.readline().strip() == "held"
  yield workdir, holder
  holder.kill()
  holder.wait()


def test_second_run_stops_at_once_naming_the_holder(held_workdir):
  workdir, holder = held_workdir
  before = listing(workdir)
  error = the_error(run_main(workdir, "--config.stages=convert"))
  assert error == (
      f"error: {workdir}: in use by another run (pid {holder.pid} on host "
      f"{socket.gethostname()}); wait for it to end or use another --workdir")
  assert listing(workdir) == before


def test_two_real_runs_on_one_workdir(tmp_path):
  """The issue's case: a second run while the first trains; then kill -9."""
  import json
  import time
  workdir = tmp_path / "w"
  first = subprocess.Popen(
      main_command(workdir, "--config.stages=convert,discover",
                   "--config.directions.steps=100000"),
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
  try:
    deadline = time.monotonic() + 240
    while not (workdir / ".lock").exists() or not (
        workdir / ".lock").read_text():
      assert first.poll() is None and time.monotonic() < deadline
      time.sleep(0.1)
    assert json.loads((workdir / ".lock").read_text())["pid"] == first.pid
    error = the_error(run_main(workdir, "--config.stages=convert"))
    assert error.startswith(f"error: {workdir}: in use by another run (pid "
                            f"{first.pid} on host {socket.gethostname()})")
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  from gansseg_jax.run import lock
  lock.check_free(str(workdir))  # kill -9 released it.


def test_lock_of_a_killed_run_is_free(held_workdir):
  workdir, holder = held_workdir
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  proc = run_main(workdir, "--config.stages=convert")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (workdir / "stages" / "convert.json").exists()


PROBES = []


def probe_lock(config, workdir):
  """A fake stage: another process tries the lock while this stage runs."""
  del config
  PROBES.append(subprocess.run(
      [sys.executable, "-c",
       "import sys; from gansseg_jax.run import lock; lock.check_free(sys.argv[1])",
       workdir], capture_output=True, text=True, cwd=ROOT))
  open(os.path.join(workdir, "out.txt"), "w").close()


def test_a_running_stage_holds_the_lock_until_it_ends(tmp_path, monkeypatch):
  import ml_collections
  from gansseg_jax.run import lock
  from gansseg_jax.run import stages
  fake = stages.Stage(name="probe",
                      run=f"{__name__}:probe_lock",
                      reads=(),
                      inputs=lambda c: (),
                      outputs=lambda c: ("out.txt",))
  monkeypatch.setattr(stages, "STAGES", (fake,))
  monkeypatch.setattr(stages, "BY_NAME", {"probe": fake})
  PROBES.clear()
  stages.run(ml_collections.ConfigDict(
      {"seed": 0, "stages": "probe", "force": False}), str(tmp_path))
  assert PROBES[0].returncode == 1
  assert (f"in use by another run (pid {os.getpid()} on host "
          f"{socket.gethostname()})") in PROBES[0].stderr
  lock.check_free(str(tmp_path))  # Free once the run ended.


def test_workdir_that_is_a_file(tmp_path):
  path = tmp_path / "w"
  path.write_text("not a folder")
  error = the_error(run_main(path, "--config.stages=convert"))
  assert error == f"error: --workdir: {path} exists and is not a folder"
  assert path.read_text() == "not a folder"


def test_workdir_under_a_file(tmp_path):
  (tmp_path / "f").write_text("x")
  error = the_error(run_main(tmp_path / "f" / "w", "--config.stages=convert"))
  assert error == (f"error: --workdir: {tmp_path / 'f'} is not a folder, so "
                   f"{tmp_path / 'f' / 'w'} cannot be created")


def _read_only_mount_works():
  if not shutil.which("unshare"):
    return False
  probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                          "mount --bind / /mnt 2>/dev/null || "
                          "mount -t tmpfs tmpfs /mnt"], capture_output=True)
  return probe.returncode == 0


@pytest.mark.skipif(not _read_only_mount_works(),
                    reason="needs `unshare -rm` (user + mount namespaces) to "
                    "mount a folder read-only")
@pytest.mark.parametrize("subdir, message", [
    ("", "is not writable (read-only file system or no permission)"),
    ("new", "cannot be created ({ro} is not writable: read-only file system "
     "or no permission)"),
])
def test_read_only_workdir(tmp_path, subdir, message):
  """A real read-only filesystem (a bind mount in a private namespace)."""
  ro = tmp_path / "ro"
  ro.mkdir()
  (ro / "kept.txt").write_text("old")
  workdir = ro / subdir if subdir else ro
  command = " ".join(f"'{a}'" for a in main_command(
      workdir, "--config.stages=convert"))
  proc = subprocess.run(
      ["unshare", "-rm", "sh", "-c",
       f"mount --bind '{ro}' '{ro}' && mount -o remount,bind,ro '{ro}' && "
       f"exec {command}"],
      capture_output=True, text=True, cwd=ROOT, timeout=300,
      env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", ROOT)})
  error = the_error(proc)
  assert error == f"error: --workdir: {workdir} " + message.format(ro=ro)
  assert listing(ro) == {"kept.txt": b"old"}


def _small_tmpfs_works():
  if not shutil.which("unshare"):
    return False
  probe = subprocess.run(["unshare", "-rm", "sh", "-c",
                          "mount -t tmpfs -o size=64k tmpfs /mnt"],
                         capture_output=True)
  return probe.returncode == 0


@pytest.mark.slow  # Two runs of main (about a minute on loaded cores).
@pytest.mark.skipif(not _small_tmpfs_works(),
                    reason="needs `unshare -rm` and tmpfs to fill a disk")
def test_full_disk_is_one_line_and_the_next_run_resumes(tmp_path):
  """A full disk (orbax/TensorStore's RESOURCE_EXHAUSTED) is one line. A
  64 KiB tmpfs holds config.json but not the generator (188 KiB)."""
  workdir = tmp_path / "w"
  workdir.mkdir()
  command = " ".join(f"'{a}'" for a in main_command(
      workdir, "--config.stages=convert"))
  script = (f"mount -t tmpfs -o size=64k tmpfs '{workdir}' && "
            f"{command} 2>'{tmp_path}/full.err'; echo $? >'{tmp_path}/rc'; "
            f"ls -A '{workdir}' >'{tmp_path}/left'; "
            f"mount -o remount,size=8m '{workdir}' && {command} && "
            f"test -f '{workdir}/stages/convert.json'")
  proc = subprocess.run(
      ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
      cwd=ROOT, timeout=600,
      env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", ROOT)})
  assert proc.returncode == 0, proc.stderr[-3000:]  # Space freed: it ran.
  full = subprocess.CompletedProcess(
      [], int((tmp_path / "rc").read_text()), "",
      (tmp_path / "full.err").read_text())
  error = the_error(full)
  assert error.startswith(f"error: {workdir}/generator")
  assert "No space left on device (" in error and "MiB free" in error
  assert (tmp_path / "left").read_text() == ""  # Nothing half-made.


# --- The runner with fake stages (in-process): force, markers, config.json.

def resumable(config, workdir):
  """A fake long stage: counts to config.r.steps, resuming from its scratch.

  Its output records the learning rate of every step, so a step made under
  another config shows up in it.
  """
  import json
  from gansseg_jax.infra import errors
  from gansseg_jax.infra import fileio
  scratch = os.path.join(workdir, "checkpoints", "r")
  os.makedirs(scratch, exist_ok=True)
  log_path = os.path.join(scratch, "steps.json")
  steps = json.load(open(log_path)) if os.path.exists(log_path) else []
  if config.fault.fail == "user":
    raise errors.UserError("config.r.fail: bad input")
  while len(steps) < config.r.steps:
    steps.append(config.r.lr)
    fileio.write_json(log_path, steps)
    if config.fault.fail == f"crash_at_{len(steps)}":
      raise RuntimeError("crash")
    if config.fault.fail == f"preempt_at_{len(steps)}":
      raise SystemExit("preempted")  # As checkpointing.Preempted.
  fileio.write_json(os.path.join(workdir, "r.json"), steps)


def downstream(config, workdir):
  del config
  shutil.copy(os.path.join(workdir, "r.json"), os.path.join(workdir, "d.json"))


@pytest.fixture
def fake_stages(monkeypatch):
  from gansseg_jax.run import stages
  fake = (
      stages.Stage(name="r",
                   run=f"{__name__}:resumable",
                   reads=("r",),
                   inputs=lambda c: (),
                   outputs=lambda c: ("r.json",),
                   scratch=lambda c: ("checkpoints/r",)),
      stages.Stage(name="d",
                   run=f"{__name__}:downstream",
                   reads=("d",),
                   after=("r",),
                   inputs=lambda c: ("r.json",),
                   outputs=lambda c: ("d.json",)),
  )
  monkeypatch.setattr(stages, "STAGES", fake)
  monkeypatch.setattr(stages, "BY_NAME", {s.name: s for s in fake})
  return stages


def fake_config(names="r,d", steps=3, lr=1.0, fail="", force=False, d=0):
  import ml_collections
  return ml_collections.ConfigDict({
      "seed": 0, "stages": names, "force": force,
      "r": {"steps": steps, "lr": lr}, "d": {"value": d},
      "fault": {"fail": fail}})  # Read by no stage's hash.


def read_json(path):
  import json
  with open(path) as f:
    return json.load(f)


def test_forced_stage_starts_from_scratch(tmp_path, fake_stages, caplog):
  fake_stages.run(fake_config(), str(tmp_path))
  assert read_json(tmp_path / "r.json") == [1.0, 1.0, 1.0]
  caplog.set_level("INFO", logger="absl")
  fake_stages.run(fake_config("r", lr=0.5, force=True), str(tmp_path))
  # Every step under the new config; none resumed from the old checkpoints.
  assert read_json(tmp_path / "r.json") == [0.5, 0.5, 0.5]
  assert "forced: starting from scratch; old state moved to" in caplog.text
  assert not (tmp_path / "checkpoints" / "r.replaced").exists()
  marker = read_json(tmp_path / "stages" / "r.json")
  assert marker["config"]["r"]["lr"] == 0.5
  assert not (tmp_path / "stages" / "r.started.json").exists()
  # The downstream marker was made from the old output: gone, so d re-runs.
  assert not (tmp_path / "stages" / "d.json").exists()


def test_unchanged_config_resumes_and_changed_one_is_refused(tmp_path,
                                                             fake_stages):
  from gansseg_jax.infra import errors
  with pytest.raises(RuntimeError, match="crash"):
    fake_stages.run(fake_config(fail="crash_at_2"), str(tmp_path))
  assert read_json(tmp_path / "checkpoints" / "r" / "steps.json") == [1.0, 1.0]
  before = listing(tmp_path)
  with pytest.raises(errors.UserError, match=(
      r"stages/r\.started\.json: stage 'r' was started \(and left "
      r"checkpoints\) with a different config \(r\.lr: 1\.0 -> 0\.5\)")):
    fake_stages.run(fake_config(lr=0.5), str(tmp_path))
  assert listing(tmp_path) == before
  fake_stages.run(fake_config(lr=0.5, force=True), str(tmp_path))
  assert read_json(tmp_path / "r.json") == [0.5, 0.5, 0.5]


def test_same_config_resumes_where_it_stopped(tmp_path, fake_stages):
  with pytest.raises(RuntimeError, match="crash"):
    fake_stages.run(fake_config(fail="crash_at_2"), str(tmp_path))
  fake_stages.run(fake_config(lr=1.0), str(tmp_path))
  assert read_json(tmp_path / "r.json") == [1.0, 1.0, 1.0]


def test_preempted_forced_stage_resumes_without_force(tmp_path, fake_stages):
  """A forced change stopped by SIGTERM is finished by the same command."""
  from gansseg_jax.infra import errors
  fake_stages.run(fake_config(), str(tmp_path))
  with pytest.raises(SystemExit):
    fake_stages.run(fake_config(lr=0.5, fail="preempt_at_2", force=True),
                    str(tmp_path))
  with pytest.raises(errors.UserError, match="was started"):  # The old config.
    fake_stages.run(fake_config(), str(tmp_path))
  fake_stages.run(fake_config(lr=0.5), str(tmp_path))
  assert read_json(tmp_path / "r.json") == [0.5, 0.5, 0.5]
  assert read_json(tmp_path / "d.json") == [0.5, 0.5, 0.5]
  assert not (tmp_path / "checkpoints" / "r.replaced").exists()


def test_failed_forced_stage_puts_everything_back(tmp_path, fake_stages):
  fake_stages.run(fake_config(), str(tmp_path))
  before = listing(tmp_path)
  for fail, error in (("user", "bad input"), ("crash_at_1", "crash")):
    with pytest.raises(Exception, match=error):
      fake_stages.run(fake_config("r", lr=0.5, fail=fail, force=True),
                      str(tmp_path))
    after = listing(tmp_path)
    if fail == "crash_at_1":  # Not bad input: config.json says what ran.
      assert read_json(tmp_path / "config.json")["r"]["lr"] == 0.5
      after["config.json"] = before["config.json"]
    assert after == before


def test_failed_run_leaves_markers_of_stages_it_did_not_finish(tmp_path,
                                                              fake_stages):
  from gansseg_jax.infra import errors
  fake_stages.run(fake_config(), str(tmp_path))
  before = listing(tmp_path)
  # A forced run of both under another config, stopped by bad input in 'r'.
  with pytest.raises(errors.UserError):
    fake_stages.run(fake_config(lr=0.5, d=1, fail="user", force=True),
                    str(tmp_path))
  assert listing(tmp_path) == before


def test_changed_config_error_names_the_markers_own_values(tmp_path,
                                                           fake_stages):
  from gansseg_jax.infra import errors
  fake_stages.run(fake_config("r"), str(tmp_path))
  fake_stages.run(fake_config("d", d=7), str(tmp_path))  # config.json: d=7.
  with pytest.raises(errors.UserError, match=(
      r"stages/r\.json: stage 'r' was run with a different config "
      r"\(r\.lr: 1\.0 -> 2\.0\)")):
    fake_stages.run(fake_config("d", lr=2.0, d=7), str(tmp_path))


# --- Bad input found while planning: exit 2, the workdir unchanged.

def made_workdir(tmp_path, direction_shape=(120,)):
  """A workdir as convert and score leave it, for configs/test.py (no params)."""
  import json
  import numpy as np
  workdir = tmp_path / "w"
  (workdir / "generator").mkdir(parents=True)
  (workdir / "generator" / "spec.json").write_text(json.dumps(
      {"arch": "biggan", "source": "random",
       "spec": {"resolution": 32, "z_dim": 120, "ch": 4, "shared_dim": 8,
                "attention_resolution": 0, "bn_eps": 1e-4}}))
  direction = np.zeros(direction_shape, np.float32)
  direction.flat[0] = 1.0
  np.save(workdir / "bg_direction.npy", direction)
  (workdir / "config.json").write_text('{"earlier": "run"}\n')
  mark_done(workdir, "convert", test_config.get_config())
  mark_done(workdir, "score", test_config.get_config())
  return workdir


def test_wrong_direction_file_is_found_while_planning(tmp_path):
  workdir = made_workdir(tmp_path, direction_shape=(7, 3))
  before = listing(workdir)
  error = the_error(run_main(workdir, "--config.stages=train"))
  assert error == (f"error: {workdir}/bg_direction.npy: expected shape [120], "
                   "got [7, 3]")
  assert listing(workdir) == before


def test_batch_that_does_not_split_over_4_devices(tmp_path):
  workdir = made_workdir(tmp_path)
  before = listing(workdir)
  proc = subprocess.run(
      main_command(workdir, "--config.stages=train",
                   "--config.train.batch_size=6"),
      capture_output=True, text=True, cwd=ROOT, timeout=300,
      env={**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
  assert the_error(proc) == (
      "error: config.train.batch_size: global batch 6 does not split evenly "
      "over 4 devices; use a multiple of 4")
  assert listing(workdir) == before


def test_empty_segment_folder_is_found_while_planning(tmp_path):
  workdir = made_workdir(tmp_path)
  (workdir / "unet").mkdir()
  mark_done(workdir, "train", test_config.get_config())
  photos = tmp_path / "photos"
  photos.mkdir()
  before = listing(workdir)
  error = the_error(run_main(workdir, "--config.stages=segment",
                             f"--config.segment.input_dir={photos}"))
  assert error == (f"error: config.segment.input_dir: holds no image files "
                   f"(any format Pillow reads), got '{photos}'")
  assert listing(workdir) == before


def test_missing_torch_checkpoint_creates_no_workdir(tmp_path):
  error = the_error(run_main(
      tmp_path / "w", "--config.stages=convert",
      "--config.generator.source=torch",
      f"--config.generator.torch_checkpoint={tmp_path}/BigBiGAN_x1.pth"))
  assert error.startswith("error: config.generator.torch_checkpoint: must be "
                          "an existing file")
  assert not (tmp_path / "w").exists()


def test_truncated_generator_leaves_the_workdir_as_it_was(tmp_path):
  """Found while planning (fingerprints); a marker made before them (or
  edited) records nothing to check against: refused too, nothing changed."""
  workdir = tmp_path / "w"
  proc = run_main(workdir, "--config.stages=convert")
  assert proc.returncode == 0, proc.stderr[-3000:]
  params = workdir / "generator" / "params"
  biggest = max((p for p in params.rglob("*") if p.is_file()),
                key=lambda p: p.stat().st_size)
  size = biggest.stat().st_size
  with open(biggest, "r+b") as f:
    f.truncate(100)
  before = listing(workdir)
  error = the_error(run_main(workdir, "--config.stages=discover"))
  assert error == (f"error: {biggest}: truncated (100 of {size} bytes) "
                   "(written by stage 'convert'); remake it with "
                   "--config.stages=convert --config.force=True")
  assert listing(workdir) == before
  marker = workdir / "stages" / "convert.json"
  old = {k: v for k, v in json.loads(marker.read_text()).items()
         if k not in ("files", "outputs", "sha256")}
  marker.write_text(json.dumps(old))
  before = listing(workdir)
  error = the_error(run_main(workdir, "--config.stages=discover"))
  assert error == (f"error: {marker}: records no fingerprints of the files "
                   "stage 'convert' wrote (made before they were recorded, or "
                   "edited), so its outputs cannot be verified; remake them "
                   "with --config.stages=convert --config.force=True")
  assert listing(workdir) == before
