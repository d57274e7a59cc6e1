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
  """Records the resolved config (untouched when the same; None removes it)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if config_dict is None:
    if os.path.exists(path):
      os.remove(path)
  elif read_config(workdir) != config_dict:
    fileio.write_json(path, config_dict)


def marker_path(workdir: str, stage: str) -> str:
  return os.path.join(workdir, MARKER_DIR, f"{stage}.json")


def started_path(workdir: str, stage: str) -> str:
  return os.path.join(workdir, MARKER_DIR, f"{stage}.started.json")


def read_marker(workdir: str, stage: str) -> Optional[dict[str, Any]]:
  return _read_record(marker_path(workdir, stage), stage)


def read_started(workdir: str, stage: str) -> Optional[dict[str, Any]]:
  return _read_record(started_path(workdir, stage), stage)


def _read_record(path: str, stage: str) -> Optional[dict[str, Any]]:
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise errors.UserError(f"{path}: unreadable ({e}); delete it to re-run "
                           f"stage '{stage}'")


def write_marker(workdir: str, stage: str, config_hash: str,
                 config_values: dict[str, Any], seconds: float,
                 outputs: Sequence[str] = (),
                 files: Optional[dict[str, list]] = None) -> None:
  """The done-marker; `files`: fingerprints.record of the `outputs`.

  Without `files` it is a marker as made before fingerprints were recorded.
  """
  marker = {"config_hash": config_hash, "config": config_values,
            "seconds": seconds}
  if files is not None:
    marker.update(outputs=list(outputs), files=files)
  fileio.write_json(marker_path(workdir, stage), marker)


def write_started(workdir: str, stage: str, config_hash: str,
                  config_values: dict[str, Any]) -> None:
  fileio.write_json(started_path(workdir, stage),
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


def stage_seconds(workdir: str, stages: Iterable[str]) -> dict[str, float]:
  """Wall time of every finished stage, for the report."""
  out = {}
  for stage in stages:
    marker = read_marker(workdir, stage)
    if marker is not None:
      out[stage] = float(marker["seconds"])
  return out
