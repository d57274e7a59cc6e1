"""Range checks of config.unet and config.train.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.infra import config_rules as rules


def check_unet(u) -> None:
  rules.apply("unet", u, {
      "width": rules.integer_at_least(1),
      "dtype": rules.one_of(*rules.DTYPES),
      "bn_momentum": rules.within(0, 1),
      "bn_eps": rules.positive,
  })


def check_train(t) -> None:
  rules.apply("train", t, {
      "steps": rules.integer_at_least(1),
      "batch_size": rules.integer_at_least(1),
      "learning_rate": rules.positive,
      "decay_factor": rules.positive,
      "log_every": rules.integer_at_least(1),
      "eval_every": rules.integer_at_least(1),
      "checkpoint_every": rules.integer_at_least(1),
      "steps_per_call": rules.integer_at_least(1),
      "keep_checkpoints": rules.integer_at_least(1),
      "holdout_size": rules.integer_at_least(1),
      "holdout_seed": rules.integer_at_least(0),
      "shift_augment": rules.within(0, 1, open_high=True),
      "photometric_augment": rules.within(0, 2),
      "synth_chunks": rules.integer_at_least(0),
      "min_kept_fraction": rules.within(0, 1),
      "max_border": rules.within(0, 1),
  })
  steps = list(t.decay_steps)
  if not all(isinstance(s, int) and s >= 1 for s in steps):
    rules.fail("train.decay_steps", "must be integers >= 1", tuple(steps))
  if t.synth_chunks and t.batch_size % t.synth_chunks:
    rules.fail("train.synth_chunks",
          f"must divide config.train.batch_size ({t.batch_size})",
          t.synth_chunks)


SECTIONS = (("unet", check_unet), ("train", check_train))
