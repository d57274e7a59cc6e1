"""Range checks of config.embed.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.embed import stage
from gansseg_jax.infra import config_rules as rules


def check_embed(e) -> None:
  rules.apply("embed", e, {
      "source": rules.one_of(*stage.SOURCES),
      "output": rules.one_of(*stage.OUTPUTS),
      "batch_size": rules.integer_at_least(1),
      "image_size": rules.integer_at_least(1),
      "parts_every": rules.integer_at_least(1),
  })


SECTIONS = (("embed", check_embed),)
