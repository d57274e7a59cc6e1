"""Range checks of config.report.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.infra import config_rules as rules


def check_report(r) -> None:
  rules.apply("report", r, {
      "num_samples": rules.integer_at_least(0),
      "num_predictions": rules.integer_at_least(0),
  })


SECTIONS = (("report", check_report),)
