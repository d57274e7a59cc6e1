"""Range checks of config.synth and config.export.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.infra import config_rules as rules
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import latents
from gansseg_jax.synth import masks


def check_synth(s) -> None:
  rules.apply("synth", s, {
      "latents": rules.one_of(*latents.LATENT_SOURCES),
      "truncation": rules.non_negative,
      "embedding_noise": rules.non_negative,
      "mask_rule": rules.one_of(*masks.MASK_RULES),
      "shift_radius": rules.positive,
      "oversample": rules.at_least(1),
      "max_starved_batches": rules.integer_at_least(1),
      "starved_fraction": rules.within(0, 1),
      "max_foreground": rules.within(0, 1),
      "pass_rate_samples": rules.integer_at_least(0),
      "min_component_ratio": rules.within(0, 1),
  })
  synth_batch.SynthSpec.from_config(s)  # Histogram bins/window, connectivity.


def check_export(e) -> None:
  rules.apply("export", e, {
      "num_pairs": rules.integer_at_least(1),
      "batch_size": rules.integer_at_least(1),
      "max_candidates_factor": rules.at_least(1),
  })
  rules.inside_workdir("export.output_dir", e.output_dir)


SECTIONS = (("synth", check_synth), ("export", check_export))
