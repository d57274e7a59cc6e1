"""Every kind's checkpoint source through `gansseg_jax.main`, as configs/*.py
and docs/generators.md document them: the config checks ask for the field the
source reads (BigBiGAN: torch_checkpoint; ImageNet BigGAN, BigGAN-deep,
StyleGAN2: checkpoint); torch checkpoints are read with numpy, so with torch
hidden a bad file is one line naming it; StyleGAN2's readers convert the
committed fixtures.

main runs in this process (absl flags re-parsed per call), with torch hidden
from imports, so the tests behave the same whether or not torch is installed.
"""
import contextlib
import io
import json
import os
import sys

from absl import flags
from absl import logging
import jax
import numpy as np
import pytest

from configs import stylegan2 as stylegan2_config
from gansseg_jax import main as main_lib
from gansseg_jax.convert import load
from gansseg_jax.convert import stylegan2_pickle
from gansseg_jax.convert import stylegan2_rosinality

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLEGAN2 = os.path.join(ROOT, "tests", "fixtures", "stylegan2")


@pytest.fixture
def run_main(monkeypatch):
  """run_main(config, *flags) -> (exit status, stderr) of one CLI call."""
  monkeypatch.setattr(sys, "path", list(sys.path))
  monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)

  absl_level = logging.get_absl_logger().level

  def reset():  # config_flags defines a flag per override it parses.
    for name in [n for n in flags.FLAGS if n.startswith("config.")]:
      delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
    # unparse_flags leaves absl's logger at WARNING: later tests in this
    # process would see none of its INFO lines.
    logging.get_absl_logger().setLevel(absl_level)

  def run(config: str, *args: str) -> tuple[int, str]:
    reset()
    argv = ["gansseg_jax.main", f"--config={ROOT}/configs/{config}", *args]
    monkeypatch.setattr(sys, "argv", argv)
    stderr, status = io.StringIO(), 0
    with contextlib.redirect_stderr(stderr):
      try:
        main_lib.main(main_lib.parse_flags(argv))
      except SystemExit as e:
        status = e.code
    return status, stderr.getvalue()
  yield run
  reset()


@pytest.fixture
def no_torch(monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails.


def _error_line(stderr: str) -> str:
  lines = [l for l in stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and "Traceback" not in stderr, stderr
  return lines[0]


# (config file: its arch, the field its torch source reads, a checkpoint
# name, a folder?) as each config's docstring and docs/generators.md say.
TORCH_KINDS = [
    ("default.py", "torch_checkpoint", "BigBiGAN_x1.pth", False),  # biggan
    ("biggan_imagenet.py", "checkpoint", "G_ema.pth", False),
    ("biggan_deep.py", "checkpoint", "biggan-deep-128", True),
]


@pytest.mark.parametrize("config, field, name, folder", TORCH_KINDS)
def test_torch_sources_read_without_torch_and_name_a_bad_file(
    tmp_path, run_main, no_torch, config, field, name, folder):
  """Torch checkpoints are read with numpy: with torch hidden, a file that
  is not a torch file is one line naming it, not a missing extra."""
  checkpoint = tmp_path / name
  weights = checkpoint
  if folder:
    checkpoint.mkdir()
    deep_config = json.loads(open(os.path.join(
        ROOT, "tests", "fixtures", "biggan", "deep", "config.json")).read())
    (checkpoint / "config.json").write_text(json.dumps(deep_config))
    weights = checkpoint / "pytorch_model.bin"
  weights.write_bytes(b"not a torch file")
  status, stderr = run_main(
      config, f"--workdir={tmp_path / 'w'}", "--config.stages=convert",
      "--config.generator.source=torch",
      f"--config.generator.{field}={checkpoint}")
  assert status == 2
  line = _error_line(stderr)
  assert str(weights) in line and "not installed" not in line, line


@pytest.mark.parametrize("config, field, name, folder", TORCH_KINDS)
def test_missing_torch_checkpoint_names_the_field_the_kind_reads(
    tmp_path, run_main, config, field, name, folder):
  workdir = tmp_path / "w"
  missing = tmp_path / name
  status, stderr = run_main(
      config, f"--workdir={workdir}", "--config.stages=convert",
      "--config.generator.source=torch",
      f"--config.generator.{field}={missing}")
  assert status == 2
  kind = "file or folder" if folder else "file"
  assert _error_line(stderr).startswith(
      f"error: config.generator.{field}: must be an existing {kind} (")
  assert _error_line(stderr).endswith(f"got '{missing}'")
  assert not workdir.exists()


def test_the_other_kinds_field_is_not_asked_for(tmp_path, run_main, no_torch):
  """ImageNet BigGAN with its checkpoint set is not refused for want of
  BigBiGAN's torch_checkpoint (its own file is what is read)."""
  checkpoint = tmp_path / "G_ema.pth"
  checkpoint.write_bytes(b"x")
  status, stderr = run_main(
      "biggan_imagenet.py", f"--workdir={tmp_path / 'w'}",
      "--config.stages=convert", "--config.generator.source=torch",
      f"--config.generator.checkpoint={checkpoint}")
  assert status == 2 and "torch_checkpoint" not in stderr


@pytest.mark.parametrize("source, name, read", [
    ("pkl", "nvlabs_64.pkl", stylegan2_pickle.read_stylegan2_pickle),
    ("rosinality", "rosinality_64.pt",
     stylegan2_rosinality.read_stylegan2_rosinality),
])
def test_stylegan2_converts_the_fixture_from_the_cli(tmp_path, run_main,
                                                     no_torch, source, name,
                                                     read):
  """configs/stylegan2.py's command with a 64 px fixture, torch hidden: the
  params in W/generator are the reader's (whose images tests/test_stylegan2.py
  checks against the authors' code)."""
  checkpoint = os.path.join(STYLEGAN2, name)
  workdir = tmp_path / "w"
  status, stderr = run_main(
      "stylegan2.py", f"--workdir={workdir}", "--config.stages=convert",
      f"--config.generator.source={source}",
      f"--config.generator.checkpoint={checkpoint}",
      "--config.generator.resolution=64", "--config.generator.z_dim=64")
  assert status == 0, stderr[-2000:]
  with open(workdir / "generator" / "spec.json") as f:
    description = json.load(f)
  assert description["arch"] == "stylegan2"
  assert description["conversion"]["checkpoint"] == checkpoint
  config = stylegan2_config.get_config()
  config.generator.update(source=source, resolution=64, z_dim=64)
  _, params = load.load_generator(config, str(workdir))
  _, expected = read(checkpoint)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(params),
               expected)


def test_stylegan2_missing_checkpoint_is_refused_before_writing(tmp_path,
                                                                run_main):
  workdir = tmp_path / "w"
  status, stderr = run_main(
      "stylegan2.py", f"--workdir={workdir}", "--config.stages=convert")
  assert status == 2
  assert _error_line(stderr) == (
      "error: config.generator.checkpoint: must be an existing file (an "
      "NVlabs network .pkl), got ''")
  assert not workdir.exists()
