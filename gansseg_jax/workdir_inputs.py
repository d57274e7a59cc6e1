"""Checks of the files an earlier run left in the workdir, while planning.

A stage that will run reads files earlier stages wrote (`Stage.inputs`).
When such a file is already there and no stage of this run remakes it, it is
checked here, with the same loaders the stages use, so that a wrong shape or
a non-finite value stops the run before anything is written. Only cheap
checks: the generator's spec.json (not its params; a damaged params folder
is found when the stage loads it, and the runner then puts the workdir's
records back as they were).
"""
import os

import ml_collections

from gansseg_jax.convert import load as convert_load
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
