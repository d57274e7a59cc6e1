"""Closed-form candidate directions (SeFa, Shen & Zhou 2021), docs/method.md §2.

A latent shift dz changes the generator's first latent projection y = W z by
W dz; SeFa takes the unit dz that change it most: the top eigenvectors of
W^T W (W [n_out, z_dim], rows = output units). As in SeFa's code, each row of
W is first scaled to unit norm (`normalize_rows`, config.directions.
sefa_normalize) so that no single unit dominates.

Where W comes from. A generator architecture module `gansseg_jax.models.<arch>`
exposes `latent_projection(params) -> [n_out, z_dim]` (for the built-in demo
generator, `gansseg_jax.models.demo_gan`; see `projection_module_name`).

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
import importlib
from typing import Any

from absl import logging
import ml_collections
import numpy as np

from gansseg_jax import errors


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


def projection_module_name(generator: ml_collections.ConfigDict) -> str:
  """The module that defines `latent_projection` for config.generator."""
  if generator.source == "builtin":
    return "gansseg_jax.models.demo_gan"
  return f"gansseg_jax.models.{generator.arch}"


def latent_projection(generator: ml_collections.ConfigDict,
                      params: Any) -> np.ndarray:
  """W [n_out, z_dim] of the configured generator (zero-padded to z_dim)."""
  name = projection_module_name(generator)
  try:
    module = importlib.import_module(name)
  except ImportError as e:
    raise errors.UserError(
        f"config.generator.arch: cannot import {name} for SeFa ({e})") from e
  if not hasattr(module, "latent_projection"):
    raise errors.UserError(
        f"config.directions.source: 'sefa' needs {name}.latent_projection("
        "params) -> [n_out, z_dim]; it is not defined")
  w = np.asarray(module.latent_projection(params), dtype=np.float32)
  if w.ndim != 2 or w.shape[1] > generator.z_dim:
    raise errors.UserError(
        f"config.generator.z_dim: {name}.latent_projection gave shape "
        f"{w.shape}, expected [n_out, <= {generator.z_dim}]")
  if w.shape[1] < generator.z_dim:
    logging.warning("SeFa: the projection reads z[:%d] of %d coordinates; "
                    "candidates move only those.", w.shape[1], generator.z_dim)
    w = np.pad(w, ((0, 0), (0, generator.z_dim - w.shape[1])))
  return w
