"""The command line: bad input gives one error line, exit code 2, no writes."""
import os
import subprocess
import sys

import pytest

import cli_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(tmp_path, *args):
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={ROOT}/configs/test.py", f"--workdir={workdir}", *args],
      capture_output=True, text=True, cwd=tmp_path, timeout=120)
  return proc, workdir


BAD_INPUT = [
    ("--config.no_such_key=1", "error: --config.no_such_key: no such field"),
    ("--config.train.nosuch=1", "error: --config.train.nosuch: no such field"),
    ("--config.train.stepz=100", "error: --config.train.stepz: no such field "
     "(did you mean train.steps?)"),
    ("--config.trian.steps=1", "error: --config.trian.steps: no such field "
     "(did you mean train?)"),
    ("--config.train.steps.x=1", "error: --config.train.steps.x: no such "
     "field (train.steps is a value, not a section)"),
    ("--config.train.steps=abc", "error: flag --config.train.steps=abc:"),
    ("--config.stages=bogus", "error: config.stages: unknown stage 'bogus'"),
    ("--config.distributed.initialize=maybe",
     "error: config.distributed.initialize: must be one of 'auto', 'yes', "
     "'no', got 'maybe'"),
]


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
  """{override: (exit status, stderr, workdir)}, all in one interpreter
  (tests/cli_runs.py); test_misspelt_field_is_exactly_one_line runs one of
  them as a process of its own."""
  root = tmp_path_factory.mktemp("bad_input")
  workdirs = [root / f"w{i}" for i in range(len(BAD_INPUT))]
  results = cli_runs.run_many(
      [[f"--config={ROOT}/configs/test.py", f"--workdir={workdir}", override]
       for (override, _), workdir in zip(BAD_INPUT, workdirs)], cwd=root)
  return {override: (status, stderr, workdir) for (override, _), workdir,
          (status, stderr) in zip(BAD_INPUT, workdirs, results)}


@pytest.mark.parametrize("override, message", BAD_INPUT)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(bad_input_runs,
                                                         override, message):
  status, stderr, workdir = bad_input_runs[override]
  assert status == 2, stderr
  error_lines = [l for l in stderr.splitlines() if l.startswith("error:")]
  assert len(error_lines) == 1 and error_lines[0].startswith(message), stderr
  assert "Traceback" not in stderr
  assert not workdir.exists()


def test_missing_config_file(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main", "--config=nope/none.py",
       f"--workdir={tmp_path / 'w'}"],
      capture_output=True, text=True, cwd=tmp_path, timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip() == "error: --config: no such file: nope/none.py"


def test_relative_workdir_runs_and_resolves_against_the_cwd(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={ROOT}/configs/test.py", "--workdir=rel/w",
       "--config.stages=convert"],
      capture_output=True, text=True, cwd=tmp_path, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert (tmp_path / "rel" / "w" / "generator" / "spec.json").exists()


def test_misspelt_field_is_exactly_one_line(tmp_path):
  proc, workdir = run_main(tmp_path, "--config.train.stepz=100")
  assert proc.returncode == 2
  assert proc.stderr.splitlines() == [
      "error: --config.train.stepz: no such field (did you mean train.steps?)"]
  assert not workdir.exists()
