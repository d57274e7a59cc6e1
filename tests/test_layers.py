"""The package's import rules (docs/architecture.md, "Packages"): imports
point downwards only. Read from the source with ast, so a new upward import
fails here before anyone has to notice it in a review."""
import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "gansseg_jax")
STAGES = {"convert", "embed", "directions", "synth", "train", "export",
          "eval", "report"}
# What each layer may import of the project (besides itself).
ALLOWED = {
    "infra": set(),
    "generator_interface": {"infra"},
    "models": {"infra"},
    "data": {"infra"},
    "generators": {"infra", "generator_interface", "models", "convert",
                   "data"},
    "run": STAGES | {"infra", "generator_interface", "models", "data",
                     "generators"},
}
for _stage in STAGES:
  ALLOWED[_stage] = (STAGES - {_stage}) | {"infra", "generator_interface",
                                           "models", "data", "generators"}
ALLOWED["main"] = set(ALLOWED) - {"main"}  # The top: anything below it.


def _project_imports(path):
  """The top-level gansseg_jax packages (or 'main') that `path` imports."""
  tree = ast.parse(open(path).read(), path)
  found = set()
  for node in ast.walk(tree):
    names = []
    if isinstance(node, ast.ImportFrom) and node.module:
      names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    elif isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    for name in names:
      parts = name.split(".")
      if parts[0] == "gansseg_jax" and len(parts) > 1:
        found.add(parts[1])
  return found


def _modules():
  for parent, dirs, files in os.walk(PACKAGE):
    dirs[:] = sorted(d for d in dirs if d not in ("assets", "__pycache__"))
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(parent, name)
        rel = os.path.relpath(path, PACKAGE)
        top = rel.split(os.sep)[0]
        yield (top[:-3] if top.endswith(".py") else top), path


def test_every_package_has_a_rule():
  packages = {top for top, _ in _modules()} - {"__init__"}
  assert packages <= set(ALLOWED), packages - set(ALLOWED)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_downwards(layer):
  wrong = {}
  for top, path in _modules():
    if top != layer:
      continue
    upward = _project_imports(path) - ALLOWED[layer] - {layer}
    if upward:
      wrong[os.path.relpath(path, PACKAGE)] = sorted(upward)
  assert not wrong, wrong
