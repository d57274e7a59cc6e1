"""The workdir's bookkeeping: the resolved config and per-stage done-markers.

Layout (W = --workdir):
  W/config.json           the resolved config of the latest run
  W/stages/<stage>.json   written when a stage finishes: its config hash and
                          wall time; a stage is skipped when its marker has the
                          hash of the current config and its outputs exist.
"""
import hashlib
import json
import os
from typing import Any, Iterable, Optional

import ml_collections

from gansseg_jax import errors
from gansseg_jax import fileio

CONFIG_FILE = "config.json"
MARKER_DIR = "stages"


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


def write_config(workdir: str, config_dict: dict[str, Any]) -> None:
  """Records the resolved config (left untouched when it is the same)."""
  if read_config(workdir) != config_dict:
    fileio.write_json(os.path.join(workdir, CONFIG_FILE), config_dict)


def marker_path(workdir: str, stage: str) -> str:
  return os.path.join(workdir, MARKER_DIR, f"{stage}.json")


def read_marker(workdir: str, stage: str) -> Optional[dict[str, Any]]:
  path = marker_path(workdir, stage)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise errors.UserError(f"{path}: unreadable ({e}); delete it to re-run "
                           f"stage '{stage}'")


def write_marker(workdir: str, stage: str, config_hash: str,
                 seconds: float) -> None:
  fileio.write_json(marker_path(workdir, stage),
                    {"config_hash": config_hash, "seconds": seconds})


def remove_marker(workdir: str, stage: str) -> None:
  path = marker_path(workdir, stage)
  if os.path.exists(path):
    os.remove(path)


def stage_seconds(workdir: str, stages: Iterable[str]) -> dict[str, float]:
  """Wall time of every finished stage, for the report."""
  out = {}
  for stage in stages:
    marker = read_marker(workdir, stage)
    if marker is not None:
      out[stage] = float(marker["seconds"])
  return out
