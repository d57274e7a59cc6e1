"""User configs and plug-in kinds outside the checkout, run from elsewhere.

Each test runs `python -m gansseg_jax.main` in a subprocess whose cwd is
neither the checkout nor the user's folder, with only gansseg_jax importable
(PYTHONPATH: a folder holding a symlink to this checkout's package, as an
editable install maps the package alone), so `configs` and the user's
module are not on sys.path unless main.py puts them there.
"""
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_CONFIG = """\
from configs import test


def get_config():
  c = test.get_config()
  c.stages = "convert"
  c.generator.source = "builtin"
  c.generator.z_dim = 32
  return c
"""


def _run(cwd, package_dir, *args):
  env = dict(os.environ, PYTHONPATH=str(package_dir))
  return subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main", *args], cwd=cwd, env=env,
      capture_output=True, text=True, timeout=300)


def _dirs(tmp_path, *names):
  for name in names:
    (tmp_path / name).mkdir()
  return [tmp_path / name for name in names]


def _linked_package(tmp_path):
  (shim,) = _dirs(tmp_path, "shim")
  os.symlink(os.path.join(REPO, "gansseg_jax"), shim / "gansseg_jax")
  return shim


def test_user_config_elsewhere_imports_the_checkouts_configs(tmp_path):
  shim = _linked_package(tmp_path)
  project, elsewhere = _dirs(tmp_path, "project", "elsewhere")
  (project / "mine.py").write_text(USER_CONFIG)
  result = _run(elsewhere, shim, f"--config={project / 'mine.py'}",
                f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert (tmp_path / "w" / "generator" / "spec.json").is_file()


def test_configs_missing_is_one_line(tmp_path):
  # An install without the checkout: a copy of the package, no configs/.
  (site, project, elsewhere) = _dirs(tmp_path, "site", "project",
                                     "elsewhere")
  shutil.copytree(os.path.join(REPO, "gansseg_jax"), site / "gansseg_jax",
                  ignore=shutil.ignore_patterns("__pycache__", "assets"))
  (project / "mine.py").write_text(USER_CONFIG)
  result = _run(elsewhere, site, f"--config={project / 'mine.py'}",
                f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2
  assert result.stderr.strip() == (
      f"error: --config: {project / 'mine.py'}: No module named 'configs'; "
      "put the gansseg_jax checkout (the folder that holds configs/) on "
      "PYTHONPATH")
  assert not (tmp_path / "w").exists()


def test_plugin_kind_is_found_by_later_stages_from_elsewhere(tmp_path):
  shim = _linked_package(tmp_path)
  project, elsewhere = _dirs(tmp_path, "project", "elsewhere")
  shutil.copy(os.path.join(REPO, "examples", "tiny_generator.py"),
              project / "mykind.py")
  args = [f"--config={os.path.join(REPO, 'configs', 'test.py')}",
          f"--workdir={tmp_path / 'w'}", "--config.generator.arch=mykind:KIND",
          "--config.generator.source=random", "--config.generator.z_dim=8",
          "--config.directions.source=sefa"]
  first = _run(project, shim, *args, "--config.stages=convert")
  assert first.returncode == 0, first.stderr[-2000:]
  later = _run(elsewhere, shim, *args, "--config.stages=discover")
  assert later.returncode == 0, later.stderr[-2000:]
  assert (tmp_path / "w" / "directions.npy").is_file()
  # A new workdir has no record: the error names the folder to add.
  fresh = _run(elsewhere, shim, *args, f"--workdir={tmp_path / 'v'}",
               "--config.stages=convert")
  assert fresh.returncode == 2
  assert fresh.stderr.strip().splitlines()[-1] == (
      "error: config.generator.arch: 'mykind:KIND': cannot import mykind (No "
      "module named 'mykind'); put the folder that holds mykind.py (or the "
      "package mykind/) on PYTHONPATH, or run from it")
