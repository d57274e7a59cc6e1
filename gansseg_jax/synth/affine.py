"""Two affine colour maps and the pixel classes they induce (docs/method.md §3).

A shift h is "segmenting" when every pixel colour c = G(z)_xy is carried to
c' = G(z + h)_xy by one of two affine maps A_1, A_2: R^3 -> R^3. The maps are
stored together as one array `maps` of shape [2, 3, 4]: `maps[i, :, :3]` is
the 3x3 matrix of A_i and `maps[i, :, 3]` its bias, so
A_i(c) = clip(maps[i, :, :3] @ c + maps[i, :, 3], -1, 1).

The outputs are clamped to the image range [-1, 1] (section 3), and the class
of a pixel is decided on the clamped outputs, so `affine_class_map` agrees
with the restoration S(c, c') = A_argmin(c) built from `apply_affine`.
"""
import jax
import jax.numpy as jnp


def apply_affine(maps: jax.Array, pixels: jax.Array) -> jax.Array:
  """A_i(c) for both maps: [2, 3, 4] x [..., 3] -> [2, ..., 3], in [-1, 1].

  A_i(c) = clip(W_i c + b_i, -1, 1) with W_i = maps[i, :, :3] and
  b_i = maps[i, :, 3] (docs/method.md §3).
  """
  matrices, biases = maps[:, :, :3], maps[:, :, 3]
  # out[i, ..., r] = sum_k W_i[r, k] c[..., k] + b_i[r]
  out = jnp.einsum("irk,...k->i...r", matrices, pixels,
                   precision=jax.lax.Precision.HIGHEST)
  out = out + biases.reshape((2,) + (1,) * (pixels.ndim - 1) + (3,))
  return jnp.clip(out, -1.0, 1.0)


def affine_distances(maps: jax.Array, image: jax.Array,
                     shifted: jax.Array) -> jax.Array:
  """||A_i(c) - c'||_2 per map and pixel: [..., H, W, 3] -> [2, ..., H, W]."""
  return jnp.linalg.norm(apply_affine(maps, image) - shifted[None], axis=-1)


def affine_class_map(maps: jax.Array, image: jax.Array,
                     shifted: jax.Array) -> jax.Array:
  """Pixel class argmin_i ||A_i(c) - c'||_2 (docs/method.md §3, eq. 7).

  Args:
    maps: [2, 3, 4] the two affine maps.
    image: [..., H, W, 3] colours c of G(z).
    shifted: [..., H, W, 3] colours c' of G(z + h).

  Returns:
    int32 [..., H, W] in {0, 1}; a tie goes to class 0.
  """
  distances = affine_distances(maps, image, shifted)
  return (distances[1] < distances[0]).astype(jnp.int32)
