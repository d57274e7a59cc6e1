"""Content fingerprints of the files a stage writes, and their checks.

A fingerprint is, per file, its size and the SHA-256 of its bytes. It is
recorded when a file is finished (a stage's outputs in its done-marker, a
checkpoint when its save completes) and checked before the file is read
again, so a flipped bit, a truncation, a deleted or an added file, or a file
swapped in from another run is found and named instead of being loaded.

SHA-256 (hashlib): in the standard library, computed with the CPU's SHA
instructions (x86 SHA-NI, ARMv8 SHA2) where present, which makes it faster
than BLAKE2b there (experiments/bench_integrity.py); a cryptographic hash, so
two different files never share a fingerprint by accident.

`record(root, paths)` -> {relative file path: [bytes, sha256 hex]} of every
file under each path (folders are walked; orbax checkpoints are folders).
`first_problem(root, paths, recorded)` -> (path, what is wrong) or None.
"""
import hashlib
import os
from typing import Iterable, Optional

ALGORITHM = "sha256"
Recorded = dict[str, list]  # {relative path: [size in bytes, hex digest]}


def file_digest(path: str) -> str:
  """The SHA-256 of the file's bytes (hex), read in large buffered blocks."""
  with open(path, "rb") as f:
    return hashlib.file_digest(f, ALGORITHM).hexdigest()


def _files(root: str, path: str) -> list[str]:
  """`path` (relative to `root`) if a file, else every file under it, sorted."""
  full = os.path.join(root, path)
  if not os.path.isdir(full):
    return [path] if os.path.exists(full) else []
  found = []
  for parent, dirs, files in os.walk(full):
    dirs.sort()
    inside = os.path.relpath(parent, full)
    found.extend(os.path.normpath(os.path.join(path, inside, name))
                 for name in sorted(files))
  return found


def record(root: str, paths: Iterable[str]) -> Recorded:
  """{file: [size, digest]} of every file under each of `paths` (in `root`)."""
  out = {}
  for path in paths:
    for name in _files(root, path):
      full = os.path.join(root, name)
      out[name] = [os.path.getsize(full), file_digest(full)]
  return out


def _covered(name: str, path: str) -> bool:
  """Whether the recorded `name` is `path` or lies under the folder `path`."""
  return name == path or name.startswith(path.rstrip("/") + "/")


def first_problem(root: str, paths: Iterable[str],
                  recorded: Recorded) -> Optional[tuple[str, str]]:
  """(file, what is wrong) for the first file under `paths` that differs.

  Only files under `paths` count, on both sides: a recorded one that is
  missing, one that is there but was not recorded, a size that differs
  (a truncated file says so) and, sizes equal, a digest that differs.
  Digests are computed only for files whose sizes match.
  """
  for path in paths:
    expected = {name: entry for name, entry in recorded.items()
                if _covered(name, path)}
    present = _files(root, path)
    for name in sorted(set(expected) - set(present)):
      return name, "missing"
    for name in present:
      if name not in expected:
        return name, "not among the files it wrote"
    for name in present:
      size, digest = expected[name]
      actual = os.path.getsize(os.path.join(root, name))
      if actual < size:
        return name, f"truncated ({actual} of {size} bytes)"
      if actual != size:
        return name, f"{actual} bytes, {size} written"
    for name in present:
      if file_digest(os.path.join(root, name)) != expected[name][1]:
        return name, "content differs from what was written"
  return None
