r"""Entry point: `python -m gansseg_jax.main --config=configs/cub.py --workdir=W`.

Flags only, then dispatch to the stage runner. Config fields are overridden
with `--config.section.field=value` (the config is locked: unknown fields are
errors). Bad input of any kind ends with one `error:` line and exit code 2.
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from gansseg_jax import errors
from gansseg_jax import runtime
from gansseg_jax import stages
from gansseg_jax.train import checkpointing

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path of a config file in configs/.", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Folder for every output of the run (created if missing).")
flags.mark_flags_as_required(["config", "workdir"])

def _config_path(argv: list[str]) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _override_named(argv: list[str], key: str) -> str:
  """The `--config.a.b=...` argument whose path contains `key`."""
  for arg in argv:
    if arg.startswith("--config."):
      path = arg[2:].split("=", 1)[0]
      if key in path.split("."):
        return path
  return f"config.{key}"


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing, with any flag or config error reduced to one line.

  The config file's grandparent (the checkout root for `configs/x.py`) goes on
  sys.path, so configs can `from configs import default` from any cwd.
  """
  path = _config_path(argv)
  if path is not None:
    config_file = path.split(":", 1)[0]
    if not os.path.isfile(config_file):
      errors.exit_with_error(f"--config: no such file: {config_file}")
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(config_file))))
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:
    # ml_collections: an override of a field the locked config does not have
    # raises the KeyError of the missing key, bare or inside an AttributeError.
    missing = e if isinstance(e, KeyError) else (e.args[0] if e.args else e)
    if isinstance(missing, KeyError) and missing.args:
      key = str(missing.args[0]).strip("'")
      errors.exit_with_error(f"{_override_named(argv, key)}: no such config field")
    errors.exit_with_error(f"--config: {e}")
  except flags.Error as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    errors.exit_with_error(lines[-1] if lines and lines[0].startswith("Traceback")
          else (lines[0] if lines else type(e).__name__))
  except (TypeError, ValueError, OSError) as e:
    errors.exit_with_error(f"--config: {e}")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    errors.exit_with_error(f"unexpected arguments: {' '.join(argv[1:])}")
  config = _CONFIG.value
  try:
    runtime.distributed_wanted(config)  # Validates the switch early.
    # Absolute: orbax and multi-host runs need it, and logs name real paths.
    plan = stages.plan(config, os.path.abspath(_WORKDIR.value))
    runtime.initialize(config)
    stages.execute(plan)
  except errors.UserError as e:
    logging.flush()
    errors.exit_with_error(str(e))
  except checkpointing.Preempted as e:  # Saved; exit status 143.
    logging.flush()
    print(f"stopped: {e}", file=sys.stderr)
    raise


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
