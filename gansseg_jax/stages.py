"""The stage list and the runner that plans, skips and records stages.

A stage is a function `(config, workdir) -> None` named by "module:function".
It reads only what earlier stages wrote into the workdir (its `inputs`) and
writes its `outputs` atomically. The runner:
  1. checks every selected name and that every stage it will run is built;
  2. compares the config with the one that made the finished stages (an
     incompatible change is an error unless `config.force`);
  3. checks each stage's inputs exist or will be made by an earlier stage;
  4. only then writes `config.json`, runs the stages in canonical order, skips
     those whose outputs exist for the same config, and records wall times.
A stage's hash covers the config sections it `reads`, the seed, and the hashes
of the stages whose outputs it reads (`after`), so an upstream change
invalidates everything downstream.
"""
import dataclasses
import importlib
import os
import time
from typing import Callable, Optional, Sequence

from absl import logging
import jax
import ml_collections

from gansseg_jax import errors
from gansseg_jax import fileio
from gansseg_jax import monitoring
from gansseg_jax import workdir as wd
from gansseg_jax.synth import inputs as synth_inputs

Paths = Callable[[ml_collections.ConfigDict], Sequence[str]]


def _fixed(*paths: str) -> Paths:
  return lambda config: paths


def _synth_inputs(config):
  """The generator and what mask synthesis reads (direction, embeddings, maps)."""
  return ("generator",) + synth_inputs.input_paths(config)


def _discover_inputs(config):
  """The generator, unless the candidates come from a file."""
  return () if config.directions.source == "file" else ("generator",)


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str
  target: Optional[str]  # "module:function"; None while not built yet.
  issue: int  # The issue that builds it (named in "not implemented" errors).
  reads: tuple[str, ...]  # Config sections (dotted) that shape its outputs.
  after: tuple[str, ...]  # Stages whose outputs it reads.
  inputs: Paths  # Workdir-relative paths it reads.
  outputs: Paths  # Workdir-relative paths it writes.

  def function(self) -> Callable[[ml_collections.ConfigDict, str], None]:
    module, name = self.target.split(":")
    return getattr(importlib.import_module(module), name)


STAGES: tuple[Stage, ...] = (
    Stage("convert", "gansseg_jax.convert.stage:run", 4, ("generator", "convert"), (),
          _fixed(), _fixed("generator")),
    Stage("embed", "gansseg_jax.convert.embed:run", 4, ("embed",), ("convert",),
          _fixed(), _fixed("embeddings.npy")),
    Stage("discover", "gansseg_jax.directions.stage:discover", 5,
          ("directions",), ("convert",), _discover_inputs,
          _fixed("directions.npy")),
    Stage("score", "gansseg_jax.directions.stage:score", 5, ("score",),
          ("discover",), _fixed("generator", "directions.npy"),
          _fixed("ranking.csv", "ranking.md", "strips", "bg_direction.npy",
                 "bg_affine.npy")),
    Stage("synth", "gansseg_jax.synth.export:run", 3, ("synth", "export"), ("score", "embed"),
          _synth_inputs, lambda config: (config.export.output_dir,)),
    Stage("train", "gansseg_jax.train.stage:run", 6, ("synth", "unet", "train"), ("score", "embed"),
          _synth_inputs, _fixed("unet")),
    Stage("eval", "gansseg_jax.eval.stage:evaluate", 7, ("eval", "synth.latents"), ("train",),
          _fixed("unet"), _fixed("eval.json", "eval.md")),
    Stage("segment", "gansseg_jax.eval.stage:segment", 7, ("segment", "eval"), ("train",),
          _fixed("unet"), lambda config: (config.segment.output_dir,)),
    Stage("report", "gansseg_jax.report.stage:run", 8, ("report",), ("score", "train", "eval"),
          _fixed(), _fixed("report.html", "report.md")),
)
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


def stage_hash(stage: Stage, config_dict: dict) -> str:
  """Hash of what shapes `stage`'s outputs (see module docstring)."""
  upstream = [stage_hash(BY_NAME[name], config_dict) for name in stage.after]
  own = {key: wd.lookup(config_dict, key) for key in ("seed",) + stage.reads}
  return wd.fingerprint({"own": own, "upstream": upstream})


def _relevant(stage: Stage, config_dict: dict) -> dict:
  """The config values a stage's hash covers, for naming a difference."""
  out = {key: wd.lookup(config_dict, key) for key in ("seed",) + stage.reads}
  for name in stage.after:
    out.update(_relevant(BY_NAME[name], config_dict))
  return out


def _stale_stages(workdir: str, config_dict: dict) -> list[Stage]:
  """Finished stages whose recorded hash differs from the current config's."""
  stale = []
  for stage in STAGES:
    marker = wd.read_marker(workdir, stage.name)
    if marker and marker.get("config_hash") != stage_hash(stage, config_dict):
      stale.append(stage)
  return stale


def _check_compatible(workdir: str, config_dict: dict, force: bool) -> list[Stage]:
  stale = _stale_stages(workdir, config_dict)
  if stale and not force:
    stage = stale[0]
    previous = wd.read_config(workdir) or {}
    change = wd.first_difference(_relevant(stage, previous),
                                 _relevant(stage, config_dict))
    config_path = os.path.join(workdir, wd.CONFIG_FILE)
    raise errors.UserError(
        f"{config_path}: stage '{stage.name}' was run with a different config "
        f"({change or 'unknown change'}); use a new --workdir or "
        "--config.force=True")
  return stale


def _outputs_exist(stage: Stage, config, workdir: str) -> bool:
  return all(os.path.exists(os.path.join(workdir, p))
             for p in stage.outputs(config))


def _plan_steps(stages: Sequence[Stage], config, workdir: str,
          config_dict: dict) -> list[tuple[Stage, bool]]:
  """[(stage, run?)]; raises if a stage to run is unbuilt or lacks inputs."""
  producers = {p: s.name for s in STAGES for p in s.outputs(config)}
  will_exist = set()
  plan = []
  for stage in stages:
    marker = wd.read_marker(workdir, stage.name)
    done = (not config.force and marker is not None
            and marker.get("config_hash") == stage_hash(stage, config_dict)
            and _outputs_exist(stage, config, workdir))
    if not done:
      if stage.target is None:
        raise errors.NotImplementedStageError(
            f"config.stages: stage '{stage.name}' is not implemented yet "
            f"(issue #{stage.issue}); remove it from config.stages")
      for path in stage.inputs(config):
        if path in will_exist or os.path.exists(os.path.join(workdir, path)):
          continue
        producer = producers.get(path, "?")
        raise errors.UserError(
            f"{os.path.join(workdir, path)}: missing; stage '{stage.name}' "
            f"needs it (written by stage '{producer}': add it to config.stages)")
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
  stale: tuple[Stage, ...]  # Finished stages invalidated by a forced change.


def plan(config: ml_collections.ConfigDict, workdir: str) -> Plan:
  """Checks names, config compatibility and inputs; writes nothing."""
  stages = selected(config)
  config_dict = wd.config_to_dict(config)
  stale = _check_compatible(workdir, config_dict, config.force)
  steps = _plan_steps(stages, config, workdir, config_dict)
  return Plan(config, workdir, config_dict, tuple(steps), tuple(stale))


def execute(plan_: Plan) -> None:
  """Writes config.json, then runs (or skips) each planned stage."""
  config, workdir = plan_.config, plan_.workdir
  is_writer = jax.process_index() == 0
  if is_writer:
    os.makedirs(workdir, exist_ok=True)
    for path in fileio.remove_temporaries(workdir):
      logging.info("removed %s (left by a killed run)", path)
    for stage in plan_.stale:
      wd.remove_marker(workdir, stage.name)
    wd.write_config(workdir, plan_.config_dict)

  for stage, must_run in plan_.steps:
    if not must_run:
      logging.info("stage %s: outputs exist for this config, skipped",
                   stage.name)
      continue
    logging.info("stage %s: running", stage.name)
    start = time.monotonic()
    stage.function()(config, workdir)
    seconds = time.monotonic() - start
    missing = [p for p in stage.outputs(config)
               if not os.path.exists(os.path.join(workdir, p))]
    if missing:
      raise RuntimeError(f"stage {stage.name} finished without writing "
                         f"{', '.join(missing)}")
    if is_writer:
      wd.write_marker(workdir, stage.name,
                      stage_hash(stage, plan_.config_dict), seconds)
    logging.info("stage %s: done in %s", stage.name,
                 monitoring.format_seconds(seconds))


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """`plan` then `execute`: the whole run of `config.stages` in `workdir`."""
  execute(plan(config, workdir))
