"""The converted networks in the workdir: writing them, and loading them back.

  W/generator/spec.json   what to rebuild: {"arch": <config.generator.arch>,
                          "spec": {...}, "source": ..., "conversion": {...}},
                          and for a plug-in kind "module_root": the folder
                          its module was imported from
                          (demo workdirs written before the plug-in interface
                          have {"arch": "builtin", "info": {...}}: loaded too)
  W/generator/params/     orbax checkpoint of the params (a nested dict)
  W/encoder/spec.json     {"arch": "bigbigan_encoder", "spec": {...}}
  W/encoder/params/       orbax checkpoint (only when the encoder verified)

Every later stage calls `load_generator(config, workdir)`: the generator
kind comes from spec.json's "arch" (generator_interface/kinds.resolve), which
rebuilds the Network from its "spec"; the activation dtype, latent space and
classes come from config.generator (generator_interface/kinds.build_options).
"""
import json
import os
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gansseg_jax.infra import artifacts
from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.models import encoder
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent

GENERATOR_DIR = artifacts.GENERATOR
ENCODER_DIR = artifacts.ENCODER
SPEC_FILE = "spec.json"
PARAMS_DIR = "params"
MODULE_ROOT = "module_root"


def save(path: str, description: dict[str, Any], params: Any) -> None:
  """Writes `path`/spec.json and `path`/params atomically (whole folder)."""
  params = jax.tree.map(np.asarray, params)
  with fileio.atomic_path(path) as tmp:
    os.makedirs(tmp)
    fileio.write_json(os.path.join(tmp, SPEC_FILE), description)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(os.path.join(tmp, PARAMS_DIR)), params)
    checkpointer.wait_until_finished()
    checkpointer.close()


def read_description(path: str) -> dict[str, Any]:
  spec_path = os.path.join(path, SPEC_FILE)
  try:
    with open(spec_path) as f:
      return json.load(f)
  except FileNotFoundError as e:
    raise errors.UserError(f"{spec_path}: missing; run the 'convert' stage "
                           "(or use a new --workdir)") from e
  except ValueError as e:
    raise errors.UserError(f"{spec_path}: unreadable ({e})") from e


def recorded_module_root(workdir: str, arch: str) -> Optional[str]:
  """W/generator/spec.json's "module_root" when it was converted with `arch`.

  Missing or unreadable files give None: the stages report those.
  """
  try:
    with open(os.path.join(workdir, GENERATOR_DIR, SPEC_FILE)) as f:
      description = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(description, dict) or description.get("arch") != arch:
    return None
  root = description.get(MODULE_ROOT)
  return root if isinstance(root, str) else None


def restore(path: str, like: Any) -> Any:
  """Params saved by `save`, with the structure and shapes of `like`."""
  target = jax.eval_shape(lambda tree: tree, like)
  checkpointer = ocp.StandardCheckpointer()
  try:
    params = checkpointer.restore(
        os.path.abspath(os.path.join(path, PARAMS_DIR)), target)
  except (ValueError, KeyError, FileNotFoundError) as e:
    raise errors.UserError(
        f"{os.path.join(path, PARAMS_DIR)}: does not hold the params its "
        f"spec.json describes ({type(e).__name__}: {e}); re-run 'convert'"
    ) from e
  finally:
    checkpointer.close()
  return jax.tree.map(jax.numpy.asarray, params)


def check_matches_config(config, network: latent.Network,
                         path: str) -> None:
  """The converted generator must have the config's direction size and side."""
  for field, value in (("z_dim", network.direction_dim),
                       ("resolution", network.resolution)):
    if value != config.generator[field]:
      raise errors.UserError(
          f"config.generator.{field}: {config.generator[field]}, but "
          f"{path} was converted with {value}; fix the config or "
          "re-run 'convert' with --config.force=True")


def build_network(config: ml_collections.ConfigDict,
                  description: dict[str, Any],
                  path: str) -> latent.Network:
  """The Network that spec.json `description` (of W/generator) describes."""
  spec_path = os.path.join(path, SPEC_FILE)
  kind = kinds.resolve(description.get("arch"),
                       f"{spec_path}: arch")
  # Older demo workdirs keep the spec (the demo's info.json) under "info".
  spec = description.get("spec", description.get("info"))
  if not isinstance(spec, dict):
    raise errors.UserError(f"{spec_path}: no \"spec\"; re-run 'convert'")
  try:
    network = kinds.build(
        kind, spec, kinds.build_options(config.generator))
  except (KeyError, TypeError) as e:
    raise errors.UserError(
        f"{spec_path}: its spec does not describe a {kind.name} generator "
        f"({type(e).__name__}: {e}); re-run 'convert'") from e
  check_matches_config(config, network, path)
  return network


def load_generator(config: ml_collections.ConfigDict,
                   workdir: str) -> tuple[latent.Network, Any]:
  """(network, params) of W/generator; network(params, latents) is jit-able.

  latents float32 [B, network.latent_dim] -> images float32 [B, H, W, 3] in
  [-1, 1]; latent.draw samples latents, latent.shift moves them.
  """
  path = os.path.join(workdir, GENERATOR_DIR)
  network = build_network(config, read_description(path), path)
  return network, restore(path, network.abstract_params)


def load_encoder(workdir: str) -> Optional[tuple[Callable, Any,
                                                 encoder.EncoderSpec]]:
  """(encode, params, spec) of W/encoder, or None when there is none."""
  path = os.path.join(workdir, ENCODER_DIR)
  if not os.path.exists(path):
    return None
  description = read_description(path)
  spec = encoder.EncoderSpec.from_dict(description["spec"])
  return (encoder.make_encode(spec),
          restore(path, encoder.abstract_params(spec)), spec)
