"""The generator shipped in gansseg_jax/assets/demo_generator/ loads and draws."""
import os

import jax
import numpy as np
import pytest

from gansseg_jax.models import demo_gan

SHIPPED = os.path.isfile(os.path.join(demo_gan.ASSET_DIR, demo_gan.PARAMS_FILE))


@pytest.mark.skipif(not SHIPPED, reason="demo generator not exported yet")
def test_shipped_generator_draws_varied_images_in_range():
  generate, params, info = demo_gan.load_builtin()
  m = info["model"]
  size = sum(os.path.getsize(os.path.join(demo_gan.ASSET_DIR, f))
             for f in os.listdir(demo_gan.ASSET_DIR))
  assert size <= 20 * 2**20
  assert info["steps"] > 0 and info["command"].startswith("python -m ")
  z = jax.random.normal(jax.random.key(0), (8, m["z_dim"]))
  images = np.asarray(jax.jit(generate)(params, z))
  assert images.shape == (8, m["resolution"], m["resolution"], 3)
  assert np.all(np.isfinite(images)) and np.all(np.abs(images) <= 1.0)
  # Different latents, different images; each image has structure.
  assert np.abs(images[0] - images[1]).mean() > 0.05
  assert np.all(images.reshape(8, -1).std(axis=1) > 0.05)
  assert demo_gan.latent_projection(params).shape[1] == m["z_dim"]
