"""Skipping a test module whose optional dependency is not installed."""
import importlib
import importlib.util

import pytest


def import_unless_absent(module: str):
  """The module; a module-level skip only when it is not installed at all
  (an installed module that fails to import is an error, not a skip)."""
  if importlib.util.find_spec(module) is None:
    pytest.skip(f"{module} is not installed (the `tf` extra)",
                allow_module_level=True)
  return importlib.import_module(module)
