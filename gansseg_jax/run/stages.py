"""The stage list and the runner that plans, skips and records stages.

A stage is a function `(config, workdir) -> None` named by "module:function".
It reads only what earlier stages wrote into the workdir (its `inputs`) and
writes its `outputs` atomically. The runner:
  1. checks the workdir is a writable folder no other run holds, every
     selected name, and that every stage it will run is built;
  2. compares the config with the one each finished stage recorded in its
     marker (an incompatible change is an error unless `config.force`), and
     with the one an unfinished stage's checkpoints were made with;
  3. checks each stage's inputs exist or will be made by an earlier stage;
  4. only then takes the workdir's lock (gansseg_jax/run/lock.py), writes
     `config.json`, runs the stages in canonical order, skips those whose
     outputs exist for the same config, and records wall times.
A stage's marker is removed when it starts and written when it finishes; a
run that fails leaves the markers of stages it did not start untouched. A
forced stage (`config.force`) starts from scratch: its checkpoints (`scratch`)
are moved aside and deleted once it finishes, or put back if it fails. When a
stage finishes, the markers of later stages made from its old outputs go.
A stage whose upstream stage ran in the same run runs too. A stage's hash
covers the config sections it `reads` (less the fields it `ignores`), the seed,
and the hashes of the stages whose outputs it reads (`after`), so an upstream
change invalidates everything downstream.
A finished stage's marker records the fingerprints of every file it wrote;
while planning, every input a stage will read and no stage of this run
remakes is compared with them, as is the checkpoint a resumed stage will
restore (docs/reliability.md, "Files are read only as they were written").
"""
import dataclasses
import os
import shutil
import time
from typing import Optional, Sequence

from absl import logging
import jax
import ml_collections

from gansseg_jax.convert import spec as convert_spec
from gansseg_jax.directions import spec as directions_spec
from gansseg_jax.embed import spec as embed_spec
from gansseg_jax.eval import spec as eval_spec
from gansseg_jax.export import spec as export_spec
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import fingerprints
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import sharding
from gansseg_jax.infra import stage_spec
from gansseg_jax.infra import workdir as wd
from gansseg_jax.report import spec as report_spec
from gansseg_jax.run import lock
from gansseg_jax.run import workdir_inputs
from gansseg_jax.synth import spec as synth_spec
from gansseg_jax.train import spec as train_spec

REPLACED = ".replaced"  # Suffix of a forced stage's old state until it finishes.
Stage = stage_spec.Stage

# Fields added after workdirs existed, with the value that behaves as before:
# left out of the hashes while they keep it, so older workdirs stay valid.
_ADDED_WITH_DEFAULTS = {
    "generator.checkpoint": "", "generator.latent_space": "z",
    "generator.num_classes": 1000, "generator.classes": "",
    "generator.truncation": 1.0, "generator.noise_mode": "const",
    "generator.matmul_precision": "highest", "eval.wctr.short_side": 0,
    "eval.wctr.min_short_side": 0,
    "generator.output_activation": "tanh",
    "score.orient_rule": "minority", "segment.backend": "jax",
    "synth.fill_holes": False,
    "generator.latent_prior": "", "generator.latent_bound": 1.0,
    "score.shift_units": "spread", "synth.shift_units": "spread",
    "train.photometric_augment": 0.0, "eval.real.photometric_augment": 0.0,
    "score.min_centre": 0.0,
}


# Every stage, declared by its own package, in canonical order.
STAGES: tuple[Stage, ...] = (
    convert_spec.STAGES + embed_spec.STAGES + directions_spec.STAGES
    + (synth_spec.STAGE, train_spec.STAGE, export_spec.STAGE)
    + eval_spec.STAGES + (report_spec.STAGE,))
BY_NAME = {stage.name: stage for stage in STAGES}


def selected(config: ml_collections.ConfigDict) -> list[Stage]:
  """The stages named in `config.stages`, in canonical order."""
  names = [n.strip() for n in str(config.stages).split(",") if n.strip()]
  if not names:
    raise errors.UserError("config.stages: empty; choose from "
                           + ",".join(BY_NAME))
  unknown = [n for n in names if n not in BY_NAME]
  if unknown:
    raise errors.UserError(
        f"config.stages: unknown stage {unknown[0]!r}; choose from "
        + ",".join(BY_NAME))
  return [stage for stage in STAGES if stage.name in names]


def _own_values(stage: Stage, config_dict: dict) -> dict:
  """The values of `reads` (and the seed), less the `ignores` fields."""
  own = {key: wd.lookup(config_dict, key) for key in ("seed",) + stage.reads}
  for dotted in stage.ignores:
    section, _, field = dotted.rpartition(".")
    if isinstance(own.get(section), dict):
      own[section] = {k: v for k, v in own[section].items() if k != field}
  for dotted, default in _ADDED_WITH_DEFAULTS.items():
    own = _without_default(own, dotted.split("."), default)
  return own


def _without_default(values: dict, path: list[str], default) -> dict:
  """`values` less the field at `path` (nested keys) where it is `default`;
  copies what it changes."""
  head, rest = path[0], path[1:]
  if not isinstance(values, dict) or head not in values:
    return values
  if rest:
    return {**values, head: _without_default(values[head], rest, default)}
  if values[head] != default:
    return values
  return {k: v for k, v in values.items() if k != head}


def stage_hash(stage: Stage, config_dict: dict) -> str:
  """Hash of what shapes `stage`'s outputs (see module docstring)."""
  upstream = [stage_hash(BY_NAME[name], config_dict) for name in stage.after]
  own = _own_values(stage, config_dict)
  return wd.fingerprint({"own": own, "upstream": upstream})


def _relevant(stage: Stage, config_dict: dict) -> dict:
  """The config values a stage's hash covers, for naming a difference."""
  out = _own_values(stage, config_dict)
  for name in stage.after:
    out.update(_relevant(BY_NAME[name], config_dict))
  return out


def _recorded_values(record: dict, workdir: str, stage: Stage) -> dict:
  """The config values a marker records (older markers: config.json's)."""
  if isinstance(record.get("config"), dict):
    return record["config"]
  return _relevant(stage, wd.read_config(workdir) or {})


def _different_config_error(
    path: str, stage: Stage, record: dict, workdir: str, config_dict: dict,
    what: str, fix: str = "use a new --workdir or --config.force=True"
) -> errors.UserError:
  change = wd.first_difference(_recorded_values(record, workdir, stage),
                               _relevant(stage, config_dict))
  return errors.UserError(
      f"{path}: stage '{stage.name}' {what} with a different config "
      f"({change or 'unknown change'}); {fix}")


def _reselected(stage: Stage, record: dict, workdir: str,
                config_dict: dict) -> bool:
  """True when a finished `segment` differs from this config only in the
  files it segments (eval_spec.SEGMENT_SELECTIONS): it runs again, not refused."""
  if stage.name != "segment":
    return False
  old, new = _recorded_values(record, workdir, stage), _relevant(stage,
                                                                  config_dict)
  for dotted in eval_spec.SEGMENT_SELECTIONS:
    old = _without_default(old, dotted.split("."), wd.lookup(old, dotted))
    new = _without_default(new, dotted.split("."), wd.lookup(new, dotted))
  return old == new


def _upstream(stage: Stage) -> set[str]:
  """Names of the stages whose outputs `stage` reads, directly or not."""
  names = set(stage.after)
  for name in stage.after:
    names |= _upstream(BY_NAME[name])
  return names


def _check_compatible(workdir: str, config_dict: dict, force: bool,
                      stages: Sequence[Stage]) -> None:
  """Finished stages whose recorded hash differs need `force`.

  Only the selected `stages` and those whose outputs they read count: a
  stage this run neither runs nor reads (say, `segment` of another folder
  before an `eval`) keeps its outputs and marker, whatever made them.
  Except, too, those downstream of a stage that a forced run started
  re-making under this very config and did not finish (killed or
  preempted): the same command without force resumes it, and they re-run
  after it. `force` re-makes the selected stages only: the finished stages
  they read from are checked all the same.
  """
  names = {s.name for s in stages}
  relevant = names.union(*(_upstream(s) for s in stages))
  if force:
    relevant -= names
  remaking = set()
  for stage in STAGES:
    started = wd.read_started(workdir, stage.name)
    if started and started.get("config_hash") == stage_hash(stage,
                                                            config_dict):
      remaking.add(stage.name)
  for stage in (s for s in STAGES if s.name in relevant):
    marker = wd.read_marker(workdir, stage.name)
    if (marker and marker.get("config_hash") != stage_hash(stage, config_dict)
        and not _upstream(stage) & remaking
        and not _reselected(stage, marker, workdir, config_dict)):
      raise _different_config_error(
          wd.marker_path(workdir, stage.name), stage, marker, workdir,
          config_dict, "was run",
          *([f"re-make it too: add '{stage.name}' to --config.stages, or "
             "use a new --workdir"] if force else []))


def _check_resumable(stage: Stage, config, workdir: str,
                     config_dict: dict) -> None:
  """An unfinished stage's checkpoints resume only under the same config."""
  started = wd.read_started(workdir, stage.name)
  left = _scratch_left(stage, config, workdir)
  if config.force or not left:
    return
  current = stage_hash(stage, config_dict)
  if started and started.get("config_hash") != current:
    raise _different_config_error(wd.started_path(workdir, stage.name), stage,
                                  started, workdir, config_dict,
                                  "was started (and left checkpoints)")
  for path in left:
    checkpointing.verify_latest(path)  # What the stage will restore.
    _check_saved_by(stage, path, started, current, workdir, config_dict)


def _check_saved_by(stage: Stage, path: str, started: Optional[dict],
                    current: str, workdir: str, config_dict: dict) -> None:
  """The latest checkpoint under `path` was saved by a run of this config.

  Its manifest records the run that saved it; one without that record
  (older, or killed as the save completed) resumes only while the stage's
  `.started.json` says this config started it.
  """
  steps = checkpointing.saved_steps(path)
  if not steps:
    return
  step_dir = os.path.join(path, str(steps[-1]))
  fix = (f"delete {path} to start over, or use --config.stages={stage.name} "
         "--config.force=True")
  saved_by = checkpointing.saved_by(path, steps[-1])
  if saved_by is not None and saved_by.get("config_hash") != current:
    raise _different_config_error(step_dir, stage, saved_by, workdir,
                                  config_dict, "saved this checkpoint", fix)
  if saved_by is None and not started:
    raise errors.UserError(
        f"{step_dir}: no record of the run that saved it (no "
        f"{os.path.basename(checkpointing.fingerprints_path(path, steps[-1]))}"
        f" with its config, no {wd.started_path(workdir, stage.name)}), so "
        f"it cannot be resumed; {fix}")


def _outputs_exist(stage: Stage, config, workdir: str) -> bool:
  return all(os.path.exists(os.path.join(workdir, p))
             for p in stage.outputs(config))


def _scratch_left(stage: Stage, config, workdir: str) -> list[str]:
  return [os.path.join(workdir, p) for p in stage.scratch(config)
          if os.path.exists(os.path.join(workdir, p))]


def _plan_steps(stages: Sequence[Stage], config, workdir: str,
          config_dict: dict) -> list[tuple[Stage, bool]]:
  """[(stage, run?)]; raises if a stage to run is unbuilt or lacks inputs.

  Inputs that are there and that no stage of this run remakes are verified
  against their producer's fingerprints, then checked (workdir_inputs).
  """
  producers = {p: s.name for s in STAGES for p in s.outputs(config)}
  will_exist, remade, running = set(), set(), set()
  plan = []
  for stage in stages:
    marker = wd.read_marker(workdir, stage.name)
    done = (not config.force and marker is not None
            and marker.get("config_hash") == stage_hash(stage, config_dict)
            and marker.get("watched", {}) == stage.watches(config)
            and _outputs_exist(stage, config, workdir))
    # As `_run_steps` does: a stage whose upstream runs re-runs.
    if not done or any(name in running for name in stage.after):
      _check_resumable(stage, config, workdir, config_dict)
      for path in stage.inputs(config):
        if path in remade:
          continue
        if os.path.exists(os.path.join(workdir, path)):
          if path in producers:
            workdir_inputs.verify(workdir, [path], producers[path])
          workdir_inputs.check(config, workdir, path)
          continue
        if path in will_exist:
          continue
        producer = producers.get(path, "?")
        raise errors.UserError(
            f"{os.path.join(workdir, path)}: missing; stage '{stage.name}' "
            f"needs it (written by stage '{producer}': add it to config.stages)")
      for name in stage.verifies:
        if name not in running:
          workdir_inputs.verify_outputs(workdir, name,
                                        BY_NAME[name].outputs(config))
      running.add(stage.name)
      remade.update(stage.outputs(config))
    will_exist.update(stage.outputs(config))
    plan.append((stage, not done))
  return plan


@dataclasses.dataclass(frozen=True)
class Plan:
  """What `execute` will do; made by `plan` before anything is written."""
  config: ml_collections.ConfigDict
  workdir: str
  config_dict: dict
  steps: tuple[tuple[Stage, bool], ...]  # (stage, must run?)

  def running(self) -> list[str]:
    """Names of the stages that will run (not skipped)."""
    return [stage.name for stage, must_run in self.steps if must_run]


def plan(config: ml_collections.ConfigDict, workdir: str,
         check_lock: bool = True) -> Plan:
  """Checks the workdir, names, config compatibility and inputs; writes nothing.

  `check_lock`: fail at once if another run holds the workdir (off on a
  multi-host run, where process 0 may already hold it).
  """
  wd.check_usable(workdir)
  wd.check_no_symlinks(workdir)
  if check_lock and os.path.isdir(workdir):
    lock.check_free(workdir)
  stages = selected(config)
  config_dict = wd.config_to_dict(config)
  _check_compatible(workdir, config_dict, config.force, stages)
  steps = _plan_steps(stages, config, workdir, config_dict)
  return Plan(config, workdir, config_dict, tuple(steps))


def execute(plan_: Plan) -> None:
  """Takes the workdir's lock, writes config.json, runs or skips each stage.

  Under the lock it first removes the temporaries a killed run left
  (fileio.remove_temporaries). A single-process run plans again under the
  lock (another run may have finished stages since). config.json is put
  back as it was when the run fails (bad input, a full disk) before any
  stage finished; the lock file and empty folders it made go too, so a
  refused run leaves a fresh workdir as it was.
  """
  if jax.process_index() != 0:
    _run_steps(plan_, is_writer=False)
    return
  folders = _folders(plan_.workdir)
  os.makedirs(plan_.workdir, exist_ok=True)
  try:
    with lock.WorkdirLock(plan_.workdir):
      # Under the lock no other run writes here: what a killed one left goes.
      for path in fileio.remove_temporaries(plan_.workdir):
        logging.info("removed %s (left by a killed run)", path)
      if jax.process_count() == 1:
        plan_ = plan(plan_.config, plan_.workdir, check_lock=False)
      _run_steps(plan_, is_writer=True)
  except Exception:
    # Refused or failed: the empty folders it made go (the lock file too).
    _remove_new_empty_folders(plan_.workdir, folders)
    raise


def _folders(workdir: str) -> set[str]:
  """Every folder under `workdir` (itself included), or none if absent."""
  return {parent for parent, _, _ in os.walk(workdir)}


def _remove_new_empty_folders(workdir: str, before: set[str]) -> None:
  """Removes the empty folders under `workdir` not in `before`, deepest first."""
  for folder in sorted(_folders(workdir) - before, key=len, reverse=True):
    if not os.listdir(folder):
      os.rmdir(folder)


def _run_steps(plan_: Plan, is_writer: bool) -> None:
  workdir = plan_.workdir
  saved_config = wd.snapshot([os.path.join(workdir, wd.CONFIG_FILE)])
  if is_writer:
    wd.write_config(workdir, plan_.config_dict)
  ran = set()
  try:
    for stage, must_run in plan_.steps:
      # A stage whose upstream ran in this run reads new outputs: run it too.
      if not (must_run or any(name in ran for name in stage.after)):
        logging.info("stage %s: outputs exist for this config, skipped",
                     stage.name)
        continue
      _run_stage(stage, plan_, is_writer)
      ran.add(stage.name)
  except Exception as e:
    # Bad input or a full disk: config.json as it was (not a crash: it says
    # what ran).
    if (is_writer and not ran and (isinstance(e, (errors.UserError, OSError))
                                   or errors.is_full_disk(e))):
      wd.restore(saved_config)
    raise


def _set_aside(stage: Stage, config, workdir: str) -> list[str]:
  """A forced stage's old resumable state, renamed to `<path>.replaced`."""
  moved = []
  for path in _scratch_left(stage, config, workdir):
    os.replace(path, path + REPLACED)
    moved.append(path)
  if moved:
    logging.info("stage %s: forced: starting from scratch; old state moved "
                 "to %s (deleted when the stage finishes)", stage.name,
                 ", ".join(p + REPLACED for p in moved))
  return moved


def _put_back(stage: Stage, config, workdir: str, moved: Sequence[str]) -> None:
  """Undoes `_set_aside`, dropping what the failed forced attempt wrote."""
  for path in (os.path.join(workdir, p) for p in stage.scratch(config)):
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)
    if path in moved:
      os.replace(path + REPLACED, path)


def _remove_replaced(stage: Stage, config, workdir: str) -> None:
  for path in stage.scratch(config):
    shutil.rmtree(os.path.join(workdir, path) + REPLACED, ignore_errors=True)


def _run_stage(stage: Stage, plan_: Plan, is_writer: bool) -> None:
  """Runs one stage; its marker changes only when it starts and finishes.

  A forced stage starts from scratch: its checkpoints are set aside, deleted
  when it finishes, put back (with its old markers) when it fails. A stage
  stopped by bad input (UserError) before it left checkpoints gets its old
  markers back; one that left checkpoints keeps the record of their config.
  """
  config, workdir, config_dict = plan_.config, plan_.workdir, plan_.config_dict
  config_hash = stage_hash(stage, config_dict)
  values = _relevant(stage, config_dict)
  records = [wd.marker_path(workdir, stage.name),
             wd.started_path(workdir, stage.name)]
  saved, moved = wd.snapshot(records), []
  if is_writer:
    _remove_replaced(stage, config, workdir)  # Left by a killed forced run.
    if config.force:
      moved = _set_aside(stage, config, workdir)
    if stage.scratch(config):
      wd.write_started(workdir, stage.name, config_hash, values)
    wd.remove_file(records[0])
  # Others must not read what is being set aside.
  sharding.sync_hosts(f"stage {stage.name} starts")
  logging.info("stage %s: running", stage.name)
  start = time.monotonic()
  try:
    stage.function()(config, workdir)
    missing = [p for p in stage.outputs(config)
               if not os.path.exists(os.path.join(workdir, p))]
    if missing:
      raise RuntimeError(f"stage {stage.name} finished without writing "
                         f"{', '.join(missing)}")
  except Exception as e:
    if is_writer and config.force:
      _put_back(stage, config, workdir, moved)
      wd.restore(saved)
    elif (is_writer and isinstance(e, errors.UserError)
          and not _scratch_left(stage, config, workdir)):
      wd.restore(saved)  # Bad input, no progress to keep: as it was.
    raise
  seconds = time.monotonic() - start
  if is_writer:
    outputs = stage.outputs(config)
    wd.write_marker(workdir, stage.name, config_hash, values, seconds,
                    outputs, fingerprints.record(workdir, outputs),
                    stage.watches(config))
    wd.remove_file(records[1])
    _remove_replaced(stage, config, workdir)
    _drop_invalidated(stage, config_dict, workdir)
  logging.info("stage %s: done in %s", stage.name,
               monitoring.format_seconds(seconds))


def _downstream(name: str) -> list[Stage]:
  """Stages that read `name`'s outputs, directly or through others."""
  found = []
  for stage in STAGES:
    if any(up == name or up in {s.name for s in found} for up in stage.after):
      found.append(stage)
  return found


def _drop_invalidated(stage: Stage, config_dict: dict, workdir: str) -> None:
  """Removes markers of downstream stages made from `stage`'s old outputs."""
  for later in _downstream(stage.name):
    marker = wd.read_marker(workdir, later.name)
    if marker and marker.get("config_hash") != stage_hash(later, config_dict):
      wd.remove_file(wd.marker_path(workdir, later.name))
      logging.info("stage %s: its outputs came from the old %s outputs; it "
                   "will re-run", later.name, stage.name)


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """`plan` then `execute`: the whole run of `config.stages` in `workdir`."""
  execute(plan(config, workdir))
