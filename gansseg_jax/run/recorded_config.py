"""A later run in a workdir keeps the settings an earlier run set by hand.

  python -m gansseg_jax.main --config=configs/faces.py --workdir=W \
      --config.score.index=5                       # run 1
  python -m gansseg_jax.main --config=configs/faces.py --workdir=W \
      --config.stages=train,eval                   # run 2: score.index is 5

Each run records in W/config_source.json the config file it was started
with and the `--config.*` fields given on its command line (accumulated
over runs). A later run with the same config file takes every field that
an earlier run gave and this one does not from W/config.json (the resolved
config of the latest run), and logs it. A field given again with another
value is this run's: where a finished stage's outputs depend on it, the
stage runner refuses it with one line naming the field and both values
(gansseg_jax/run/stages.py); where it only selects what to evaluate or segment,
it is accepted. Per-run fields (config.stages, config.force, the
distributed and log sections) are never carried over. Another config file
starts afresh.
"""
import json
import os
from typing import Iterable

import ml_collections

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import workdir as wd

SOURCE_FILE = "config_source.json"
PER_RUN = ("stages", "force", "distributed.", "log.")


def given_fields(argv: Iterable[str]) -> list[str]:
  """The dotted fields of the `--config.a.b=value` flags in argv, in order."""
  fields = []
  for arg in argv:
    if arg.startswith("--config."):
      field = arg[len("--config."):].split("=", 1)[0]
      if field not in fields:
        fields.append(field)
  return fields


def _carried(field: str) -> bool:
  return not any(field == p or (p.endswith(".") and field.startswith(p))
                 for p in PER_RUN)


def _read_source(workdir: str) -> dict:
  path = os.path.join(workdir, SOURCE_FILE)
  if not os.path.exists(path):
    return {}
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    raise errors.UserError(f"{path}: unreadable ({e}); delete it (later "
                           "runs then use the config file's values)") from e
  return data if isinstance(data, dict) else {}


def adopt(config: ml_collections.ConfigDict, workdir: str, config_file: str,
          given: list[str]) -> list[str]:
  """Sets the earlier runs' hand-set fields that `given` lacks from
  W/config.json (same config file only); 'field = value' for each changed."""
  source = _read_source(workdir)
  recorded = wd.read_config(workdir)
  if (not recorded or source.get("config_file")
      != os.path.abspath(config_file)):
    return []
  adopted = []
  for field in source.get("fields", []):
    if field in given or not _carried(field):
      continue
    value = wd.lookup(recorded, field)
    parent, _, name = field.rpartition(".")
    node = config
    for part in parent.split(".") if parent else ():
      node = (node.get(part) if isinstance(node, ml_collections.ConfigDict)
              else None)
    if not isinstance(node, ml_collections.ConfigDict) or name not in node:
      continue  # A field this version no longer has.
    if wd.lookup(wd.config_to_dict(config), field) == value:
      continue
    # JSON has lists where the config has tuples (train.decay_steps).
    node[name] = (tuple(value) if isinstance(node[name], tuple)
                  and isinstance(value, list) else value)
    adopted.append(f"{field} = {value!r}")
  return adopted


def record(workdir: str, config_file: str, given: list[str],
           config_dict: dict) -> None:
  """Adds this run's hand-set fields to W/config_source.json, when the run
  left its config (`config_dict`) in W/config.json."""
  if wd.read_config(workdir) != config_dict:
    return
  source = _read_source(workdir)
  config_file = os.path.abspath(config_file)
  fields = (source.get("fields", [])
            if source.get("config_file") == config_file else [])
  fields = fields + [f for f in given if _carried(f) and f not in fields]
  new = {"config_file": config_file, "fields": fields}
  if new != source:
    fileio.write_json(os.path.join(workdir, SOURCE_FILE), new)
