"""Stage `convert`: the generator (and, for BigBiGAN, the encoder) into W.

OUTPUTS (W = workdir):
  W/generator/   spec.json + orbax params (gansseg_jax/convert/load.py), always
  W/encoder/     kind 'biggan' from TF-Hub only (gansseg_jax/generators/
                 bigbigan.py)
INPUTS: none from the workdir. config.generator.arch names the generator kind
  (generator_interface/kinds.py: a built-in short name or
  'package.module:name');
  the kind reads config.generator.source (one of the kind's sources) and the
  checkpoint fields it needs (handle, torch_checkpoint, checkpoint, ...). The
  kind's converted params are checked against the network it builds from its
  own spec (every parameter, with its shape) before anything is written.
"""
import os
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import load
from gansseg_jax.generator_interface import kinds


def require_single_host(stage: str) -> None:
  if jax.process_count() > 1:
    raise errors.UserError(
        f"config.stages: run '{stage}' on one host (a one-time job); later "
        "stages read its outputs on every host")


def _check_structure(params: Any, like: Any, what: str) -> None:
  """Every parameter of the architecture filled, with its shape."""
  got = {jax.tree_util.keystr(p): np.shape(v)
         for p, v in jax.tree_util.tree_leaves_with_path(params)}
  want = {jax.tree_util.keystr(p): tuple(v.shape)
          for p, v in jax.tree_util.tree_leaves_with_path(like)}
  if got != want:
    diff = sorted(set(got.items()) ^ set(want.items()))[:3]
    raise RuntimeError(f"{what}: converted params do not fit the "
                       f"architecture, e.g. {diff}")


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes W/generator (and W/encoder) with config.generator.arch's kind."""
  require_single_host("convert")
  arch = kinds.kind_name(config.generator)
  kind = kinds.resolve(arch)
  options = kinds.build_options(config.generator)
  kinds.check_options(kind, options)
  converted = kind.convert(config, workdir)
  path = os.path.join(workdir, load.GENERATOR_DIR)
  description = {"arch": arch, "spec": converted.spec,
                 "source": config.generator.source,
                 "conversion": converted.record}
  root = kinds.module_root(arch)
  if root is not None:
    description[load.MODULE_ROOT] = root
  network = load.build_network(config, description, path)
  _check_structure(converted.params, network.abstract_params,
                   f"config.generator.arch ({arch})")
  load.save(path, description, converted.params)
  logging.info("Generator written to %s", path)
