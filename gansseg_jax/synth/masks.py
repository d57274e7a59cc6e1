"""Mask rules: the foreground pixels of G(z), given G(z + h) (docs/method.md §4).

All functions are pure jnp on [..., H, W, 3] images in [-1, 1] (any leading
batch axes) and return bool masks [..., H, W]; True = foreground.

- `lighting_mask`: gray(G(z + h)) > gray(G(z)), the default.
- `mean_thr_mask`: gray(G(z + h)) > its per-image mean (Flowers).
- `affine_mask`: the pixel classes of the two affine maps of §3; the
  foreground is the class that touches the image border less (objects sit
  inside the frame, the background surrounds them). Ties: the class with
  fewer pixels overall; if those tie too, class 1.
"""
from typing import Optional

import jax
import jax.numpy as jnp

from gansseg_jax.infra.errors import UserError
from gansseg_jax.synth import affine

MASK_RULES = ("lighting", "mean_thr", "affine")
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def gray(images: jax.Array) -> jax.Array:
  """gray = 0.2989 R + 0.5870 G + 0.1140 B: [..., H, W, 3] -> [..., H, W] (§4).

  An explicit weighted sum rather than a matmul, so no accelerator lowers its
  precision.
  """
  red, green, blue = images[..., 0], images[..., 1], images[..., 2]
  return (GRAY_WEIGHTS[0] * red + GRAY_WEIGHTS[1] * green
          + GRAY_WEIGHTS[2] * blue)


def lighting_mask(image: jax.Array, shifted: jax.Array) -> jax.Array:
  """M = [gray(G(z + h)) > gray(G(z))] (docs/method.md §4, 'lighting')."""
  return gray(shifted) > gray(image)


def mean_thr_mask(shifted: jax.Array) -> jax.Array:
  """M = [gray(G(z + h)) > mean_xy gray(G(z + h))] per image (§4, mean_thr)."""
  brightness = gray(shifted)
  return brightness > jnp.mean(brightness, axis=(-2, -1), keepdims=True)


def _border(mask: jax.Array) -> jax.Array:
  """Counts of True pixels on the image border: [..., H, W] -> [...]."""
  inside = mask[..., 1:-1, 1:-1]
  total = jnp.sum(mask, axis=(-2, -1), dtype=jnp.int32)
  return total - jnp.sum(inside, axis=(-2, -1), dtype=jnp.int32)


def affine_mask(maps: jax.Array, image: jax.Array,
                shifted: jax.Array) -> jax.Array:
  """Foreground class of the affine class map (docs/method.md §3-4, 'affine').

  classes = argmin_i ||A_i(c) - c'||_2 (see `affine.affine_class_map`).
  The foreground is class 1 when it has fewer border pixels than class 0,
  class 0 when it has more; on equal border counts, the class with fewer
  pixels overall; on equal totals too, class 1.

  Args:
    maps: [2, 3, 4] the two affine maps.
    image: [..., H, W, 3] G(z).
    shifted: [..., H, W, 3] G(z + h).

  Returns:
    bool [..., H, W].
  """
  is_one = affine.affine_class_map(maps, image, shifted) == 1
  border_one, border_zero = _border(is_one), _border(~is_one)
  area_one = jnp.sum(is_one, axis=(-2, -1), dtype=jnp.int32)
  area_zero = jnp.sum(~is_one, axis=(-2, -1), dtype=jnp.int32)
  one_is_foreground = jnp.where(border_one == border_zero,
                                area_one <= area_zero,
                                border_one < border_zero)
  return jnp.where(one_is_foreground[..., None, None], is_one, ~is_one)


def check_mask_rule(rule: str) -> None:
  if rule not in MASK_RULES:
    raise UserError(
        f"config.synth.mask_rule: must be one of {MASK_RULES}, got {rule!r}")


def make_mask(rule: str, image: jax.Array, shifted: jax.Array,
              affine_maps: Optional[jax.Array] = None) -> jax.Array:
  """The mask of `rule` ('lighting', 'mean_thr' or 'affine'): bool [..., H, W].

  `affine_maps` [2, 3, 4] is required by 'affine' and ignored otherwise.
  """
  check_mask_rule(rule)
  if rule == "lighting":
    return lighting_mask(image, shifted)
  if rule == "mean_thr":
    return mean_thr_mask(shifted)
  if affine_maps is None:
    raise UserError("config.synth.mask_rule: 'affine' needs the two fitted "
                    "affine maps of the background direction; none were given")
  return affine_mask(affine_maps, image, shifted)
