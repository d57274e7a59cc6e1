"""Atomic writes: a file or a folder appears complete, or not at all.

Everything is written under a temporary name next to its destination and then
renamed (`os.replace`), which is atomic on POSIX filesystems. A crash leaves at
most a `*.tmp-*` entry behind, never a half-written output; the next run
removes such entries (`remove_temporaries`).
"""
import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from typing import Any, Iterator

import numpy as np

# A temporary entry of `atomic_path` (mkdtemp: the name, '.tmp-', 8 chars),
# or one of orbax (its own atomic writes: '<name>.orbax-checkpoint-tmp...').
_TEMPORARY = re.compile(r".+\.tmp-[A-Za-z0-9_]{8}$|.+\.orbax-checkpoint-tmp")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
  """Yields a temporary path; on success it is renamed to `path`.

  Works for files and for folders (create the folder at the yielded path).
  On failure the temporary entry is removed and `path` is left untouched.
  """
  parent = os.path.dirname(os.path.abspath(path)) or "."
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=os.path.basename(path) + ".tmp-", dir=parent)
  tmp_path = os.path.join(tmp, os.path.basename(path))
  try:
    yield tmp_path
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path)
    os.replace(tmp_path, path)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str, text: str) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      f.write(text)


def write_bytes(path: str, data: bytes) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)


def write_json(path: str, obj: Any) -> None:
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npy(path: str, array: np.ndarray) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      np.save(f, np.asarray(array))


def open_no_follow(path: str, flags: int, mode: int = 0o644) -> int:
  """`os.open` that refuses a symbolic link at `path` (OSError ELOOP), so
  nothing read or written through a workdir's file lands outside it."""
  return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def read_bytes(path: str) -> bytes:
  """The bytes of the regular file `path`; a symbolic link is refused."""
  fd = open_no_follow(path, os.O_RDONLY)
  with os.fdopen(fd, "rb") as f:
    return f.read()


def read_text(path: str) -> str:
  return read_bytes(path).decode()


def append_line(path: str, line: str) -> None:
  """Appends `line` (one write of whole bytes) to the regular file `path`.

  A symbolic link is refused. A write the filesystem cuts short (a full
  disk) is taken back, so the file never keeps half a line.
  """
  data = line.encode()
  fd = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
  try:
    size = os.fstat(fd).st_size
    try:
      written = os.write(fd, data)
      if written != len(data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    except OSError as e:
      os.ftruncate(fd, size)
      if e.filename is None:
        e.filename = path
      raise
  finally:
    os.close(fd)


def why(error: Exception) -> str:
  """A short reason for a failed read; a symbolic link says so."""
  if isinstance(error, OSError) and error.errno == errno.ELOOP:
    return "a symbolic link; the workdir's files must be its own"
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  return str(error)


def is_temporary(name: str) -> bool:
  """Whether a file or folder name is a temporary of an atomic write."""
  return _TEMPORARY.match(name) is not None


def remove_temporaries(root: str) -> list[str]:
  """Removes every temporary entry a killed writer left under `root`.

  Matches `atomic_path`'s and orbax's temporary names only. Call it only
  while no other process writes under `root` (the runner holds the
  workdir's lock). Returns the removed paths.
  """
  removed = []
  for parent, dirs, files in os.walk(root):
    for name in list(dirs) + files:
      if is_temporary(name):
        path = os.path.join(parent, name)
        if os.path.isdir(path) and not os.path.islink(path):
          shutil.rmtree(path, ignore_errors=True)
          dirs.remove(name)
        else:
          os.remove(path)
        removed.append(path)
  return removed
