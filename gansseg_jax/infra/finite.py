"""Finiteness of a training update, decided on device inside a jitted step.

A step whose loss, gradients or new state hold a NaN or inf must not be
applied (nor saved): `all_finite` reduces every floating-point leaf of a
pytree to one bool scalar and `keep_finite` selects the old state when it is
False, so the check costs one reduction per leaf and no host round trip.
"""
from typing import Any

import jax
import jax.numpy as jnp


def all_finite(tree: Any) -> jax.Array:
  """True iff every floating-point value in `tree` is finite (bool scalar)."""
  checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(checks)) if checks else jnp.array(True)


def keep_finite(finite: jax.Array, new: Any, old: Any) -> Any:
  """`new` where `finite` (a bool scalar), else `old`, leaf by leaf."""
  return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
