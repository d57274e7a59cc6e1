"""Closed-form candidate directions (SeFa, Shen & Zhou 2021), docs/method.md §2.

A latent shift dz changes the generator's first latent projection y = W z by
W dz; SeFa takes the unit dz that change it most: the top eigenvectors of
W^T W (W [n_out, z_dim], rows = output units). As in SeFa's code, each row of
W is first scaled to unit norm (`normalize_rows`, config.directions.
sefa_normalize) so that no single unit dominates.

Where W comes from. The generator kind's Network (generator_interface/latent.py)
has `latent_projection(params) -> [n_out, direction_dim]`: the maps that read
the latent space the directions live in (for StyleGAN2 in W space, the style
affine weights, as SeFa does for StyleGAN).

Generators that feed z to several layers (BigGAN's hierarchical z: z is cut
into chunks, chunk 0 feeds the first dense layer, chunk i >= 1 feeds the gain
and bias maps of block i's conditional batch norms) have one projection per
chunk. SeFa's objective for such a generator is the total first-order change
of every layer that reads z, sum_l ||W_l dz_l||^2, i.e. the eigenproblem of
the block-diagonal diag(W_0^T W_0, W_1^T W_1, ...). The architecture module
returns the matrix whose W^T W is exactly that — the rows of every W_l in the
columns of its chunk, zeros elsewhere (`gansseg_jax.models.biggan.
latent_projection` does). Every eigenvector then lies inside one chunk, and
the chunks compete through their (row-normalised) eigenvalues. A projection
with fewer than z_dim columns (only chunk 0) is zero-padded on the right: its
candidates then move only the first coordinates.
"""
from typing import Any

from absl import logging
import numpy as np

from gansseg_jax.infra import errors


def sefa_directions(projection: np.ndarray, num_directions: int,
                    normalize_rows: bool) -> tuple[np.ndarray, np.ndarray]:
  """Top eigenvectors of W^T W: ([K, z_dim] float32, eigenvalues [K]).

  Each eigenvector's sign is fixed so that its largest-magnitude coordinate
  is positive (the score stage orients them by what they do to images).
  """
  w = np.asarray(projection, dtype=np.float64)
  if normalize_rows:
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    w = w / np.where(norms > 0, norms, 1.0)
  eigenvalues, eigenvectors = np.linalg.eigh(w.T @ w)
  order = np.argsort(-eigenvalues, kind="stable")[:num_directions]
  vectors = eigenvectors[:, order].T
  signs = np.sign(vectors[np.arange(len(vectors)),
                          np.argmax(np.abs(vectors), axis=1)])
  return (vectors * signs[:, None]).astype(np.float32), eigenvalues[order]


def latent_projection(generate: Any, params: Any, z_dim: int) -> np.ndarray:
  """W [n_out, z_dim] of the loaded generator (zero-padded to z_dim).

  `generate` is the Network of convert.load.load_generator; z_dim is
  config.generator.z_dim (its direction_dim).
  """
  projection = getattr(generate, "latent_projection", None)
  if projection is None:
    raise errors.UserError(
        "config.directions.source: 'sefa' needs the generator kind's "
        "Network.latent_projection(params) -> [n_out, direction_dim] "
        "(config.generator.arch); it has none")
  w = np.asarray(projection(params), dtype=np.float32)
  if w.ndim != 2 or w.shape[1] > z_dim:
    raise errors.UserError(
        f"config.generator.z_dim: the generator's latent_projection gave "
        f"shape {w.shape}, expected [n_out, <= {z_dim}]")
  if w.shape[1] < z_dim:
    logging.warning("SeFa: the projection reads z[:%d] of %d coordinates; "
                    "candidates move only those.", w.shape[1], z_dim)
    w = np.pad(w, ((0, 0), (0, z_dim - w.shape[1])))
  return w
