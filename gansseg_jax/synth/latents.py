"""Latent samplers, pure functions of a PRNG key (docs/method.md §5).

`make_sampler(config.synth, z_dim, embeddings)` returns `sample(key, n)`,
which draws z [n, z_dim] float32:

- 'prior' (the "BigBiGAN" rows of the paper): z from the generator's latent
  prior (latent.OwnPrior: N(0, I) unless the kind or
  config.generator.latent_prior says otherwise). With
  `config.synth.truncation = t > 0` every coordinate with |z_i| > t is
  resampled, i.e. z_i follows N(0, 1) truncated to [-t, t]; this is drawn
  directly by inverse-CDF sampling, without a retry loop (it assumes the
  N(0, I) prior; for others set config.generator.latent_prior).
- 'embeddings' (E-BigBiGAN): z = E(I_i) + alpha * xi with i ~ U{1..N} over
  the stored encoder embeddings and xi ~ N(0, I); alpha =
  `config.synth.embedding_noise` (0 for ImageNet embeddings, 0.2 otherwise).
"""
import os
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra.errors import UserError
from gansseg_jax.generator_interface import latent

LATENT_SOURCES = ("prior", "embeddings")

Sampler = Callable[[jax.Array, int], jax.Array]


def check_embeddings(embeddings: np.ndarray, z_dim: int,
                     source: str) -> np.ndarray:
  """Embeddings as float32 [N, z_dim], N >= 1, all finite; else UserError."""
  embeddings = np.asarray(embeddings)
  if embeddings.ndim != 2 or embeddings.shape[1] != z_dim:
    raise UserError(f"{source}: embeddings must have shape [N, {z_dim}] "
                    f"(config.generator.z_dim), got {list(embeddings.shape)}")
  if embeddings.shape[0] == 0:
    raise UserError(f"{source}: holds no embeddings")
  if not np.issubdtype(embeddings.dtype, np.number):
    raise UserError(f"{source}: embeddings must be numbers, got dtype "
                    f"{embeddings.dtype}")
  embeddings = embeddings.astype(np.float32)
  bad = ~np.isfinite(embeddings).all(axis=1)
  if bad.any():
    raise UserError(f"{source}: {int(bad.sum())} of {len(embeddings)} "
                    f"embeddings hold NaN or Inf (first at row "
                    f"{int(np.argmax(bad))})")
  return embeddings


def load_embeddings(path: str, z_dim: int) -> np.ndarray:
  """Reads and checks `embeddings.npy` [N, z_dim] from the `embed` stage."""
  if not os.path.isfile(path):
    raise UserError(f"{path}: no such file; run the 'embed' stage first or "
                    f"set config.synth.latents='prior'")
  try:
    embeddings = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise UserError(f"{path}: not a readable .npy array ({e})") from e
  return check_embeddings(embeddings, z_dim, path)


def prior_sampler(z_dim: int, truncation: float) -> Sampler:
  """The generator's own prior (N(0, I) when called directly), or N(0, 1)
  truncated to [-t, t] per coordinate when t > 0."""
  if not truncation > 0:
    return latent.OwnPrior(z_dim)

  def sample(key: jax.Array, n: int) -> jax.Array:
    return jax.random.truncated_normal(key, -truncation, truncation,
                                       (n, z_dim), jnp.float32)

  return sample


def embedding_sampler(embeddings: np.ndarray, noise: float) -> Sampler:
  """z = E_i + noise * xi, i ~ U{0..N-1}, xi ~ N(0, I) (docs/method.md §5)."""
  table = jnp.asarray(embeddings, jnp.float32)

  def sample(key: jax.Array, n: int) -> jax.Array:
    index_key, noise_key = jax.random.split(key)
    index = jax.random.randint(index_key, (n,), 0, table.shape[0])
    z = table[index]
    if noise > 0:
      z = z + noise * jax.random.normal(noise_key, z.shape, jnp.float32)
    return z

  return sample


def make_sampler(synth_config: ml_collections.ConfigDict, z_dim: int,
                 embeddings: Optional[np.ndarray] = None) -> Sampler:
  """The sampler `sample(key, n) -> z [n, z_dim]` that `config.synth` asks for.

  Args:
    synth_config: `config.synth` (fields latents, truncation,
      embedding_noise).
    z_dim: latent size (`config.generator.z_dim`).
    embeddings: [N, z_dim] encoder embeddings; required for 'embeddings'.

  Returns:
    A pure function of (key, n), n static, safe to call under jit.
  """
  source = synth_config.latents
  if source not in LATENT_SOURCES:
    raise UserError(f"config.synth.latents: must be one of {LATENT_SOURCES}, "
                    f"got {source!r}")
  if source == "prior":
    truncation = float(synth_config.truncation)
    if not truncation >= 0:
      raise UserError(f"config.synth.truncation: must be >= 0 (0 = none), "
                      f"got {synth_config.truncation!r}")
    return prior_sampler(z_dim, truncation)
  noise = float(synth_config.embedding_noise)
  if not noise >= 0:
    raise UserError(f"config.synth.embedding_noise: must be >= 0, got "
                    f"{synth_config.embedding_noise!r}")
  if embeddings is None:
    raise UserError("config.synth.latents: 'embeddings' needs encoder "
                    "embeddings (W/embeddings.npy from the 'embed' stage)")
  embeddings = check_embeddings(embeddings, z_dim, "embeddings")
  return embedding_sampler(embeddings, noise)
