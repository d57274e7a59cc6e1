"""What mask synthesis reads from the workdir, checked once, for any stage.

Used by the `synth` stage (export.py) and by training, so both build their
batches from the same direction, latents and affine maps:

  W/bg_direction.npy   float32 [z_dim], finite, non-zero (stage `score`).
  W/embeddings.npy     [N, z_dim] when config.synth.latents='embeddings'
                       (stage `embed`).
  W/bg_affine.npy      float32 [2, 3, 4] when config.synth.mask_rule='affine'
                       (stage `score`; layout of synth.affine).
"""
import os
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra.errors import UserError
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import latents as latents_lib

DIRECTION_FILE = "bg_direction.npy"
EMBEDDINGS_FILE = "embeddings.npy"
AFFINE_FILE = "bg_affine.npy"


class SynthInputs(NamedTuple):
  spec: batch_lib.SynthSpec  # From config.synth.
  direction: jax.Array  # [z_dim] the raw background direction.
  sample_latents: latents_lib.Sampler  # sample(key, n) -> z [n, z_dim].
  affine_maps: Optional[jax.Array]  # [2, 3, 4] for mask_rule='affine'.


def input_paths(config: ml_collections.ConfigDict) -> tuple:
  """Workdir-relative files that `load` reads under this config."""
  paths = (DIRECTION_FILE,)
  if config.synth.latents == "embeddings":
    paths += (EMBEDDINGS_FILE,)
  if config.synth.mask_rule == "affine":
    paths += (AFFINE_FILE,)
  return paths


def _load_array(path: str, shape: tuple, hint: str) -> np.ndarray:
  """A finite float32 array of `shape` from a .npy file, or UserError."""
  if not os.path.isfile(path):
    raise UserError(f"{path}: no such file; {hint}")
  try:
    array = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise UserError(f"{path}: not a readable .npy array ({e})") from e
  if array.shape != shape:
    raise UserError(f"{path}: expected shape {list(shape)}, got "
                    f"{list(array.shape)}")
  if not np.issubdtype(array.dtype, np.number):
    raise UserError(f"{path}: expected numbers, got dtype {array.dtype}")
  array = array.astype(np.float32)
  if not np.isfinite(array).all():
    raise UserError(f"{path}: holds NaN or Inf")
  return array


def load_direction(workdir: str, z_dim: int) -> np.ndarray:
  """W/bg_direction.npy as float32 [z_dim], finite and non-zero."""
  path = os.path.join(workdir, DIRECTION_FILE)
  direction = _load_array(path, (z_dim,), "run the 'score' stage first")
  if not np.linalg.norm(direction) > 0:
    raise UserError(f"{path}: the direction is all zeros")
  return direction


def load_affine_maps(workdir: str) -> np.ndarray:
  """W/bg_affine.npy as float32 [2, 3, 4]."""
  return _load_array(os.path.join(workdir, AFFINE_FILE), (2, 3, 4),
                     "config.synth.mask_rule='affine' needs the 'score' "
                     "stage's fitted maps")


def load(config: ml_collections.ConfigDict, workdir: str) -> SynthInputs:
  """Checks config.synth and reads every file it needs (module docstring)."""
  spec = batch_lib.SynthSpec.from_config(config.synth)
  z_dim = config.generator.z_dim
  direction = jnp.asarray(load_direction(workdir, z_dim))
  embeddings = None
  if config.synth.latents == "embeddings":
    embeddings = latents_lib.load_embeddings(
        os.path.join(workdir, EMBEDDINGS_FILE), z_dim)
  sample_latents = latents_lib.make_sampler(config.synth, z_dim, embeddings)
  affine_maps = None
  if spec.mask_rule == "affine":
    affine_maps = jnp.asarray(load_affine_maps(workdir))
  return SynthInputs(spec, direction, sample_latents, affine_maps)
