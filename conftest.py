"""pytest settings for the whole checkout (tests/ and benchmarks/)."""
import os

import pytest

_CACHE_DIR = "JAX_COMPILATION_CACHE_DIR"


@pytest.hookimpl(trylast=True)  # After pytest's own, which make tmp_path's.
def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: several subprocesses that compile JAX, or a longer "
      "variant of a fast test (deselect with -m 'not slow')")
  _compile_quickly()
  _share_compiled_programs(config)


_QUICK_COMPILE = "--xla_backend_optimization_level=0"


def _compile_quickly():
  """LLVM's optimisation level 0 for every XLA:CPU program of the run.

  Most of the suite's time is compiling many small programs once each
  (whole pipelines at tiny sizes); their run time is small. At level 0
  the code of XLA's own CPU kernels is not optimised by LLVM (the
  convolutions and matmuls are library calls either way): a whole
  StyleGAN2 pipeline test took 42 s instead of 73 s. Results differ from
  the default level by float rounding only (a tiny training run's state
  after 3 steps: within 5e-5): the suite compares runs of the same flags
  with each other bit for bit, and references with a tolerance. Added to
  XLA_FLAGS, which the xdist workers and every subprocess inherit; a level
  already set is kept (`XLA_FLAGS=--xla_backend_optimization_level=2 make
  test` runs the suite on the default level).
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_backend_optimization_level" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {_QUICK_COMPILE}".strip()


def _share_compiled_programs(config):
  """One persistent XLA compilation cache for every process of the run.

  Test subprocesses (`python -m gansseg_jax.main` on configs/test.py, ...)
  compile the same programs again and again; with the cache only the first
  compiles, the others load the executable (keys are the program, the
  compile options, XLA_FLAGS and the jax version, so a hit is the program
  a compile would give); jax writes the programs that took at least 1 s
  (jax_persistent_cache_min_compile_time_secs) to compile. The pytest
  processes themselves do not use it: their tests seldom compile a program
  another process compiled, and looking each program up cost the in-process
  model tests ~10% more CPU. The folder is in the run's own pytest temporary
  folder (new for each run; pytest keeps the last three), where the xdist
  workers' folders are too; the workers and every subprocess inherit it
  through the environment. A torn entry (one process reading a key while
  another writes it) is a jax warning and a recompile, never a wrong
  program. A JAX_COMPILATION_CACHE_DIR already set (by the user, or by the
  main process for an xdist worker) is kept as it is for the subprocesses.
  """
  if not hasattr(config, "workerinput") and config.getoption(
      "numprocesses", None):
    pass  # The xdist main process: runs no test, only sets the environment.
  else:
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.update("jax_enable_compilation_cache", False)  # This process.
  if os.environ.get(_CACHE_DIR):
    return
  # pytest's TempPathFactory, which xdist also reads for the workers' folders.
  path = config._tmp_path_factory.getbasetemp() / "xla_cache"  # pylint: disable=protected-access
  path.mkdir(exist_ok=True)
  os.environ[_CACHE_DIR] = str(path)


@pytest.hookimpl(trylast=True)  # After -m deselects and pytest's reorder.
def pytest_collection_modifyitems(config, items):
  """Modules with `slow` tests first, each group in collection order.

  `make test` hands whole modules to the xdist workers (--dist loadfile, so
  a module's shared fixtures run once); a long module started last would
  leave the other worker idle at the end, so the long ones start first and
  the many short ones fill in behind them.
  """
  del config
  slow = {item.path for item in items if item.get_closest_marker("slow")}
  items.sort(key=lambda item: item.path not in slow)
