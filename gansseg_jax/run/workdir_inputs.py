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
were recorded has none: its files pass unverified, with one warning line
(re-running that stage with --config.force=True records them). A file no
stage's marker claims (put there by hand) is not verified.
"""
import os
from typing import Sequence

from absl import logging
import ml_collections

from gansseg_jax.infra import errors
from gansseg_jax.infra import workdir as wd
from gansseg_jax.convert import load as convert_load
from gansseg_jax.infra import fingerprints
from gansseg_jax.synth import inputs as synth_inputs
from gansseg_jax.synth import latents

_warned: set[str] = set()  # Markers without fingerprints already named.


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
    synth_inputs.DIRECTION_FILE: _direction,
    synth_inputs.AFFINE_FILE: _affine,
    synth_inputs.EMBEDDINGS_FILE: _embeddings,
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

  `stage` is the stage whose outputs hold `paths`; see the module docstring.
  """
  marker = wd.read_marker(workdir, stage)
  if marker is None:
    return
  if "files" not in marker:
    path = wd.marker_path(workdir, stage)
    if path not in _warned:
      _warned.add(path)
      logging.warning("%s: made before files were fingerprinted; its outputs "
                      "are read unverified (re-run it with %s to record "
                      "them)", path, _command(stage))
    return
  problem = fingerprints.first_problem(workdir, paths, marker["files"])
  if problem:
    name, what = problem
    raise errors.UserError(
        f"{os.path.join(workdir, name)}: {what} (written by stage "
        f"'{stage}'); remake it with {_command(stage)}")


def verify_outputs(workdir: str, stage: str) -> None:
  """`verify` of every output a finished `stage` recorded (none: nothing)."""
  marker = wd.read_marker(workdir, stage)
  if marker is not None:
    verify(workdir, marker.get("outputs", ()), stage)
