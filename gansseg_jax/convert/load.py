"""The converted networks in the workdir: writing them, and loading them back.

  W/generator/spec.json   what to rebuild: {"arch": "biggan", "spec": {...}}
                          or {"arch": "builtin", "info": {...}}, plus "source"
                          and the conversion's log ("conversion")
  W/generator/params/     orbax checkpoint of the params (a nested dict)
  W/encoder/spec.json     {"arch": "bigbigan_encoder", "spec": {...}}
  W/encoder/params/       orbax checkpoint (only when the encoder verified)

Every later stage calls `load_generator(config, workdir)`: the architecture
comes from spec.json, the activation dtype from config.generator.dtype.
'builtin' generators keep their own forward function in
gansseg_jax.models.demo_gan (`load_builtin() -> (generate, params, info)`);
only their params live here.
"""
import importlib
import json
import os
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from gansseg_jax import errors
from gansseg_jax import fileio
from gansseg_jax.models import biggan
from gansseg_jax.models import encoder

GENERATOR_DIR = "generator"
ENCODER_DIR = "encoder"
SPEC_FILE = "spec.json"
PARAMS_DIR = "params"
BUILTIN_MODULE = "gansseg_jax.models.demo_gan"

Generate = Callable[[Any, jax.Array], jax.Array]


def generator_spec(config: ml_collections.ConfigDict) -> biggan.BigGANSpec:
  """BigGANSpec from config.generator; UserError names a bad field."""
  g = config.generator
  try:
    return biggan.BigGANSpec(
        resolution=g.resolution, z_dim=g.z_dim, ch=g.ch,
        shared_dim=g.shared_dim, attention_resolution=g.attention_resolution,
        bn_eps=g.bn_eps)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e


def activation_dtype(config: ml_collections.ConfigDict) -> str:
  try:
    biggan.activation_dtype(config.generator.dtype)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e
  return config.generator.dtype


def import_builtin():
  """gansseg_jax.models.demo_gan, or a UserError when it is not installed."""
  try:
    return importlib.import_module(BUILTIN_MODULE)
  except ModuleNotFoundError as e:
    if e.name != BUILTIN_MODULE:
      raise
    raise errors.UserError(
        "config.generator.source: 'builtin' needs the demo generator "
        f"({BUILTIN_MODULE}), which this install does not have") from e


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


def check_matches_config(config, description: dict[str, Any],
                         path: str) -> None:
  """The converted generator must have the config's latent size and side."""
  if description["arch"] == "biggan":
    values = description["spec"]
  else:  # demo_gan's info.json keeps them under "model".
    values = description.get("info", {}).get("model", {})
  for field in ("z_dim", "resolution"):
    if field in values and values[field] != config.generator[field]:
      raise errors.UserError(
          f"config.generator.{field}: {config.generator[field]}, but "
          f"{path} was converted with {values[field]}; fix the config or "
          "re-run 'convert' with --config.force=True")


def load_generator(config: ml_collections.ConfigDict,
                   workdir: str) -> tuple[Generate, Any]:
  """(generate, params) of W/generator; generate(params, z) is jit-able.

  z float32 [B, z_dim] -> images float32 [B, H, W, 3] in [-1, 1].
  """
  path = os.path.join(workdir, GENERATOR_DIR)
  description = read_description(path)
  check_matches_config(config, description, path)
  arch = description.get("arch")
  if arch == "biggan":
    spec = biggan.BigGANSpec.from_dict(description["spec"])
    generate = biggan.make_generate(spec, activation_dtype(config))
    return generate, restore(path, biggan.abstract_params(spec))
  if arch == "builtin":
    generate, like, _ = import_builtin().load_builtin()
    return generate, restore(path, like)
  raise errors.UserError(f"{os.path.join(path, SPEC_FILE)}: unknown arch "
                         f"{arch!r}; re-run 'convert'")


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
