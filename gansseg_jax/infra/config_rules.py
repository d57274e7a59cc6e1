"""Rules for config fields: each says what a value must be, or passes.

The stage packages check their own config sections with these
(`<package>/config_checks.py`); the runner calls them all before anything is
written (run/config_checks.py). Each failure is one line naming the field:
`config.train.learning_rate: must be finite and > 0, got nan`.
"""
import math
import os
from typing import Any, Callable, Optional

import ml_collections

from gansseg_jax.infra import errors

Rule = Callable[[Any], Optional[str]]  # None when the value passes.

DTYPES = ("float32", "bfloat16")


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive(value) -> Optional[str]:
  if not (_number(value) and math.isfinite(value) and value > 0):
    return "must be finite and > 0"


def non_negative(value) -> Optional[str]:
  if not (_number(value) and math.isfinite(value) and value >= 0):
    return "must be finite and >= 0"


def at_least(low: float) -> Rule:
  def rule(value):
    if not (_number(value) and math.isfinite(value) and value >= low):
      return f"must be finite and >= {low:g}"
  return rule


def integer_at_least(low: int) -> Rule:
  def rule(value):
    if not (isinstance(value, int) and not isinstance(value, bool)
            and value >= low):
      return f"must be an integer >= {low}"
  return rule


def within(low: float, high: float, open_low=False, open_high=False) -> Rule:
  text = (f"{'(' if open_low else '['}{low:g}, {high:g}"
          f"{')' if open_high else ']'}")
  def rule(value):
    ok = (_number(value) and math.isfinite(value)
          and (value > low if open_low else value >= low)
          and (value < high if open_high else value <= high))
    if not ok:
      return f"must be in {text}"
  return rule


def one_of(*choices) -> Rule:
  def rule(value):
    if value not in choices:
      return f"must be one of {', '.join(repr(c) for c in choices)}"
  return rule


def apply(section: str, values: ml_collections.ConfigDict,
           rules: dict[str, Rule]) -> None:
  """Each field of `values` (config section `section`) against its rule."""
  for field, rule in rules.items():
    problem = rule(values[field])
    if problem:
      raise errors.UserError(
          f"config.{section}.{field}: {problem}, got {values[field]!r}")


def fail(field: str, problem: str, value) -> None:
  raise errors.UserError(f"config.{field}: {problem}, got {value!r}")


def inside_workdir(field: str, name: str) -> None:
  parts = os.path.normpath(name).split(os.sep)
  if not name or os.path.isabs(name) or parts[0] in (".", ".."):
    fail(field, "must be a folder name inside the workdir", name)
