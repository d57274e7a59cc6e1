"""Random translation of synthetic pairs (an option; the paper has none).

A generator whose objects sit near the image centre teaches the U-Net a
position prior instead of an appearance cue. Shifting each image and its mask
by the same random offset (reflect padding, so no empty borders appear) takes
that prior away. Off by default (`config.train.shift_augment = 0`).
"""
import jax
import jax.numpy as jnp


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
