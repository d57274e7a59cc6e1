"""Range checks of config.generator and config.convert.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.infra import config_rules as rules
from gansseg_jax.models import dcgan
from gansseg_jax.generator_interface import kinds


def check_generator(g) -> None:
  kind = kinds.resolve(kinds.kind_name(g))
  kinds.check_options(kind, kinds.build_options(g))
  rules.apply("generator", g, {
      "source": rules.one_of(*kind.sources),
      "truncation": rules.positive,
      "latent_bound": rules.positive,
      "num_classes": rules.integer_at_least(1),
      "resolution": rules.integer_at_least(1),
      "z_dim": rules.integer_at_least(1),
      "ch": rules.integer_at_least(1),
      "shared_dim": rules.integer_at_least(1),
      "attention_resolution": rules.integer_at_least(0),
      "bn_eps": rules.positive,
      "sn_eps": rules.positive,
      "dtype": rules.one_of(*rules.DTYPES),
      "output_activation": rules.one_of(*dcgan.OUTPUTS),
  })


def check_convert(v) -> None:
  rules.apply("convert", v, {
      "tolerance": rules.positive,
      "bn_stats": rules.one_of("raw", "divide", "auto"),
      "sn_normalize": rules.one_of("max", "add", "auto"),
      "verify_batch": rules.integer_at_least(1),
      "encoder_bn_eps": rules.positive,
  })


SECTIONS = (("generator", check_generator), ("convert", check_convert))
