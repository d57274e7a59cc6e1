"""Checks of the files an earlier run left in the workdir, while planning.

A stage that will run reads files earlier stages wrote (`Stage.inputs`).
When such a file is already there and no stage of this run remakes it, it is
checked here, with the same loaders the stages use, so that a wrong shape or
a non-finite value stops the run before anything is written. Only cheap
checks: the generator's spec.json (not its params: their bytes are what the
fingerprints below cover; a params folder that matches them but does not fit
the config is found when the stage loads it, and the runner then puts the
workdir's records back as they were).

Before those checks, `verify` compares every file under such a path with
the fingerprints its stage recorded in its done-marker (sizes, SHA-256;
gansseg_jax/infra/fingerprints.py): a changed, truncated, missing or added
file, or one from another run, is an error naming the file, the stage that
wrote it and the command that remakes it. A marker made before fingerprints
were recorded, or a missing marker whose stage's outputs are there, is an
error too: those files cannot be verified (re-running that stage with
--config.force=True records them).
"""
import os
from typing import Sequence

import ml_collections

from gansseg_jax.infra import artifacts
from gansseg_jax.infra import errors
from gansseg_jax.infra import workdir as wd
from gansseg_jax.convert import load as convert_load
from gansseg_jax.infra import fingerprints
from gansseg_jax.synth import inputs as synth_inputs
from gansseg_jax.synth import latents


def _generator(config, path: str) -> None:
  convert_load.build_network(config, convert_load.read_description(path),
                             path)


def _direction(config, path: str) -> None:
  synth_inputs.load_direction(os.path.dirname(path), config.generator.z_dim)


def _affine(config, path: str) -> None:
  del config
  synth_inputs.load_affine_maps(os.path.dirname(path))


def _embeddings(config, path: str) -> None:
  latents.load_embeddings(path, config.generator.z_dim)


CHECKS = {
    convert_load.GENERATOR_DIR: _generator,
    artifacts.BG_DIRECTION: _direction,
    artifacts.BG_AFFINE: _affine,
    artifacts.EMBEDDINGS: _embeddings,
}


def check(config: ml_collections.ConfigDict, workdir: str,
          relative_path: str) -> None:
  """UserError naming the file when `relative_path` cannot serve as input."""
  checker = CHECKS.get(relative_path)
  if checker is not None:
    checker(config, os.path.join(workdir, relative_path))


def _command(stage: str) -> str:
  return f"--config.stages={stage} --config.force=True"


def verify(workdir: str, paths: Sequence[str], stage: str) -> None:
  """UserError naming the first file under `paths` not as `stage` wrote it.

  `stage` is the stage whose outputs hold `paths`. A path that is there
  while `stage`'s marker is missing, or a marker without fingerprints, is
  unverifiable: an error too, naming the command that remakes it.
  """
  marker = wd.read_marker(workdir, stage)
  present = [p for p in paths if os.path.lexists(os.path.join(workdir, p))]
  if marker is None:
    if present:
      raise errors.UserError(
          f"{os.path.join(workdir, present[0])}: cannot be verified: "
          f"{wd.marker_path(workdir, stage)}, the record of stage '{stage}' "
          f"that writes it, is missing; remake it with {_command(stage)}")
    return
  if "files" not in marker:
    raise errors.UserError(
        f"{wd.marker_path(workdir, stage)}: records no fingerprints of the "
        f"files stage '{stage}' wrote (made before they were recorded, or "
        f"edited), so its outputs cannot be verified; remake them with "
        f"{_command(stage)}")
  problem = fingerprints.first_problem(workdir, paths, marker["files"])
  if problem:
    name, what = problem
    raise errors.UserError(
        f"{os.path.join(workdir, name)}: {what} (written by stage "
        f"'{stage}'); remake it with {_command(stage)}")


def verify_outputs(workdir: str, stage: str, outputs: Sequence[str]) -> None:
  """`verify` of every output `stage` recorded, or else of its `outputs`."""
  marker = wd.read_marker(workdir, stage)
  verify(workdir, marker.get("outputs", outputs) if marker else outputs,
         stage)
