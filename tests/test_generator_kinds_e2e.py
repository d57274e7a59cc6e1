"""Every generator kind through convert -> discover -> score -> synth -> train
on a tiny random-weight network (in-process, the stage runner of main).

Each run checks what the plug-in interface promises: directions live in the
kind's direction space (not its latent, which carries the class), the
stages run on the kind's latents, and the outputs are where they belong.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import test as test_config
from gansseg_jax.run import stages

# Each run compiles every stage: a minute or more on a loaded 2-core CPU.
pytestmark = pytest.mark.slow

STAGES = "convert,discover,score,synth,train"


def tiny(arch: str, source: str = "random", **generator):
  """configs/test.py shrunk further: every stage a few steps."""
  c = test_config.get_config()
  c.stages = STAGES
  c.generator.arch, c.generator.source = arch, source
  c.generator.update(generator)
  c.directions.steps = 2
  c.directions.checkpoint_every = c.directions.log_every = 2
  c.directions.strip_every = 0
  c.directions.strip_rows = 4
  c.score.steps = 2
  c.score.strip_samples = 1
  c.score.strip_steps = 1
  c.export.num_pairs = 2
  c.train.steps = 2
  c.train.decay_steps = (1,)
  c.train.log_every = c.train.eval_every = c.train.checkpoint_every = 2
  c.train.holdout_size = 8
  # Random weights keep any share of pairs (BigGAN-deep's: none); these runs
  # check every stage's plumbing, not the filters.
  c.train.min_kept_fraction = 0.0
  c.train.max_border = 1.0
  return c


def check_outputs(workdir, direction_dim: int, num_directions: int):
  directions = np.load(os.path.join(workdir, "directions.npy"))
  assert directions.shape == (num_directions, direction_dim)
  chosen = np.load(os.path.join(workdir, "bg_direction.npy"))
  assert chosen.shape == (direction_dim,)
  np.testing.assert_allclose(np.linalg.norm(chosen), 1.0, rtol=1e-5)
  with open(os.path.join(workdir, "synthetic", "index.csv")) as f:
    assert len(f.read().splitlines()) >= 2
  assert os.path.isdir(os.path.join(workdir, "unet"))
  markers = set(os.listdir(os.path.join(workdir, "stages")))
  assert markers >= {f"{s}.json" for s in STAGES.split(",")}


@pytest.fixture(autouse=True)
def no_tensorboard(monkeypatch):
  monkeypatch.setitem(sys.modules, "clu", None)  # metrics.jsonl only.


def test_your_own_generator_in_w_space_with_two_classes(tmp_path):
  """docs/generators.md's worked example (examples/tiny_generator.py)."""
  config = tiny("examples.tiny_generator:KIND", z_dim=8, ch=4,
                latent_space="w", classes="1,3")
  config.directions.source = "sefa"
  stages.run(config, str(tmp_path))
  check_outputs(tmp_path, direction_dim=8, num_directions=8)


def test_a_plugin_dcgan_with_uniform_latents_needs_no_hand_set_shift(
    tmp_path):
  """tests/uniform_dcgan_kind.py declares z ~ U(-1, 1): the default shift
  lengths (5 prior spreads) fit it; nothing in the config names the prior."""
  config = tiny("uniform_dcgan_kind:KIND", z_dim=8, ch=2, resolution=16)
  config.directions.source = "sefa"
  default = test_config.get_config()
  assert config.synth.shift_radius == default.synth.shift_radius == 5.0
  assert config.score.shift_scale == default.score.shift_scale == 5.0
  assert config.generator.latent_prior == ""
  stages.run(config, str(tmp_path))
  check_outputs(tmp_path, direction_dim=8, num_directions=8)


def test_bigbigan_random(tmp_path):
  config = tiny("biggan", z_dim=24)
  stages.run(config, str(tmp_path))
  check_outputs(tmp_path, direction_dim=24, num_directions=8)


def test_imagenet_biggan_random_with_one_class(tmp_path):
  config = tiny("biggan_imagenet", z_dim=24, ch=4, shared_dim=8,
                num_classes=10, classes="7", truncation=0.5)
  stages.run(config, str(tmp_path))
  check_outputs(tmp_path, direction_dim=24, num_directions=8)


def test_biggan_deep_random_with_all_classes(tmp_path):
  config = tiny("biggan_deep", z_dim=8, ch=4, num_classes=10)
  stages.run(config, str(tmp_path))
  check_outputs(tmp_path, direction_dim=8, num_directions=8)


def test_stylegan2_random_in_w_space_with_random_noise(tmp_path):
  """Per-latent noise (a trailing seed coordinate) through every stage; the
  const noise runs in the pickle test below."""
  config = tiny("stylegan2", z_dim=8, ch=4, latent_space="w",
                truncation=0.7, noise_mode="random")
  config.synth.mask_rule = "affine"
  stages.run(config, str(tmp_path))
  check_outputs(tmp_path, direction_dim=8, num_directions=8)


def test_dcgan_from_a_nested_torch_checkpoint(tmp_path):
  """A torch DCGAN-tutorial generator (tests/fixtures/dcgan/named64.tar,
  tools/make_dcgan_golden.py: netG_state_dict beside a discriminator)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = tiny("dcgan", "torch", z_dim=16, resolution=64,
                checkpoint=os.path.join(root, "tests", "fixtures", "dcgan",
                                        "named64.tar"))
  config.directions.source = "sefa"
  stages.run(config, str(tmp_path))
  check_outputs(tmp_path, direction_dim=16, num_directions=8)


def test_main_runs_every_stage_of_configs_stylegan2_on_an_nvlabs_pickle(
    tmp_path):
  """The issue's command on the fabricated 64 px pickle of the reference
  code (tests/fixtures/stylegan2/nvlabs_64.pkl, tools/make_stylegan2_golden.py),
  with every stage shrunk to a few steps."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  pickle = os.path.join(root, "tests", "fixtures", "stylegan2", "nvlabs_64.pkl")
  shrink = [
      "stages=convert,discover,score,synth,train,eval,report",
      "generator.resolution=64", "generator.z_dim=64",
      "directions.num_directions=8", "directions.reconstructor=lenet",
      "directions.steps=2", "directions.batch_size=4",
      "directions.checkpoint_every=2", "directions.log_every=2",
      "directions.strip_every=0", "directions.strip_rows=4",
      "score.steps=2", "score.heldout_batches=1", "score.strip_samples=1",
      "score.strip_steps=1", "export.num_pairs=2",
      "export.include_rejected=True", "unet.width=4", "train.steps=2",
      "train.batch_size=4", "train.decay_steps=(1,)", "train.log_every=2",
      "train.eval_every=2", "train.checkpoint_every=2",
      "train.holdout_size=4", "eval.datasets=scenes:5:4:32",
      "eval.image_size=32", "report.num_samples=2", "report.num_predictions=2",
  ]
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={root}/configs/stylegan2.py", f"--workdir={tmp_path}",
       f"--config.generator.checkpoint={pickle}"]
      + [f"--config.{flag}" for flag in shrink],
      capture_output=True, text=True, cwd=root, timeout=900,
      env=dict(os.environ, PYTHONPATH=root))
  assert proc.returncode == 0, proc.stderr[-3000:]
  check_outputs(tmp_path, direction_dim=64, num_directions=8)
  assert (tmp_path / "report.html").exists() and (tmp_path / "eval.json").exists()
