"""Planted answer: the sign `score` gives a direction (config.score.orient_rule).

An analytic generator (16 px) draws a disc of a given radius on a textured
background; latent coordinate 0 lightens the disc and darkens the background
(the planted object direction), coordinate 1 does nothing. The disc never
touches the border. With a small disc both rules orient +e0 and -e0 to the
same shift, the one that lightens the disc. With a large centred disc (the
object covers ~64% of the frame, as a face does) the 'minority' rule takes
the brightening majority for background and inverts the direction; the
'border' rule still keeps the disc as the object.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.directions import score as score_lib

SIZE = 16


def disc_generator(radius, params, z):
  """z [B, 2] -> [B, 16, 16, 3]: z_0 lightens the disc, darkens the rest."""
  yy, xx = jnp.meshgrid(jnp.linspace(0, 1, SIZE), jnp.linspace(0, 1, SIZE),
                        indexing="ij")
  disc = (jnp.sqrt((xx - 0.5) ** 2 + (yy - 0.5) ** 2) < radius)[..., None]
  texture = 0.3 * jnp.sin(2 * jnp.pi * (2 * xx + yy))[..., None]
  light = 0.1 * z[:, 0, None, None, None]
  image = jnp.where(disc, 0.2 + texture + light, -0.1 + texture - light)
  return jnp.clip(image + 0.0 * params["unused"], -1.0, 1.0)


def spec_for(rule):
  score = default.get_config().score
  score.steps, score.batch_size, score.heldout_batches = 3, 2, 2
  score.orient_rule = rule
  return score_lib.ScoreSpec.from_config(score)


def signs(radius, rule):
  """Signs given to +e0 and -e0 (and the area the lighting rule marks)."""
  directions = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)
  scores = score_lib.score_candidates(
      functools.partial(disc_generator, radius), {"unused": jnp.zeros(())},
      directions, jax.random.key(0), spec_for(rule), progress_every_s=1e9)
  return scores


def oriented_lightens_disc(scores):
  """Oriented shift sign * direction lightens the disc: sign * d_0 > 0."""
  return [s * d > 0 for s, d in zip(scores.sign, (1.0, -1.0))]


@pytest.mark.parametrize("rule", ["border", "minority"])
def test_small_object_both_rules_light_the_object(rule):
  scores = signs(0.2, rule)  # The disc covers ~12% of the frame.
  assert oriented_lightens_disc(scores) == [True, True]
  np.testing.assert_array_less(scores.lighting_area, 0.5)
  np.testing.assert_array_equal(scores.border_lighting, 0.0)


def test_large_centred_object_border_rule_lights_the_object():
  scores = signs(0.45, "border")  # ~64% of the frame, off the border.
  assert oriented_lightens_disc(scores) == [True, True]
  np.testing.assert_array_less(0.5, scores.lighting_area)
  np.testing.assert_array_equal(scores.border_lighting, 0.0)
  np.testing.assert_array_less(0.5, scores.inner_lighting)


def test_large_centred_object_minority_rule_inverts_it():
  """The defect the border rule fixes: kept available by name."""
  scores = signs(0.45, "minority")
  assert oriented_lightens_disc(scores) == [False, False]
  np.testing.assert_array_equal(scores.border_lighting, 1.0)


def test_border_pixel_mask_is_the_outer_ring():
  border = score_lib.border_pixel_mask((4, 5))
  expected = np.ones((4, 5), bool)
  expected[1:3, 1:4] = False
  np.testing.assert_array_equal(border, expected)


def test_unknown_rule_is_a_user_error():
  score = default.get_config().score
  score.orient_rule = "centre"
  with pytest.raises(errors.UserError, match="config.score.orient_rule"):
    score_lib.ScoreSpec.from_config(score)
