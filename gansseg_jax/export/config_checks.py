"""Range checks of config.model_export.

run/config_checks.py runs them, with every other section's, before
anything is written.
"""
from gansseg_jax.export import saved_model
from gansseg_jax.infra import config_rules as rules


def check_model_export(m) -> None:
  rules.apply("model_export", m, {
      "onnx_opset": rules.integer_at_least(1),
      "tf_platforms": saved_model.platforms_problem,
      "check_images": rules.integer_at_least(1),
      "tolerance": rules.positive,
  })


SECTIONS = (("model_export", check_model_export),)
