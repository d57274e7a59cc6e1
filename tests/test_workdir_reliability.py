"""The workdir's promises through the command line (docs/reliability.md).

One run per workdir (an OS lock, released on a crash); an unusable workdir
is one `error:` line, exit 2, nothing written.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

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


def listing(folder):
  """{relative path: bytes} of every file under `folder`."""
  out = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, folder)] = f.read()
  return out


HOLDER = textwrap.dedent("""
    import sys, time
    from gansseg_jax import lock
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
       "import sys; from gansseg_jax import lock; lock.check_free(sys.argv[1])",
       workdir], capture_output=True, text=True, cwd=ROOT))
  open(os.path.join(workdir, "out.txt"), "w").close()


def test_a_running_stage_holds_the_lock_until_it_ends(tmp_path, monkeypatch):
  import ml_collections
  from gansseg_jax import lock
  from gansseg_jax import stages
  fake = stages.Stage("probe", f"{__name__}:probe_lock", 0, (), (),
                      lambda c: (), lambda c: ("out.txt",))
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
