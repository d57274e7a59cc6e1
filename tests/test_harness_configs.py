"""Every config loads, overrides only known fields, and documents its command."""
import importlib
import os
import re

import pytest

from configs import default
from gansseg_jax.run import stages

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "configs")


def _is_pipeline_config(file_name):
  """configs/*.py run by gansseg_jax.main: default.py and those importing it."""
  with open(os.path.join(CONFIG_DIR, file_name)) as f:
    return file_name == "default.py" or "from configs import default" in f.read()


NAMES = sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
               if f.endswith(".py") and not f.startswith("_")
               and _is_pipeline_config(f))


def leaves(tree, prefix=""):
  for key, value in tree.items():
    path = f"{prefix}{key}"
    if isinstance(value, dict):
      yield from leaves(value, path + ".")
    else:
      yield path


@pytest.mark.parametrize("name", NAMES)
def test_config_has_exactly_the_default_fields(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  assert set(leaves(config.to_dict())) == set(
      leaves(default.get_config().to_dict()))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "default"])
def test_config_docstring_gives_its_command(name):
  doc = importlib.import_module(f"configs.{name}").__doc__
  assert re.search(rf"--config=configs/{name}\.py", doc) or (
      name == "demo" and "make demo" in doc), doc


@pytest.mark.parametrize("name", NAMES)
def test_config_stages_are_known(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  assert [s.name for s in stages.selected(config)]


def test_every_default_field_has_a_comment():
  source = open(os.path.join(CONFIG_DIR, "default.py")).read()
  for line in source.splitlines():
    if re.match(r"\s+c\.\w+(\.\w+)* = (?!ml_collections)", line):
      assert "#" in line, f"uncommented field: {line.strip()}"


def test_all_stages_is_the_canonical_order():
  assert default.ALL_STAGES.split(",") == [s.name for s in stages.STAGES]


@pytest.mark.parametrize("name", NAMES)
def test_config_stages_are_listed_in_canonical_order(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  assert config.stages.split(",") == [s.name for s in stages.selected(config)]


@pytest.mark.parametrize("name", NAMES)
def test_every_pipeline_that_trains_exports_pairs_to_inspect(name):
  """synth is a stage like the others: a config that trains also writes the
  synthetic pairs its report shows (README: a small fraction of training's
  generator passes)."""
  config = importlib.import_module(f"configs.{name}").get_config()
  names = {s.name for s in stages.selected(config)}
  assert "train" not in names or "synth" in names
