"""The deformator A: R^K -> R^d of Voynov & Babenko (2020), docs/method.md §2.

A maps direction coefficients (one-hot times eps during training) to a latent
shift; direction k is A(e_k), the k-th column of A's matrix M [d, K].

Kinds (the authors' GANLatentDiscovery names):
- 'ortho': M = the first K columns of expm(S - S^T), S [d, d] trainable,
  S ~ init_std * N(0, 1). S - S^T is skew-symmetric, so expm of it is
  orthogonal at every step (the K directions stay orthonormal). K < d is
  allowed: the input is zero-padded to d, which keeps the first K columns.
- 'linear': M [d, K] trainable, initialised to the identity (eye(d, K)).
  Bias-free, unlike the authors' nn.Linear: a bias would add the same offset
  to every shift, so A(eps e_k) would not be eps times a direction.
- 'projective': the 'linear' map, then rescaled to the input's norm:
  A(x) = M x * ||x|| / ||M x||.
- 'random': a fixed random orthonormal M (QR of a Gaussian matrix), not trained.
- 'id': M = eye(d, K), not trained.
"""
import flax.nnx as nnx
import jax
import jax.numpy as jnp

KINDS = ("ortho", "linear", "projective", "random", "id")
# Kinds whose matrix must be square-padded (K <= d).
_SQUARE_KINDS = ("ortho", "random", "id")


class FixedMatrix(nnx.Variable):
  """A matrix that belongs to the model but is never trained ('random')."""


class Deformator(nnx.Module):
  """A: coefficients [B, K] -> latent shifts [B, d]."""

  def __init__(self, kind: str, num_directions: int, latent_dim: int,
               init_std: float, *, rngs: nnx.Rngs):
    if kind not in KINDS:
      raise ValueError(f"deformator kind {kind!r} is not one of {KINDS}")
    if kind in _SQUARE_KINDS and num_directions > latent_dim:
      raise ValueError(
          f"a {kind!r} deformator needs num_directions <= latent size, got "
          f"{num_directions} > {latent_dim}")
    self.kind = kind
    self.num_directions = num_directions
    self.latent_dim = latent_dim
    if kind == "ortho":
      self.log_half = nnx.Param(
          init_std * jax.random.normal(rngs.params(), (latent_dim, latent_dim)))
    elif kind in ("linear", "projective"):
      self.linear = nnx.Param(jnp.eye(latent_dim, num_directions))
    elif kind == "random":
      gaussian = jax.random.normal(rngs.params(), (latent_dim, latent_dim))
      q, r = jnp.linalg.qr(gaussian)
      # Sign fix makes Q Haar-distributed (Mezzadri 2007).
      q = q * jnp.sign(jnp.diagonal(r))[None, :]
      self.fixed = FixedMatrix(q[:, :num_directions])

  def matrix(self) -> jax.Array:
    """M [d, K]: column k is direction k (before any projective rescaling)."""
    if self.kind == "ortho":
      skew = self.log_half[...] - self.log_half[...].T
      return jax.scipy.linalg.expm(skew)[:, :self.num_directions]
    if self.kind in ("linear", "projective"):
      return self.linear[...]
    if self.kind == "random":
      return self.fixed[...]
    return jnp.eye(self.latent_dim, self.num_directions)

  def __call__(self, coefficients: jax.Array) -> jax.Array:
    """A(x) for x [B, K] -> [B, d]."""
    shifts = coefficients @ self.matrix().T
    if self.kind == "projective":
      in_norm = jnp.linalg.norm(coefficients, axis=-1, keepdims=True)
      out_norm = jnp.linalg.norm(shifts, axis=-1, keepdims=True)
      shifts = shifts * in_norm / out_norm
    return shifts

  def directions(self) -> jax.Array:
    """The K directions A(e_k) as rows, [K, d]."""
    return self(jnp.eye(self.num_directions))
