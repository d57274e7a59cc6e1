"""Faults planted inside a run, for benchmarks/faults.py and tests/test_faults.py.

A child process calls `install()` before it runs a stage; the environment
variable GANSSEG_FAULT then names one fault, `<kind>:<arg>`:

  first:<s>     SIGKILL <s> seconds after a stage's loop starts (its first
                step is compiling or loading from the compilation cache);
  step:<n>      SIGKILL once a loop (train, discover, embed) has finished
                step <n> (mid-interval when n is not a log/checkpoint step);
  save:<n>      SIGKILL just after the checkpoint of step <n> started its
                asynchronous write (the write is in flight);
  replace:<name>:<k>  SIGKILL at the k-th atomic rename onto a path whose
                last component starts with <name>, before the rename (the
                temporary file or folder is complete and left behind);
  enospc:<name>:<k>  the same rename raises OSError(ENOSPC) instead: the disk
                filled up while that file was written.
SIGTERM comes from outside (the test or benchmark that started the child).

`leftovers(workdir)` lists what a killed writer left that a finished run
must not keep; `digests(workdir, names)` fingerprints outputs for a
bit-for-bit comparison (orbax folders by their restored arrays, since their
metadata holds timestamps).
"""
import errno
import hashlib
import os
import signal
import threading

ENV = "GANSSEG_FAULT"


def _die():
  os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
  """Plants the fault named by $GANSSEG_FAULT (nothing when it is unset)."""
  fault = os.environ.get(ENV, "")
  if not fault:
    return
  kind, _, arg = fault.partition(":")
  # pylint: disable=g-import-not-at-top
  from gansseg_jax.infra import monitoring
  from gansseg_jax.infra import checkpointing
  # pylint: enable=g-import-not-at-top
  if kind == "first":
    original_init = monitoring.Progress.__init__

    def init(self, *args, **kwargs):
      original_init(self, *args, **kwargs)
      threading.Timer(float(arg), _die).start()
    monitoring.Progress.__init__ = init
  elif kind == "step":
    original_update = monitoring.Progress.update

    def update(self, done):
      original_update(self, done)
      if done == int(arg):
        _die()
    monitoring.Progress.update = update
  elif kind == "save":
    original_save = checkpointing.StepCheckpoints.save

    def save(self, step, state, force=False):
      original_save(self, step, state, force)
      if step == int(arg):
        _die()
    checkpointing.StepCheckpoints.save = save
  elif kind in ("replace", "enospc"):
    name, _, count = arg.partition(":")
    original_replace = os.replace
    seen = [0]

    def replace(src, dst, **kwargs):
      if os.path.basename(os.fspath(dst)).startswith(name):
        seen[0] += 1
        if seen[0] == int(count):
          if kind == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)
          _die()
      return original_replace(src, dst, **kwargs)
    os.replace = replace
  else:
    raise ValueError(f"{ENV}: unknown fault {fault!r}")


def leftovers(workdir: str) -> list[str]:
  """Temporary entries under `workdir` (atomic writes and orbax's)."""
  from gansseg_jax.infra import fileio  # pylint: disable=g-import-not-at-top
  found = []
  for parent, dirs, files in os.walk(workdir):
    found += [os.path.relpath(os.path.join(parent, n), workdir)
              for n in dirs + files if fileio.is_temporary(n)]
  return sorted(found)


def _orbax_digests(path: str) -> dict[str, str]:
  """{leaf path: sha256 of dtype, shape and bytes} of an orbax folder."""
  # pylint: disable=g-import-not-at-top
  import jax
  import numpy as np
  import orbax.checkpoint as ocp
  # pylint: enable=g-import-not-at-top
  with ocp.StandardCheckpointer() as checkpointer:
    tree = checkpointer.restore(os.path.abspath(path))
  out = {}
  for keys, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    array = np.asarray(leaf)
    out[jax.tree_util.keystr(keys)] = hashlib.sha256(
        str((array.dtype, array.shape)).encode() + array.tobytes()).hexdigest()
  return out


def digests(workdir: str, names) -> dict[str, str]:
  """{output/part: sha256} of each named file or folder under `workdir`.

  A folder holding orbax's `_CHECKPOINT_METADATA` is read as arrays; any
  other folder file by file.
  """
  out = {}
  for name in names:
    path = os.path.join(workdir, name)
    if os.path.isdir(path) and os.path.exists(
        os.path.join(path, "_CHECKPOINT_METADATA")):
      out.update({f"{name}{k}": v for k, v in _orbax_digests(path).items()})
      continue
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(parent, f) for parent, _, files in os.walk(path)
        for f in files)
    for p in paths:
      with open(p, "rb") as fh:
        out[os.path.relpath(p, workdir)] = hashlib.sha256(
            fh.read()).hexdigest()
  return out
