"""Range checks of config.directions and config.score.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.directions import deformator
from gansseg_jax.directions import discover as discover_lib
from gansseg_jax.directions import objectness
from gansseg_jax.directions import ranking
from gansseg_jax.directions import score as score_lib
from gansseg_jax.directions import stage as directions_lib
from gansseg_jax.infra import config_rules as rules
from gansseg_jax.generator_interface import latent


def check_directions(d) -> None:
  rules.apply("directions", d, {
      "source": rules.one_of(*directions_lib.SOURCES),
      "num_directions": rules.integer_at_least(2),
      "deformator": rules.one_of(*deformator.KINDS),
      "deformator_init_std": rules.non_negative,
      "reconstructor": rules.one_of(*discover_lib.RECONSTRUCTORS),
      "lenet_width": rules.integer_at_least(1),
      "resnet_width": rules.integer_at_least(1),
      "bn_momentum": rules.within(0, 1),
      "bn_eps": rules.positive,
      "steps": rules.integer_at_least(1),
      "batch_size": rules.integer_at_least(1),
      "learning_rate": rules.positive,
      "max_shift": rules.positive,
      "min_shift": rules.non_negative,
      "label_weight": rules.non_negative,
      "shift_weight": rules.non_negative,
      "checkpoint_every": rules.integer_at_least(1),
      "keep_checkpoints": rules.integer_at_least(1),
      "strip_every": rules.integer_at_least(0),
      "strip_shifts": rules.integer_at_least(1),
      "strip_rows": rules.integer_at_least(1),
      "log_every": rules.integer_at_least(1),
  })
  if d.min_shift > d.max_shift:
    rules.fail("directions.min_shift",
          f"must be <= config.directions.max_shift ({d.max_shift})",
          d.min_shift)
  if d.label_weight == 0 and d.shift_weight == 0:
    rules.fail("directions.label_weight",
          "and config.directions.shift_weight must not both be 0",
          d.label_weight)


def check_score(s) -> None:
  rules.apply("score", s, {
      "shift_scale": rules.positive,
      "learning_rate": rules.positive,
      "batch_size": rules.integer_at_least(1),
      "steps": rules.integer_at_least(1),
      "init_noise": rules.non_negative,
      "heldout_batches": rules.integer_at_least(1),
      "max_one_class": rules.within(0.5, 1, open_low=True),
      "top_fraction": rules.within(0, 1, open_low=True),
      "top_k": rules.integer_at_least(1),
      "order_by": rules.one_of(*ranking.SHORTLIST_ORDERS),
      "index": rules.integer_at_least(-1),
      "orient_rule": rules.one_of(*score_lib.ORIENT_RULES),
      "shift_units": rules.one_of(*latent.SHIFT_UNITS),
      "choose": rules.one_of(*objectness.CHOICES),
      "max_border": rules.within(0, 1),
      "min_centre_ratio": rules.non_negative,
      "min_centre": rules.within(0, 1),
      "objectness_samples": rules.integer_at_least(1),
      "orient_tolerance": rules.non_negative,
      "candidate_batch": rules.integer_at_least(0),
      "strip_samples": rules.integer_at_least(1),
      "strip_steps": rules.integer_at_least(1),
  })


SECTIONS = (("directions", check_directions), ("score", check_score))
