"""Many `python -m gansseg_jax.main ...` runs in one fresh interpreter.

For runs that stop on bad input before any work: each one is absl's
`app.run(main, flags_parser=parse_flags)` on its own argv (what the module's
`__main__` does), with file descriptor 2 redirected to a file so that
everything written to stderr, Python's or native, is its output, and the
flags reset after it. One interpreter start and one import of jax serve them
all (each costs seconds of CPU as its own process). A run's outcome is its
exit status and stderr: the status of SystemExit, 0 when main returns, and
1 plus the traceback on stderr for any other exception, as the interpreter
would. Tests that need exactly a real process (its environment, cwd, or a
run that computes) start one instead.
"""
import json
import os
import subprocess
import sys
import tempfile
import traceback

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)


def run_many(argvs: list[list[str]], cwd: str,
             timeout: float = 300) -> list[tuple[int, str]]:
  """(exit status, stderr) of `python -m gansseg_jax.main *argv` for each."""
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
      [REPO_DIR] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                    if p])
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__)], input=json.dumps(argvs),
      capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return [tuple(r) for r in json.loads(proc.stdout)]


def _run_one(argv: list[str]) -> tuple[int, str]:
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from gansseg_jax import main  # pylint: disable=g-import-not-at-top
  # ml_collections reads the --config.a.b overrides from sys.argv.
  sys.argv = ["gansseg_jax.main", *argv]
  with tempfile.TemporaryFile() as captured:
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(captured.fileno(), 2)
    try:
      app.run(main.main, argv=sys.argv, flags_parser=main.parse_flags)
      status = 0
    except SystemExit as e:
      status = (e.code if isinstance(e.code, int)
                else 0 if e.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()
      status = 1
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      flags.FLAGS.unparse_flags()
    captured.seek(0)
    return status, captured.read().decode()


if __name__ == "__main__":
  results = [_run_one(argv) for argv in json.load(sys.stdin)]
  sys.stdout.write(json.dumps(results))
