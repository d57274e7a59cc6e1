"""Latent priors: declared by a kind or chosen in the config, drawn by every
stage, and the unit of shift lengths (generator_interface/latent.py)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import latents as latents_lib

import uniform_dcgan_kind


def plugin_network(**options):
  config = default.get_config()
  config.generator.arch = "uniform_dcgan_kind:KIND"
  config.generator.source = "random"
  config.generator.z_dim, config.generator.resolution = 6, 16
  config.generator.ch = 2
  config.generator.update(options)
  converted = uniform_dcgan_kind.convert(config, "")
  network = kinds.build(kinds.resolve(config.generator.arch), converted.spec,
                        kinds.build_options(config.generator))
  return network, converted.params


def test_a_plugin_declares_its_prior_and_every_draw_uses_it():
  network, params = plugin_network()
  assert network.latent_prior.name == "uniform(-1, 1)"
  assert network.latent_prior.spread == pytest.approx(1 / math.sqrt(3))
  key = jax.random.key(3)
  z = np.asarray(latent.draw(network, params, key, (4096,), 6))
  assert np.abs(z).max() <= 1.0
  # Kolmogorov-Smirnov against U(-1, 1): a normal would fail it at once.
  assert stats.kstest(z.ravel(), "uniform", args=(-1, 2)).pvalue > 1e-3
  # The synth stages' 'prior' sampler stands for the same prior.
  sampler = latents_lib.make_sampler(default.get_config().synth, 6)
  np.testing.assert_array_equal(
      np.asarray(latent.draw(network, params, key, (4096,), 6,
                             base=sampler)), z)


def test_the_config_overrides_the_kind_and_normal_is_bit_identical():
  key = jax.random.key(0)
  network, params = plugin_network(latent_prior="truncated_normal",
                                   latent_bound=2.0)
  z = np.asarray(latent.draw(network, params, key, (20000,), 6))
  assert np.abs(z).max() <= 2.0
  assert network.latent_prior.spread == pytest.approx(
      stats.truncnorm(-2, 2).std())
  assert z.std() == pytest.approx(network.latent_prior.spread, rel=0.02)
  # 'normal' draws exactly what the stages drew before priors existed.
  network, params = plugin_network(latent_prior="normal")
  np.testing.assert_array_equal(
      np.asarray(latent.draw(network, params, key, (8,), 6)),
      np.asarray(jax.random.normal(key, (8, 6), jnp.float32)))


def test_a_bad_prior_names_the_field():
  with pytest.raises(errors.UserError, match=r"^config\.generator\."
                     r"latent_prior: 'cauchy' is not one of"):
    plugin_network(latent_prior="cauchy")
  with pytest.raises(errors.UserError,
                     match=r"^config\.generator\.latent_bound: must be"):
    plugin_network(latent_prior="uniform", latent_bound=0.0)


def test_shift_radius_is_in_prior_spreads():
  """The masks of make_candidates are those of h = r spread u (numpy), not
  of h = r u, with a generator whose change is not monotone in the shift:
  G(z)_p = sin(z . w_p)."""
  rng = np.random.default_rng(0)
  weights = rng.standard_normal((4, 8 * 8)).astype(np.float32)
  generate = lambda params, z: jnp.repeat(
      jnp.sin(z @ params).reshape(-1, 8, 8, 1), 3, axis=-1)
  network = latent.Network(generate=generate, abstract_params=None,
                           resolution=8, direction_dim=4,
                           latent_prior=latent.uniform_prior(2.0))
  synth = default.get_config().synth
  synth.update(components_filter=False, size_filter=False,
               histogram_filter=False)
  spec = batch_lib.SynthSpec.from_config(synth)
  z = rng.uniform(-2, 2, (16, 4)).astype(np.float32)
  unit = np.array([0.6, 0.0, -0.8, 0.0], np.float32)
  masks = np.asarray(batch_lib.make_candidates(
      jnp.asarray(z), network, jnp.asarray(weights), jnp.asarray(unit),
      spec).masks)

  def lighting(radius):
    return (np.sin((z + radius * unit) @ weights)
            > np.sin(z @ weights)).reshape(-1, 8, 8)
  spread = 2.0 / math.sqrt(3.0)
  assert (masks == lighting(5.0 * spread)).mean() > 0.999
  assert (masks == lighting(5.0)).mean() < 0.9
  absolute = batch_lib.SynthSpec.from_config(
      dict(synth.to_dict(), shift_units="absolute"))
  masks = np.asarray(batch_lib.make_candidates(
      jnp.asarray(z), network, jnp.asarray(weights), jnp.asarray(unit),
      absolute).masks)
  assert (masks == lighting(5.0)).mean() > 0.999
