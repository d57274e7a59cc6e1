"""The README's recipes: the offline ones run as written (on configs/test.py
instead of configs/demo.py, in a scratch folder), the others name files,
scripts, extras and config fields that exist."""
import ast
import os
import re
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from configs import default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()
RECIPE = re.compile(r"<!-- recipe: (offline )?([\w-]+) -->\n```\n(.*?)```",
                    re.DOTALL)
RECIPES = {name: (bool(offline), [l for l in body.splitlines() if l.strip()])
           for offline, name, body in RECIPE.findall(README)}


def test_the_readme_lists_its_recipes():
  assert {"demo", "segment", "evaluate", "convert-tfhub", "convert-torch",
          "cub", "flowers", "saliency", "multigpu", "slurm",
          "tpu", "faces"} <= set(RECIPES)
  assert {n for n, (offline, _) in RECIPES.items() if offline} == {
      "segment", "evaluate"}


def test_the_two_commands_come_first_and_exist_in_the_makefile():
  first_block = README.split("```")[1]
  assert first_block.split()[:2] == ["make", "demo"]
  assert "\nmake test" in first_block
  makefile = open(os.path.join(ROOT, "Makefile")).read()
  assert re.search(r"^demo:", makefile, re.M)
  assert re.search(r"^test:", makefile, re.M)


def test_demo_recipe_is_what_make_demo_runs():
  (command,) = RECIPES["demo"][1]
  makefile = open(os.path.join(ROOT, "Makefile")).read()
  workdir = re.search(r"^WORKDIR \?= (\S+)$", makefile, re.M).group(1)
  run = re.search(r"^\t\$\(PY\) (-m gansseg_jax\.main .*) \$\(DEMO_ARGS\)$",
                  makefile, re.M).group(1)
  assert command == "python " + run.replace("$(WORKDIR)", workdir)


def _extras() -> set[str]:
  tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
  for node in ast.walk(tree):
    if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        and any(getattr(t, "id", "") == "EXTRAS" for t in node.targets)):
      return {k.value for k in node.value.keys}
  raise AssertionError("setup.py has no EXTRAS dict")


def has_field(config, dotted: str) -> bool:
  node = config
  for part in dotted.split("."):
    if part not in node:
      return False
    node = node[part]
  return True


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_names_real_things(name):
  config = default.get_config()
  extras = _extras()
  for line in RECIPES[name][1]:
    words = shlex.split(line)
    for word in words:
      if word.startswith("--config="):
        assert os.path.isfile(os.path.join(ROOT, word.split("=", 1)[1])), word
      elif word.startswith("--config."):
        field = word[len("--config."):].split("=", 1)[0]
        assert has_field(config, field), word
      elif word.startswith("launch/"):
        assert os.access(os.path.join(ROOT, word), os.X_OK), word
    if words[:3] == ["pip", "install", "-e"]:
      spec = re.fullmatch(r"\.(?:\[(\w+)\])?", words[3])
      assert spec and (spec.group(1) is None or spec.group(1) in extras), line
    if words[0] == "python":
      assert words[1:3] == ["-m", "gansseg_jax.main"], line


def test_no_path_outside_the_repository():
  for top in ("README.md", "docs", "gansseg_jax", "configs", "Makefile"):
    path = os.path.join(ROOT, top)
    files = [path] if os.path.isfile(path) else [
        os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
        if f.endswith((".py", ".md", ".txt", ".json", ".sh"))]
    for file in files:
      text = open(file, errors="replace").read()
      assert "shared/" not in text, file


def _run(line: str, cwd: str) -> subprocess.CompletedProcess:
  """A README command with configs/demo.py swapped for configs/test.py."""
  words = shlex.split(line.replace("configs/demo.py", "configs/test.py"))
  assert words[0] == "python"
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable] + words[1:], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
  """A folder like a checkout after `make demo`: configs/, and in runs/demo/
  an untrained U-Net of configs/test.py's size (the recipes need only that;
  its quality is not what they test)."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from gansseg_jax.train import load  # pylint: disable=g-import-not-at-top
  from gansseg_jax.train import segmentation  # pylint: disable=g-import-not-at-top
  import stage_markers  # pylint: disable=g-import-not-at-top
  cwd = tmp_path_factory.mktemp("checkout")
  os.symlink(os.path.join(ROOT, "configs"), cwd / "configs")
  # Shapes only (no eager init: fast), filled from numpy: small random
  # weights, BatchNorm means 0 and variances 1.
  abstract = nnx.eval_shape(
      lambda: segmentation.new_unet(test_config.get_config().unet,
                                    nnx.Rngs(0)))
  _, params, stats = nnx.split(abstract, nnx.Param, nnx.BatchStat)
  rng = np.random.default_rng(0)
  params = jax.tree.map(
      lambda leaf: (0.1 * rng.standard_normal(leaf.shape)).astype(leaf.dtype),
      nnx.to_pure_dict(params))
  stats = jax.tree_util.tree_map_with_path(
      lambda path, leaf: np.full(
          leaf.shape, 1.0 if "var" in jax.tree_util.keystr(path) else 0.0,
          leaf.dtype),
      nnx.to_pure_dict(stats))
  load.save_unet(str(cwd / "runs" / "demo"),
                 {"params": params, "batch_stats": stats})
  # The record `train` leaves: a U-Net without one is refused as unverified.
  stage_markers.mark_done(cwd / "runs" / "demo", "train",
                          test_config.get_config())
  return cwd


def _write_image(path, seed, size=(40, 28)):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(seed)
  Image.fromarray(rng.integers(0, 255, size + (3,), dtype=np.uint8)).save(path)


def test_offline_recipe_segment(scratch):
  for i, ext in enumerate(("png", "jpg")):
    _write_image(str(scratch / "my_photos" / f"photo{i}.{ext}"), i)
  (line,) = RECIPES["segment"][1]
  proc = _run(line, str(scratch))
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = scratch / "runs" / "demo" / "segment"
  for stem in ("photo0", "photo1"):
    mask = np.asarray(Image.open(out / f"{stem}_mask.png"))
    assert mask.shape[:2] == (40, 28)
    for suffix in ("_prob.png", "_cutout.png", ".json"):
      assert (out / (stem + suffix)).exists(), stem + suffix
  assert (out / "summary.json").exists()


def test_offline_recipe_evaluate(scratch):
  for i in range(3):
    _write_image(str(scratch / "datasets" / "my_set" / "images" / f"{i}.png"),
                 10 + i)
    mask = np.zeros((40, 28), np.uint8)
    mask[10:30, 8:20] = 255
    path = scratch / "datasets" / "my_set" / "masks" / f"{i}.png"
    os.makedirs(path.parent, exist_ok=True)
    Image.fromarray(mask).save(path)
  demo_eval = _run("python -m gansseg_jax.main --config=configs/demo.py "
                   "--workdir=runs/demo --config.stages=eval,report",
                   str(scratch))
  assert demo_eval.returncode == 0, demo_eval.stderr[-3000:]
  (line,) = RECIPES["evaluate"][1]
  proc = _run(line, str(scratch))
  assert proc.returncode == 0, proc.stderr[-3000:]
  page = (scratch / "runs" / "demo" / "report.html").read_text()
  assert "my_set" in page and "scenes" in page


def test_every_config_field_the_docs_name_exists():
  config = default.get_config()
  config.model = {"g_norm": None}  # configs/demo_gan.py's own section.
  texts = [README] + [open(os.path.join(ROOT, "docs", f)).read()
                      for f in os.listdir(os.path.join(ROOT, "docs"))
                      if f.endswith(".md")]
  named = {m for t in texts
           for m in re.findall(r"config\.([a-z_]+(?:\.[a-z_0-9]+)+)", t)}
  assert len(named) > 40
  # `--config.a.b=value` forms, and the misspelt field of an error example.
  placeholders = {"a.b", "section.field", "train.stepz"}
  missing = sorted(f for f in named - placeholders
                   if not has_field(config, f))
  assert not missing, missing
