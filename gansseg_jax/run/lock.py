"""One run per workdir: an OS file lock on W/.lock, released even on a crash.

`WorkdirLock` takes an exclusive `fcntl.flock` on W/.lock for the whole run
and writes the holder's pid and host into it. The kernel drops the lock when
the process ends for any reason (exit, exception, SIGKILL), so a crashed run
never blocks the next one; the file itself stays (an empty or stale holder
line in it means nothing without the lock). A second run on the same workdir
fails at once with one line naming the holder.

flock is per host on network filesystems that do not forward it; on a shared
workdir of a multi-host run only process 0 takes the lock.
"""
import errno
import fcntl
import json
import os
import socket
import stat
from typing import Optional

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio

LOCK_FILE = ".lock"


def _path(workdir: str) -> str:
  return os.path.join(workdir, LOCK_FILE)


def _busy_error(workdir: str, fd: int) -> errors.UserError:
  """The error naming the holder recorded in the lock file."""
  os.lseek(fd, 0, os.SEEK_SET)
  try:
    holder = json.loads(os.read(fd, 4096).decode() or "{}")
  except ValueError:
    holder = {}
  who = (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
         if holder else "a process that has not written its pid yet")
  return errors.UserError(
      f"{workdir}: in use by another run ({who}); wait for it to end or use "
      "another --workdir")


def _open(workdir: str, flags: int) -> int:
  """The lock file's descriptor; a link or folder there is a UserError.

  Opened without following a symbolic link (a link would be truncated and
  written through), and only a regular file is accepted.
  """
  path = _path(workdir)
  try:
    fd = fileio.open_no_follow(path, flags)
  except OSError as e:
    if e.errno not in (errno.ELOOP, errno.EISDIR):
      raise
    fd = None
  if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
    return fd
  if fd is not None:
    os.close(fd)
  what = "a symbolic link" if os.path.islink(path) else "not a regular file"
  raise errors.UserError(f"{path}: {what}; the lock must be the workdir's "
                         "own file: remove it")


def _try_lock(fd: int, mode: int) -> bool:
  try:
    fcntl.flock(fd, mode | fcntl.LOCK_NB)
  except BlockingIOError:
    return False
  return True


def check_free(workdir: str) -> None:
  """Raises the holder's error if a run holds `workdir`; writes nothing.

  Planning calls it, so a second run stops before JAX starts; `WorkdirLock`
  decides for good (the holder may have started in between).
  """
  try:
    fd = _open(workdir, os.O_RDONLY)
  except FileNotFoundError:
    return
  try:
    if not _try_lock(fd, fcntl.LOCK_SH):
      raise _busy_error(workdir, fd)
  finally:
    os.close(fd)  # Also releases the shared lock.


class WorkdirLock:
  """`with WorkdirLock(W):` holds W/.lock; raises UserError if it is taken."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self._fd: Optional[int] = None
    self.created = False  # Whether this run made W/.lock.

  def __enter__(self) -> "WorkdirLock":
    self.created = not os.path.lexists(_path(self.workdir))
    fd = _open(self.workdir, os.O_RDWR | os.O_CREAT)
    if not _try_lock(fd, fcntl.LOCK_EX):
      try:
        raise _busy_error(self.workdir, fd)
      finally:
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(),
                              "host": socket.gethostname()}).encode(), 0)
    self._fd = fd
    return self

  def __exit__(self, exc_type, *exc) -> None:
    """Releases the lock; a run that failed deletes W/.lock if it made it
    (still holding it), so a refused run leaves a fresh workdir as it was."""
    if (self.created and exc_type is not None
        and issubclass(exc_type, Exception)):
      os.remove(_path(self.workdir))
    os.ftruncate(self._fd, 0)
    os.close(self._fd)  # Releases the lock.
    self._fd = None
