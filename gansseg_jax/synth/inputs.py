"""What mask synthesis reads from the workdir, checked once, for any stage.

Used by the `synth` stage (export.py) and by training, so both build their
batches from the same direction, latents and affine maps:

  artifacts.BG_DIRECTION  float32 [z_dim], finite, non-zero (stage `score`).
  artifacts.EMBEDDINGS    [N, z_dim] when config.synth.latents='embeddings'
                          (stage `embed`).
  artifacts.BG_AFFINE     float32 [2, 3, 4] when config.synth.mask_rule='affine'
                          (stage `score`; layout of synth.affine).
"""
import os
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra import artifacts
from gansseg_jax.infra.errors import UserError
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import latents as latents_lib



class SynthInputs(NamedTuple):
  spec: batch_lib.SynthSpec  # From config.synth.
  direction: jax.Array  # [z_dim] the raw background direction.
  sample_latents: latents_lib.Sampler  # sample(key, n) -> z [n, z_dim].
  affine_maps: Optional[jax.Array]  # [2, 3, 4] for mask_rule='affine'.


def input_paths(config: ml_collections.ConfigDict) -> tuple:
  """Workdir-relative files that `load` reads under this config."""
  paths = (artifacts.BG_DIRECTION,)
  if config.synth.latents == "embeddings":
    paths += (artifacts.EMBEDDINGS,)
  if config.synth.mask_rule == "affine":
    paths += (artifacts.BG_AFFINE,)
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
  """The background direction as float32 [z_dim], finite and non-zero."""
  path = os.path.join(workdir, artifacts.BG_DIRECTION)
  direction = _load_array(path, (z_dim,), "run the 'score' stage first")
  if not np.linalg.norm(direction) > 0:
    raise UserError(f"{path}: the direction is all zeros")
  return direction


def load_affine_maps(workdir: str) -> np.ndarray:
  """The direction's two fitted affine maps as float32 [2, 3, 4]."""
  return _load_array(os.path.join(workdir, artifacts.BG_AFFINE), (2, 3, 4),
                     "config.synth.mask_rule='affine' needs the 'score' "
                     "stage's fitted maps")


def load(config: ml_collections.ConfigDict, workdir: str) -> SynthInputs:
  """Checks config.synth and reads every file it needs (module docstring)."""
  spec = batch_lib.SynthSpec.from_config(config.synth)
  z_dim = config.generator.z_dim
  direction, embeddings, affine_maps = load_arrays(config, workdir)
  sample_latents = latents_lib.make_sampler(config.synth, z_dim, embeddings)
  if affine_maps is not None:
    affine_maps = jnp.asarray(affine_maps)
  return SynthInputs(spec, jnp.asarray(direction), sample_latents,
                     affine_maps)


def load_arrays(config: ml_collections.ConfigDict, workdir: str
                ) -> tuple[np.ndarray, Optional[np.ndarray],
                           Optional[np.ndarray]]:
  """(direction, embeddings or None, affine maps or None): the arrays of
  `input_paths`, each checked (module docstring)."""
  z_dim = config.generator.z_dim
  direction = load_direction(workdir, z_dim)
  embeddings = None
  if config.synth.latents == "embeddings":
    embeddings = latents_lib.load_embeddings(
        os.path.join(workdir, artifacts.EMBEDDINGS), z_dim)
  affine_maps = None
  if config.synth.mask_rule == "affine":
    affine_maps = load_affine_maps(workdir)
  return direction, embeddings, affine_maps
