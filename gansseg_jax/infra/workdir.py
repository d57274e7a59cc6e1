"""The workdir's bookkeeping: the resolved config and per-stage done-markers.

Layout (W = --workdir):
  W/config.json           the resolved config of the latest run
  W/stages/<stage>.json   written when a stage finishes: its config hash, the
                          config values the hash covers, its wall time, its
                          output paths and the fingerprint (size, SHA-256) of
                          every file under them (gansseg_jax/infra/
                          fingerprints.py); a stage is skipped when its marker
                          has the hash of the current config and its outputs
                          exist.
  W/stages/<stage>.started.json
                          written when a stage starts, removed when it
                          finishes: the hash its resumable state (checkpoints)
                          was made with, so only the same config resumes it.
  W/.lock                 the run's lock (gansseg_jax/run/lock.py).
Each record is sealed: its field `sha256` is the SHA-256 of the rest of its
JSON (`seal_of`), so an edited record is found, not trusted; a record of
another shape is one error line. Nothing in W may be a symbolic link
(`check_no_symlinks`).
"""
import hashlib
import json
import os
from typing import Any, Iterable, Optional, Sequence

import ml_collections

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio

CONFIG_FILE = "config.json"
MARKER_DIR = "stages"


def check_usable(workdir: str) -> None:
  """A UserError unless `workdir` is (or can be made) a writable folder.

  Reads only: an existing workdir must be a writable folder; a missing one
  needs a writable folder as its nearest existing ancestor.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.UserError(f"--workdir: {workdir} exists and is not a folder")
  existing = workdir
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise errors.UserError(f"--workdir: {existing} is not a folder, so "
                           f"{workdir} cannot be created")
  if os.access(existing, os.W_OK | os.X_OK):
    return
  if existing == workdir:
    raise errors.UserError(f"--workdir: {workdir} is not writable (read-only "
                           "file system or no permission)")
  raise errors.UserError(f"--workdir: {workdir} cannot be created ({existing} "
                         "is not writable: read-only file system or no "
                         "permission)")


def check_no_symlinks(workdir: str) -> None:
  """A UserError naming the first symbolic link inside `workdir`.

  Everything a run reads or writes lies inside the workdir; a link in it
  would send a read or a write (the lock, metrics.jsonl, a result)
  elsewhere. The workdir itself may be a link.
  """
  if not os.path.isdir(workdir):
    return
  for parent, dirs, files in os.walk(workdir):
    dirs.sort()
    for name in sorted(dirs) + sorted(files):
      path = os.path.join(parent, name)
      if os.path.islink(path):
        raise errors.UserError(
            f"{path}: a symbolic link (to {os.readlink(path)}); a workdir "
            "holds only its own files: remove the link")


def config_to_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """A JSON-compatible copy of the config (tuples become lists)."""
  return json.loads(config.to_json_best_effort(sort_keys=True))


def lookup(tree: dict[str, Any], dotted: str) -> Any:
  """`tree['a']['b']` for 'a.b'; None when a part is missing."""
  node = tree
  for part in dotted.split("."):
    if not isinstance(node, dict) or part not in node:
      return None
    node = node[part]
  return node


def fingerprint(values: Any) -> str:
  """A stable short hash of JSON-compatible values."""
  text = json.dumps(values, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def first_difference(old: Any, new: Any, prefix: str = "") -> Optional[str]:
  """'path: old -> new' for the first leaf where two config trees differ."""
  if isinstance(old, dict) and isinstance(new, dict):
    for key in sorted(set(old) | set(new)):
      found = first_difference(old.get(key), new.get(key),
                               f"{prefix}.{key}" if prefix else key)
      if found:
        return found
    return None
  if old != new:
    return f"{prefix}: {old!r} -> {new!r}"
  return None


def read_config(workdir: str) -> Optional[dict[str, Any]]:
  """The config.json a previous run left in `workdir`, or None."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    raise errors.UserError(f"{path}: unreadable ({e}); use a new --workdir")
  if not isinstance(data, dict):
    raise errors.UserError(f"{path}: not a config (expected a JSON object)")
  return data


def write_config(workdir: str, config_dict: Optional[dict[str, Any]]) -> None:
  """Records the resolved config (untouched when the same bytes; None
  removes it). The old file is not parsed: whatever it holds is replaced."""
  path = os.path.join(workdir, CONFIG_FILE)
  if config_dict is None:
    if os.path.exists(path):
      os.remove(path)
    return
  text = json.dumps(config_dict, indent=2, sort_keys=True) + "\n"
  try:
    if fileio.read_text(path) == text:
      return
  except (OSError, ValueError):
    pass  # Absent or unreadable: written anew.
  fileio.write_text(path, text)


def marker_path(workdir: str, stage: str) -> str:
  return os.path.join(workdir, MARKER_DIR, f"{stage}.json")


def started_path(workdir: str, stage: str) -> str:
  return os.path.join(workdir, MARKER_DIR, f"{stage}.started.json")


def read_marker(workdir: str, stage: str) -> Optional[dict[str, Any]]:
  return _read_record(marker_path(workdir, stage), stage)


def read_started(workdir: str, stage: str) -> Optional[dict[str, Any]]:
  return _read_record(started_path(workdir, stage), stage)


SEAL = "sha256"  # A record's field: the SHA-256 of the rest of it.
# The fields of a marker (or started record) and the JSON types they hold.
_RECORD_FIELDS = {"config_hash": str, "config": dict, "seconds": (int, float),
                  "outputs": list, "files": dict, "watched": dict,
                  SEAL: str}


def record_shape_problem(record: Any) -> Optional[str]:
  """What is wrong with the shape of a marker, or None when it is sound.

  Only shapes: a JSON object whose known fields hold their types, and
  `files` entries of [size, hex digest].
  """
  if not isinstance(record, dict):
    return f"a JSON {type(record).__name__}, not an object"
  for field, kind in _RECORD_FIELDS.items():
    if field in record and (not isinstance(record[field], kind)
                            or isinstance(record[field], bool)):
      return f"field {field!r} holds {json.dumps(record[field])[:40]}"
  if not all(isinstance(p, str) for p in record.get("outputs", ())):
    return "field 'outputs' holds a name that is not a string"
  for name, entry in record.get("files", {}).items():
    if not (isinstance(entry, list) and len(entry) == 2
            and isinstance(entry[0], int) and isinstance(entry[1], str)):
      return f"field 'files' holds {json.dumps(entry)[:40]} for {name}"
  return None


def _read_record(path: str, stage: str) -> Optional[dict[str, Any]]:
  if not os.path.lexists(path):
    return None
  fix = (f"delete it and re-run stage '{stage}' with "
         f"--config.stages={stage} --config.force=True")
  try:
    record = json.loads(fileio.read_text(path))
  except (OSError, ValueError) as e:
    raise errors.UserError(f"{path}: unreadable ({fileio.why(e)}); {fix}")
  problem = record_shape_problem(record)
  if problem:
    raise errors.UserError(f"{path}: not a stage record ({problem}); {fix}")
  if SEAL in record and record[SEAL] != seal_of(record):
    raise errors.UserError(f"{path}: changed since it was written (its "
                           f"{SEAL} does not match); {fix}")
  return record


def seal_of(record: dict[str, Any]) -> str:
  """The SHA-256 of a record's JSON without its seal."""
  rest = {k: v for k, v in record.items() if k != SEAL}
  return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def write_sealed(path: str, record: dict[str, Any]) -> None:
  """Writes the JSON `record` with its seal (`seal_of`)."""
  fileio.write_json(path, {**record, SEAL: seal_of(record)})


def write_marker(workdir: str, stage: str, config_hash: str,
                 config_values: dict[str, Any], seconds: float,
                 outputs: Sequence[str] = (),
                 files: Optional[dict[str, list]] = None,
                 watched: Optional[dict[str, Any]] = None) -> None:
  """The done-marker; `files`: fingerprints.record of the `outputs`;
  `watched`: the fingerprints of what it read outside the workdir.

  Without `files` it is a marker as made before fingerprints were recorded.
  """
  marker = {"config_hash": config_hash, "config": config_values,
            "seconds": seconds}
  if files is not None:
    marker.update(outputs=list(outputs), files=files)
  if watched:
    marker["watched"] = watched
  write_sealed(marker_path(workdir, stage), marker)


def write_started(workdir: str, stage: str, config_hash: str,
                  config_values: dict[str, Any]) -> None:
  write_sealed(started_path(workdir, stage),
               {"config_hash": config_hash, "config": config_values})


def remove_file(path: str) -> None:
  if os.path.exists(path):
    os.remove(path)


def snapshot(paths: Iterable[str]) -> dict[str, Optional[bytes]]:
  """The bytes of each file (None if absent), for `restore`."""
  out = {}
  for path in paths:
    try:
      with open(path, "rb") as f:
        out[path] = f.read()
    except FileNotFoundError:
      out[path] = None
  return out


def restore(saved: dict[str, Optional[bytes]]) -> None:
  """Puts back the files a `snapshot` saw (removing those that were absent)."""
  for path, data in saved.items():
    if data is None:
      remove_file(path)
    else:
      fileio.write_bytes(path, data)


def stage_seconds(workdir: str) -> dict[str, float]:
  """Wall time of every finished stage, in the order they finished (their
  markers' modification times), for the report."""
  folder = os.path.join(workdir, MARKER_DIR)
  names = [n[:-len(".json")] for n in (
      os.listdir(folder) if os.path.isdir(folder) else ())
           if n.endswith(".json") and not n.endswith(".started.json")]
  out = {}
  for stage in sorted(names, key=lambda n: os.stat(
      marker_path(workdir, n)).st_mtime_ns):
    marker = read_marker(workdir, stage)
    if marker is not None:
      out[stage] = float(marker["seconds"])
  return out
