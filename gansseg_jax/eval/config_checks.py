"""Range checks of config.eval and config.segment.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.data import sources
from gansseg_jax.eval import baselines
from gansseg_jax.eval import evaluate
from gansseg_jax.eval import stage as eval_stage
from gansseg_jax.eval import wsol
from gansseg_jax.infra import config_rules as rules
from gansseg_jax.train import real


def check_eval(e) -> None:
  rules.apply("eval", e, {
      "min_side": rules.integer_at_least(1),
      "image_size": rules.integer_at_least(1),
      "max_long_side": rules.integer_at_least(1),
      "pad_multiple": rules.integer_at_least(1),
      "batch_size": rules.integer_at_least(1),
      "beta2": rules.positive,
      "thresholds": rules.integer_at_least(1),
      "mask_threshold": rules.within(0, 1),
      "box_thresholds": rules.integer_at_least(1),
      "box_iou": rules.within(0, 1),
      "box_connectivity": rules.one_of(4, 8),
      "pxap_average": rules.one_of(*wsol.PXAP_AVERAGES),
      "metrics_pixel_budget": rules.integer_at_least(1),
      "max_images": rules.integer_at_least(0),
      "baseline_workers": rules.integer_at_least(0),
      "centre_prior_sigma": rules.positive,
  })
  rules.apply("eval.wctr", e.wctr, {
      "pixels_per_superpixel": rules.positive,
      "compactness": rules.positive,
      "boundary_width": rules.integer_at_least(1),
      "max_long_side": rules.integer_at_least(0),
      "short_side": rules.integer_at_least(0),
      "min_short_side": rules.integer_at_least(0),
      "sigma_clr": rules.positive,
      "sigma_bndcon": rules.positive,
      "sigma_spa": rules.positive,
      "mu": rules.non_negative,
      "authors_sigma_spa": rules.positive,
      "authors_bg_lambda": rules.non_negative,
      "authors_high_bndcon": rules.non_negative,
      "authors_high_weight": rules.non_negative,
  })
  evaluate.check_config(e)  # max_long_side >= image_size.
  baselines.check_config(e)  # Predictor, baseline and variant names.
  rules.apply("eval.real", e.real, {
      "steps": rules.integer_at_least(1),
      "batch_size": rules.integer_at_least(1),
      "learning_rate": rules.positive,
      "shift_augment": rules.within(0, 0.5, open_high=True),
      "photometric_augment": rules.within(0, 2),
      "init": rules.one_of(*real.INITS),
      "pseudo_threshold": rules.within(0, 1, open_low=True, open_high=True),
      "min_foreground": rules.within(0, 1),
      "max_foreground": rules.within(0, 1),
  })
  real.check_config(e.real)  # min_foreground < max_foreground.
  if e.datasets:
    sources.parse_dataset_list(e.datasets, "config.eval.datasets")


def check_segment(s) -> None:
  rules.apply("segment", s, {
      "threshold": rules.within(0, 1, open_high=True),
      "connectivity": rules.one_of(4, 8),
      "min_side": rules.integer_at_least(1),
      "backend": rules.one_of(*eval_stage.SEGMENT_BACKENDS),
  })
  rules.inside_workdir("segment.output_dir", s.output_dir)


SECTIONS = (("eval", check_eval), ("segment", check_segment))
