"""Config files: `configs/<name>.py[:argument]` -> ConfigDict, from any cwd.

A config file builds on the repository's (`from configs import default`), so
loading one needs the `configs` package importable. `make_importable` puts
the config file's grandparent first on sys.path (the checkout root for
`configs/x.py`, or a project of the user's with its own configs/); when no
`configs` package is importable then, the checkout's (CHECKOUT_CONFIGS, beside
this gansseg_jax) is registered as `configs`, and nothing else of the
checkout becomes importable. The CLI (`main.parse_flags`), the benchmarks and
the tests all load configs through here.
"""
import importlib.util
import os
import sys

import ml_collections

# The checkout's config package (a checkout or an editable install; a
# symlinked package is followed to its checkout).
CHECKOUT_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.realpath(__file__)))), "configs")
PACKAGE = "configs"


def make_importable(config_file: str) -> None:
  """Lets `config_file` (and any later one) `from configs import ...`."""
  sys.path.insert(0, os.path.dirname(os.path.dirname(
      os.path.abspath(config_file))))
  init = os.path.join(CHECKOUT_CONFIGS, "__init__.py")
  if importlib.util.find_spec(PACKAGE) is None and os.path.isfile(init):
    spec = importlib.util.spec_from_file_location(
        PACKAGE, init, submodule_search_locations=[CHECKOUT_CONFIGS])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


def load(config_arg: str) -> ml_collections.ConfigDict:
  """The ConfigDict of `path[:argument]`, as `--config=path[:argument]` builds it."""
  config_file, _, argument = config_arg.partition(":")
  make_importable(config_file)
  module_name = "_gansseg_config_" + os.path.splitext(
      os.path.basename(config_file))[0]
  spec = importlib.util.spec_from_file_location(module_name, config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(argument) if argument else module.get_config()


def load_checkout(name: str, argument: str = "") -> ml_collections.ConfigDict:
  """The checkout's `configs/<name>.py` (with `:argument` when given)."""
  path = os.path.join(CHECKOUT_CONFIGS, f"{name}.py")
  return load(f"{path}:{argument}" if argument else path)
