"""Augmentations of training pairs (options; the paper has none).

Translation: a generator whose objects sit near the image centre teaches the
U-Net a position prior instead of an appearance cue. Shifting each image and
its mask by the same random offset (reflect padding, so no empty borders
appear) takes that prior away (`config.train.shift_augment`, off by default).

Photometric: the lighting mask marks what a latent shift brightens, so a
U-Net trained on one GAN's images can learn "the brightest, most skin-like
region" instead of the object's shape, and fail where real lighting differs
(a face lit from one side, blond hair brighter than the skin). `photometric`
changes each image's lighting and colour (never its mask): a random
exponential illumination ramp across the frame, a global gain, contrast about
the image's mean grey, and saturation about each pixel's grey
(`config.train.photometric_augment`, `config.eval.real.photometric_augment`;
0 = off).
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

# ITU-R BT.601 luma weights: the grey of an RGB pixel.
LUMA = (0.299, 0.587, 0.114)


def translate(image: jax.Array, mask: jax.Array, dy: jax.Array, dx: jax.Array,
              max_shift: int) -> tuple[jax.Array, jax.Array]:
  """`image` [H, W, C] and `mask` [H, W] shifted down by dy, right by dx.

  out[y, x] = reflect(in)[y - dy, x - dx] for |dy|, |dx| <= max_shift.
  """
  h, w = mask.shape
  pad = ((max_shift, max_shift), (max_shift, max_shift))
  padded_image = jnp.pad(image, pad + ((0, 0),), mode="reflect")
  padded_mask = jnp.pad(mask, pad, mode="reflect")
  top, left = max_shift - dy, max_shift - dx
  return (jax.lax.dynamic_slice(padded_image, (top, left, 0),
                                (h, w, image.shape[-1])),
          jax.lax.dynamic_slice(padded_mask, (top, left), (h, w)))


def random_translate(key: jax.Array, images: jax.Array, masks: jax.Array,
                     fraction: float) -> tuple[jax.Array, jax.Array]:
  """Each pair of the batch shifted by its own offset in [-f H, f H] x [-f W, f W]."""
  size = min(masks.shape[1:])
  max_shift = min(int(round(fraction * size)), size - 1)
  if max_shift == 0:
    return images, masks
  offsets = jax.random.randint(key, (images.shape[0], 2), -max_shift,
                               max_shift + 1)
  return jax.vmap(lambda i, m, o: translate(i, m, o[0], o[1], max_shift))(
      images, masks, offsets)


class Lighting(NamedTuple):
  """Per-image parameters of `relight`, each [B, 1, 1, 1]."""
  slope: jax.Array  # a: log-gain change from the frame's centre to its edge.
  angle: jax.Array  # theta: direction of the ramp.
  gain: jax.Array  # b: log-gain of the whole frame, halved.
  contrast: jax.Array  # c: log of the contrast factor.
  saturation: jax.Array  # sat: saturation factor.


def draw_lighting(key: jax.Array, n: int, strength: float) -> Lighting:
  """n draws with s = strength: a, b ~ U[-s, s], theta ~ U[0, 2 pi),
  c ~ U[-s/2, s/2], sat ~ U[max(0, 1 - s), 1 + s]."""
  s = float(strength)
  shape = (n, 1, 1, 1)
  k_slope, k_angle, k_gain, k_contrast, k_sat = jax.random.split(key, 5)
  uniform = lambda k, low, high: jax.random.uniform(k, shape, minval=low,
                                                    maxval=high)
  return Lighting(slope=uniform(k_slope, -s, s),
                  angle=uniform(k_angle, 0.0, 2 * jnp.pi),
                  gain=uniform(k_gain, -s, s),
                  contrast=uniform(k_contrast, -s / 2, s / 2),
                  saturation=uniform(k_sat, max(0.0, 1 - s), 1 + s))


def relight(images: jax.Array, p: Lighting) -> jax.Array:
  """`images` [B, H, W, 3] in [-1, 1] relit and recoloured by `p`.

  On x = (images + 1) / 2, with u, v in [-1, 1] across the frame's width
  and height:
    x1 = x * exp(b / 2 + a (cos(theta) u + sin(theta) v));
    x2 = m + exp(c) (x1 - m), m the mean grey of x1 over the frame;
    x3 = g + sat (x2 - g), g the grey of each pixel of x2 (LUMA weights);
  clipped to [0, 1] and mapped back to [-1, 1].
  """
  _, h, w, _ = images.shape
  v = jnp.linspace(-1.0, 1.0, h)[None, :, None, None]
  u = jnp.linspace(-1.0, 1.0, w)[None, None, :, None]
  luma = jnp.asarray(LUMA, images.dtype)
  x = (images + 1) / 2 * jnp.exp(
      p.gain / 2 + p.slope * (jnp.cos(p.angle) * u + jnp.sin(p.angle) * v))
  mean_grey = jnp.mean(x @ luma, axis=(1, 2))[:, None, None, None]
  x = mean_grey + jnp.exp(p.contrast) * (x - mean_grey)
  grey = (x @ luma)[..., None]
  x = grey + p.saturation * (x - grey)
  return jnp.clip(x, 0, 1) * 2 - 1


def photometric(key: jax.Array, images: jax.Array,
                strength: float) -> jax.Array:
  """`images` [B, H, W, 3] relit by `draw_lighting(key, B, strength)`;
  strength 0 returns them unchanged."""
  if strength <= 0:
    return images
  return relight(images, draw_lighting(key, images.shape[0], strength))
