"""Latent samplers (docs/method.md §5): distribution, determinism, checks."""
import jax
import ml_collections
import numpy as np
import pytest

from gansseg_jax.infra.errors import UserError
from gansseg_jax.synth import latents


def _config(**overrides):
  c = ml_collections.ConfigDict(dict(latents="prior", truncation=0.0,
                                     embedding_noise=0.2))
  c.update(overrides)
  return c


def test_prior_is_standard_normal_and_deterministic():
  sample = latents.make_sampler(_config(), z_dim=16)
  key = jax.random.key(0)
  z = np.asarray(sample(key, 4000))
  assert z.shape == (4000, 16) and z.dtype == np.float32
  assert np.array_equal(z, sample(key, 4000))
  assert not np.array_equal(z, sample(jax.random.key(1), 4000))
  assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02


def test_truncated_prior_stays_inside_and_matches_truncated_normal():
  sample = latents.make_sampler(_config(truncation=1.0), z_dim=8)
  z = np.asarray(sample(jax.random.key(2), 20000))
  assert np.abs(z).max() <= 1.0
  # Var of N(0, 1) truncated to [-1, 1] = 1 - 2 phi(1) / (2 Phi(1) - 1).
  phi, cdf = 0.24197072451914337, 0.8413447460685429
  assert abs(z.var() - (1 - 2 * phi / (2 * cdf - 1))) < 0.01


def test_embeddings_sampler_picks_rows_and_adds_noise():
  table = np.arange(5 * 3, dtype=np.float32).reshape(5, 3) * 10
  exact = latents.make_sampler(_config(latents="embeddings",
                                       embedding_noise=0.0), 3, table)
  z = np.asarray(exact(jax.random.key(0), 500))
  rows = {tuple(r) for r in z.tolist()}
  assert rows == {tuple(r) for r in table.tolist()}  # uniform over all 5
  noisy = latents.make_sampler(_config(latents="embeddings"), 3, table)
  z = np.asarray(noisy(jax.random.key(0), 4000))
  nearest = table[np.argmin(((z[:, None] - table[None]) ** 2).sum(-1), 1)]
  assert abs((z - nearest).std() - 0.2) < 0.01


def test_sampler_works_under_jit():
  sample = latents.make_sampler(_config(), z_dim=4)
  jitted = jax.jit(sample, static_argnums=1)
  key = jax.random.key(3)
  np.testing.assert_array_equal(jitted(key, 7), sample(key, 7))


def test_bad_inputs_name_the_field_or_file(tmp_path):
  with pytest.raises(UserError, match="config.synth.latents"):
    latents.make_sampler(_config(latents="uniform"), 4)
  with pytest.raises(UserError, match="config.synth.latents"):
    latents.make_sampler(_config(latents="embeddings"), 4)
  with pytest.raises(UserError, match="config.synth.truncation"):
    latents.make_sampler(_config(truncation=-1.0), 4)
  path = str(tmp_path / "embeddings.npy")
  with pytest.raises(UserError, match="no such file"):
    latents.load_embeddings(path, 4)
  np.save(path, np.zeros((3, 5), np.float32))
  with pytest.raises(UserError, match=r"shape \[N, 4\]"):
    latents.load_embeddings(path, 4)
  bad = np.zeros((3, 4), np.float32)
  bad[1, 2] = np.nan
  np.save(path, bad)
  with pytest.raises(UserError, match="NaN or Inf"):
    latents.load_embeddings(path, 4)
  np.save(path, np.ones((3, 4), np.float64))
  loaded = latents.load_embeddings(path, 4)
  assert loaded.dtype == np.float32 and loaded.shape == (3, 4)
