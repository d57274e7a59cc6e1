"""Every config field is checked before anything runs (config_checks)."""
import hashlib
import math
import os
import subprocess
import sys

import ml_collections
import pytest

from configs import default
from gansseg_jax.run import config_checks
from gansseg_jax.infra import errors
from gansseg_jax.convert import tfhub_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("default", "test", "demo", "cub", "flowers", "imagenet", "saliency",
           "stylegan2", "biggan_imagenet", "biggan_deep")


def leaves(config, prefix=""):
  """(dotted path, value) of every field, depth first."""
  for key, value in config.items():
    path = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict):
      yield from leaves(value, path + ".")
    else:
      yield path, value


def with_value(path, value):
  config = default.get_config()
  *sections, field = path.split(".")
  node = config
  for part in sections:
    node = node[part]
  with node.ignore_type():
    node[field] = value
  return config


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_pass(name):
  module = __import__(f"configs.{name}", fromlist=["get_config"])
  config_checks.check_values(module.get_config())


NUMERIC = [(path, value) for path, value in leaves(default.get_config())
           if isinstance(value, (int, float, tuple))
           and not isinstance(value, bool)]


def test_every_numeric_field_is_covered():
  """The list below is the default config's; a new field joins it."""
  assert len(NUMERIC) > 90
  assert ("train.learning_rate", 1e-3) in NUMERIC


@pytest.mark.parametrize("path, value", NUMERIC, ids=[p for p, _ in NUMERIC])
def test_every_numeric_field_rejects_nonsense(path, value):
  """NaN for a float, a huge negative for an integer, naming the field."""
  if isinstance(value, tuple):
    bad = (-10**9,)
  elif isinstance(value, float):
    bad = math.nan
  else:
    bad = -10**9
  with pytest.raises(errors.UserError, match=rf"^config\.{path}: "):
    config_checks.check_values(with_value(path, bad))


@pytest.mark.parametrize("path, value, message", [
    ("train.learning_rate", math.nan,
     "config.train.learning_rate: must be finite and > 0, got nan"),
    ("train.learning_rate", -1e-3,
     "config.train.learning_rate: must be finite and > 0, got -0.001"),
    ("directions.learning_rate", math.inf,
     "config.directions.learning_rate: must be finite and > 0, got inf"),
    ("train.steps", -5, "config.train.steps: must be an integer >= 1, got -5"),
    ("train.batch_size", 0,
     "config.train.batch_size: must be an integer >= 1, got 0"),
    ("synth.shift_radius", 0.0,
     "config.synth.shift_radius: must be finite and > 0, got 0.0"),
    ("score.shift_scale", 0.0,
     "config.score.shift_scale: must be finite and > 0, got 0.0"),
    ("synth.max_foreground", 1.5,
     "config.synth.max_foreground: must be in [0, 1], got 1.5"),
    ("unet.bn_eps", 0.0, "config.unet.bn_eps: must be finite and > 0, got 0.0"),
    ("directions.min_shift", 7.0, "config.directions.min_shift: must be <= "
     "config.directions.max_shift (6.0), got 7.0"),
    ("train.synth_chunks", 7, "config.train.synth_chunks: must divide "
     "config.train.batch_size (95), got 7"),
    ("unet.dtype", "float16", "config.unet.dtype: must be one of 'float32', "
     "'bfloat16', got 'float16'"),
    ("export.output_dir", "../out", "config.export.output_dir: must be a "
     "folder name inside the workdir, got '../out'"),
])
def test_message_names_field_rule_and_value(path, value, message):
  with pytest.raises(errors.UserError) as raised:
    config_checks.check_values(with_value(path, value))
  assert str(raised.value) == message


def test_batch_must_split_over_the_devices():
  config = with_value("train.batch_size", 6)
  config_checks.check_devices(config, ["train"], 3)
  with pytest.raises(errors.UserError, match=(
      r"^config\.train\.batch_size: global batch 6 does not split evenly over "
      r"4 devices")):
    config_checks.check_devices(config, ["train"], 4)
  config_checks.check_devices(config, ["eval"], 4)  # Train does not run.


def test_named_files_must_exist_for_the_stages_that_run(tmp_path):
  config = with_value("generator.torch_checkpoint", str(tmp_path / "no.pth"))
  config.generator.source = "torch"
  with pytest.raises(errors.UserError, match=(
      r"^config\.generator\.torch_checkpoint: must be an existing file")):
    config_checks.check_files(config, ["convert", "discover"])
  config_checks.check_files(config, ["discover"])  # Convert is done.

  empty = tmp_path / "photos"
  empty.mkdir()
  (empty / "notes.txt").write_text("not an image")
  config = with_value("segment.input_dir", str(empty))
  with pytest.raises(errors.UserError, match=(
      r"^config\.segment\.input_dir: holds no image files")):
    config_checks.check_files(config, ["segment"])


def test_eval_folders_must_hold_images(tmp_path):
  from PIL import Image
  (tmp_path / "images").mkdir()
  config = with_value("eval.datasets", f"scenes:1:2:32,folder:{tmp_path}")
  with pytest.raises(errors.UserError, match=(
      r"^config\.eval\.datasets: holds no image files .*, got "
      rf"'{tmp_path}/images'")):
    config_checks.check_files(config, ["eval"])
  Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
  with pytest.raises(errors.UserError, match=(
      r"^config\.eval\.datasets: must be an existing folder of images, got "
      rf"'{tmp_path}/masks'")):
    config_checks.check_files(config, ["eval"])
  config_checks.check_files(config, ["train"])  # Eval does not run.
  with pytest.raises(errors.UserError, match=r"^config\.eval\.datasets: empty"):
    config_checks.check_files(with_value("eval.datasets", ""), ["eval"])


def test_tfhub_handle_cached_or_reachable(tmp_path, monkeypatch):
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
  handle = "https://tfhub.invalid/deepmind/bigbigan-resnet50/1"  # RFC 2606.
  problem = tfhub_cache.unavailable(handle)
  assert problem and problem.startswith("tfhub.invalid:443: ")
  config = with_value("generator.handle", handle)
  with pytest.raises(errors.UserError, match=(
      r"^config\.generator\.handle: https://tfhub\.invalid/\S+ is not in the "
      r"TF-Hub cache and cannot be downloaded")):
    config_checks.check_files(config, ["convert"])
  # tensorflow_hub's cache layout: <cache>/<sha1 of the URL>/saved_model.pb.
  module = tmp_path / hashlib.sha1(handle.encode()).hexdigest()
  module.mkdir()
  (module / "saved_model.pb").write_bytes(b"")
  assert tfhub_cache.unavailable(handle) is None
  config_checks.check_files(config, ["convert"])


def run_main(tmp_path, config, *overrides, env=None):
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main", f"--config={ROOT}/{config}",
       f"--workdir={workdir}", *overrides],
      capture_output=True, text=True, cwd=ROOT, timeout=300,
      env={**os.environ, **(env or {})})
  return proc, workdir


def test_nan_learning_rate_stops_before_the_workdir_exists(tmp_path):
  proc, workdir = run_main(tmp_path, "configs/test.py",
                           "--config.train.learning_rate=nan")
  assert proc.returncode == 2
  assert proc.stderr.splitlines() == [
      "error: config.train.learning_rate: must be finite and > 0, got nan"]
  assert not workdir.exists()


def test_offline_tfhub_handle_stops_before_the_workdir_exists(tmp_path):
  """configs/cub.py where the module is neither cached nor downloadable."""
  proc, workdir = run_main(
      tmp_path, "configs/cub.py",
      "--config.generator.handle=https://tfhub.invalid/bigbigan-resnet50/1",
      env={"TFHUB_CACHE_DIR": str(tmp_path / "empty_cache")})
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      "error: config.generator.handle: https://tfhub.invalid/bigbigan-resnet50"
      "/1 is not in the TF-Hub cache and cannot be downloaded"), lines
  assert not workdir.exists()
  assert not (tmp_path / "empty_cache").exists()
