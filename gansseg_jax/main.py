r"""Entry point: `python -m gansseg_jax.main --config=configs/cub.py --workdir=W`.

Flags only, then dispatch to the stage runner. Config fields are overridden
with `--config.section.field=value` (the config is locked: unknown fields are
errors). Bad input of any kind ends with one `error:` line and exit code 2,
found before anything is written: every field's range (config_checks), the
workdir and its files (stages.plan), the files the config names, then the
batch sizes against the devices; only then does the run take the workdir's
lock and write config.json (docs/reliability.md).
"""
import difflib
import errno
import logging as logging_lib
import os
import re
import shutil
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags

from gansseg_jax.run import config_checks
from gansseg_jax.infra import errors
from gansseg_jax.run import recorded_config
from gansseg_jax.infra import runtime
from gansseg_jax.run import stages
from gansseg_jax.convert import load
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import config_files
from gansseg_jax.generator_interface import kinds

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


def _unknown_override(argv: list[str], config_arg: str) -> str | None:
  """'--config.a.b: no such field (did you mean a.c?)' for the first bad one."""
  config = config_files.load(config_arg)
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    path = arg[len("--config."):].split("=", 1)[0]
    node, parents = config, []
    for part in path.split("."):
      if not isinstance(node, ml_collections.ConfigDict):
        return (f"--config.{path}: no such field ({'.'.join(parents)} is a "
                "value, not a section)")
      if part not in node:
        close = difflib.get_close_matches(part, list(node.keys()), n=1)
        hint = (f" (did you mean {'.'.join(parents + close)}?)" if close
                else "")
        return f"--config.{path}: no such field{hint}"
      node, parents = node[part], parents + [part]
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing, with any flag or config error reduced to one line.

  `config_files.make_importable` runs first, so configs can `from configs
  import default` from any cwd.
  """
  path = _config_path(argv)
  config_file = None
  if path is not None:
    config_file = path.split(":", 1)[0]
    if not os.path.isfile(config_file):
      errors.exit_with_error(f"--config: no such file: {config_file}")
    config_files.make_importable(config_file)
  try:
    return flags.FLAGS(argv)
  except ImportError as e:
    hint = ("; put the gansseg_jax checkout (the folder that holds configs/) "
            "on PYTHONPATH" if isinstance(e, ModuleNotFoundError)
            and e.name == config_files.PACKAGE else "")
    errors.exit_with_error(f"--config: {config_file}: {e}{hint}")
  except (AttributeError, KeyError) as e:
    # ml_collections: an override of a field the locked config does not have
    # raises the KeyError of the missing key, bare or inside an AttributeError.
    unknown = path and _unknown_override(argv, path)
    errors.exit_with_error(unknown or f"--config: {e}")
  except flags.Error as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    errors.exit_with_error(lines[-1] if lines and lines[0].startswith("Traceback")
          else (lines[0] if lines else type(e).__name__))
  except (TypeError, ValueError, OSError) as e:
    errors.exit_with_error(f"--config: {e}")


# A write the filesystem refuses (read-only, no permission, full): the user
# can fix it, so it ends like bad input, with the file named.
_REFUSED_WRITES = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC,
                   errno.EDQUOT)


def _refused_write(error: BaseException, workdir: str) -> str:
  """'<file>: <why>' for a write the filesystem refused; a full disk also
  says how much space is free and that the same command resumes."""
  named = [e.filename for e in errors.causes(error)
           if isinstance(e, OSError) and e.filename]
  if not named:  # orbax/TensorStore name the file in their text.
    named = re.findall(re.escape(workdir) + r"[^\s'\",:]*",
                       " ".join(str(e) for e in errors.causes(error)))
  # The output being written stands for its temporary (fileio.atomic_path's
  # '<output>.tmp-XXXXXXXX/<name>/...', orbax's '<step>.orbax-checkpoint-tmp').
  path = re.sub(r"(\.tmp-[A-Za-z0-9_]{8}/[^/]+|\.orbax-checkpoint-tmp[^/]*)"
                r"(/.*)?$", "", named[0] if named else workdir)
  if not errors.is_full_disk(error):
    return f"{path}: {error.strerror}"
  try:
    free = f"{shutil.disk_usage(workdir).free / 2**20:.1f} MiB free"
  except OSError:
    free = "free space unknown"
  return (f"{path}: {os.strerror(errno.ENOSPC)} ({free} on the workdir's "
          "filesystem); free some and run the same command again: it "
          "resumes")


class _FullDiskWithoutTraceback(logging_lib.Filter):
  """Keeps the log line of a writer's full disk, drops its traceback (orbax
  logs one per background thread; the run ends with one `error:` line)."""

  def filter(self, record: logging_lib.LogRecord) -> bool:
    if record.exc_info and record.exc_info[1] is not None and (
        errors.is_full_disk(record.exc_info[1])):
      record.exc_info, record.exc_text = None, None
    return True


def _drop_closed_loop_reports(unraisable) -> None:
  """sys.unraisablehook without orbax's noise after a failed restore.

  When orbax fails to restore (e.g. a truncated params file), reads still in
  flight later report into its closed asyncio loop; each would print a
  headless `RuntimeError: Event loop is closed` traceback after the single
  `error:` line. Everything else goes to the default hook.
  """
  value = unraisable.exc_value
  if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
    return
  sys.__unraisablehook__(unraisable)


def main(argv: list[str]) -> None:
  sys.unraisablehook = _drop_closed_loop_reports
  for handler in [logging.get_absl_handler()] + logging_lib.root.handlers:
    handler.addFilter(_FullDiskWithoutTraceback())
  if len(argv) > 1:
    errors.exit_with_error(f"unexpected arguments: {' '.join(argv[1:])}")
  config = _CONFIG.value
  workdir = os.path.abspath(_WORKDIR.value)
  config_file = _config_path(sys.argv).split(":", 1)[0]
  given = recorded_config.given_fields(sys.argv)
  try:
    for line in recorded_config.adopt(config, workdir, config_file, given):
      logging.info("config: %s, as an earlier run in this workdir set it "
                   "(%s)", line, recorded_config.SOURCE_FILE)
    # A plug-in kind imports from where it did at convert, whatever the cwd.
    kinds.add_module_root(load.recorded_module_root(
        workdir, kinds.kind_name(config.generator)))
    config_checks.check_values(config)
    multi_host = runtime.distributed_wanted(config)
    # Absolute: orbax and multi-host runs need it, and logs name real paths.
    plan = stages.plan(config, workdir, check_lock=not multi_host)
    config_checks.check_files(config, plan.running())
    runtime.initialize(config)
    config_checks.check_devices(config, plan.running(), jax.device_count())
    try:
      stages.execute(plan)
    finally:
      if os.path.isdir(workdir) and jax.process_index() == 0:
        recorded_config.record(workdir, config_file, given, plan.config_dict)
  except errors.UserError as e:
    logging.flush()
    errors.exit_with_error(str(e))
  except OSError as e:
    if e.errno not in _REFUSED_WRITES:
      raise
    logging.flush()
    errors.exit_with_error(_refused_write(e, workdir))
  except Exception as e:  # pylint: disable=broad-except
    # orbax/TensorStore and TensorBoard report a full disk in their own
    # exception types.
    if not errors.is_full_disk(e):
      raise
    logging.flush()
    errors.exit_with_error(_refused_write(e, workdir))
  except checkpointing.Preempted as e:  # Saved; exit status 143.
    logging.flush()
    print(f"stopped: {e}", file=sys.stderr)
    raise


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
