"""Image strips of latent directions: G(z + t h) side by side, as PNG files.

A person judges a direction in a minute from a strip (docs/method.md section 2:
"Directions are inspected as image strips G(z + t*h) for t in a symmetric
range"). The generation functions are pure and jit-able; the grid and PNG
helpers run on the host.
"""
import functools
import io
from typing import Callable

import jax
import numpy as np
from PIL import Image

from gansseg_jax.infra import fileio
from gansseg_jax.generator_interface import latent

Generate = Callable[..., jax.Array]
# Gap between the tiles of a grid, in pixels, and its value in [-1, 1] (white).
_PAD = 2
_PAD_VALUE = 1.0
# Tiles smaller than this (pixels, on their shorter side) are enlarged by the
# smallest integer factor that reaches it (nearest neighbour), so that a
# strip of a 32 px generator can be read: 7 tiles of 32 px are 236 px wide.
READABLE_TILE = 128


def shift_images(generate: Generate, gen_params, z: jax.Array,
                 direction: jax.Array, shifts: jax.Array) -> jax.Array:
  """G(z_s + t h) for latents z [S, d], t in shifts [T]: [S, T, H, W, 3].

  z may be wider than h (trailing condition coordinates, left alone).
  """
  latents = latent.shift(
      z[:, None, :], shifts[None, :, None] * direction[None, None, :])
  num_samples, num_shifts = latents.shape[:2]
  images = generate(gen_params, latents.reshape(num_samples * num_shifts, -1))
  return images.reshape((num_samples, num_shifts) + images.shape[1:])


def direction_strips(generate: Generate, gen_params, z: jax.Array,
                     directions: jax.Array, shifts: jax.Array) -> jax.Array:
  """G(z + t h_k) for directions [K, d], t in shifts [T]: [K, T, H, W, 3].

  One latent z [latent_dim]; `lax.map` over the directions keeps memory at T images.
  """
  def one_direction(direction):
    return shift_images(generate, gen_params, z[None], direction, shifts)[0]
  return jax.lax.map(one_direction, directions)


@functools.lru_cache(maxsize=4)
def jitted_direction_strips(generate: Generate):
  """jit of `direction_strips` for one generator (params, z, dirs, shifts)."""
  return jax.jit(functools.partial(direction_strips, generate))


def readable(tiles: np.ndarray, side: int = READABLE_TILE) -> np.ndarray:
  """Tiles [..., H, W, 3] enlarged (nearest neighbour) by the smallest
  integer factor that makes min(H, W) >= side; unchanged when it is."""
  tiles = np.asarray(tiles)
  factor = max(1, -(-side // max(1, min(tiles.shape[-3:-1]))))
  return tiles.repeat(factor, axis=-3).repeat(factor, axis=-2)


def grid(tiles: np.ndarray) -> np.ndarray:
  """Tiles [R, C, H, W, 3] in [-1, 1] -> one uint8 image with white gaps."""
  tiles = np.asarray(tiles, dtype=np.float32)
  rows, cols, height, width, channels = tiles.shape
  out = np.full((rows * (height + _PAD) - _PAD, cols * (width + _PAD) - _PAD,
                 channels), _PAD_VALUE, np.float32)
  for r in range(rows):
    for c in range(cols):
      top, left = r * (height + _PAD), c * (width + _PAD)
      out[top:top + height, left:left + width] = tiles[r, c]
  return np.round((np.clip(out, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def mask_tiles(masks: np.ndarray) -> np.ndarray:
  """Bool masks [..., H, W] -> RGB tiles [..., H, W, 3], white = True."""
  values = np.where(np.asarray(masks), 1.0, -1.0).astype(np.float32)
  return np.repeat(values[..., None], 3, axis=-1)


def write_png(path: str, image: np.ndarray) -> None:
  """Writes a uint8 [H, W, 3] image atomically."""
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  fileio.write_bytes(path, buffer.getvalue())
