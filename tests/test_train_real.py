"""U-Nets trained on real photos: disjointness, supervised and self-training."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
from scipy import ndimage

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.eval import stage as eval_stage
from gansseg_jax.train import real

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _planted(root, count, side=32, seed=0):
  """root/images/NN.png: noise with a bright square; root/labels/NN.png:
  class 1 on the square, 2 on a band at the top, 0 elsewhere."""
  rng = np.random.default_rng(seed)
  os.makedirs(f"{root}/images")
  os.makedirs(f"{root}/labels")
  squares = []
  for i in range(count):
    image = rng.integers(0, 90, (side, side, 3)).astype(np.uint8)
    labels = np.zeros((side, side), np.uint8)
    labels[:3] = 2
    size = int(rng.integers(side // 4, side // 2))
    top, left = rng.integers(4, side - size, 2)
    labels[top:top + size, left:left + size] = 1
    image[labels == 1] += 150
    Image.fromarray(image).save(f"{root}/images/{i:02d}.png")
    Image.fromarray(labels).save(f"{root}/labels/{i:02d}.png")
    squares.append(labels == 1)
  return np.stack(squares)


def _entry(root, *options):
  return ":".join([f"folder:{root}/images:{root}/labels", *options])


def test_overlapping_training_and_eval_photos_stop_the_run(tmp_path):
  root = str(tmp_path / "photos")
  _planted(root, 4)
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={ROOT}/configs/test.py", f"--workdir={workdir}",
       "--config.stages=eval", "--config.eval.predictor=centre_prior",
       "--config.eval.baselines=",
       f"--config.eval.datasets={_entry(root, 'classes=1', 'part=2/2')}",
       f"--config.eval.real.dataset={_entry(root, 'part=2/2')}"],
      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith(
      "error: config.eval.real.dataset: 2 of its 2 training photos are also "
      "evaluated in "), lines
  assert not workdir.exists()


def test_disjoint_halves_pass_and_any_shared_photo_is_refused(tmp_path):
  root = str(tmp_path / "photos")
  _planted(root, 5)
  config = default.get_config()
  config.eval.datasets = (f"{_entry(root, 'classes=1', 'part=2/2')},"
                          f"{_entry(root, 'classes=1-2', 'part=2/2')}")
  config.eval.real.dataset = _entry(root, "part=1/2")
  real.check_disjoint(config.eval)  # 00, 01 against 02, 03, 04.
  # A folder without masks: all its images.
  config.eval.real.dataset = f"folder:{root}/images:{root}/none"
  with pytest.raises(errors.UserError, match=r"3 of its 5 training photos"):
    real.check_disjoint(config.eval)


def test_supervised_learns_each_eval_target_from_the_training_half():
  assert real.training_entry("folder:a:b:part=1/2", "folder:a:b:classes=head"
                             ":part=2/2") == "folder:a:b:part=1/2:classes=head"
  assert real.training_entry("folder:a:b:classes=face:part=1/2",
                             "folder:a:b:part=2/2") == (
                                 "folder:a:b:classes=face:part=1/2")
  assert real.training_entry("folder:a:b:classes=1", "ecssd") == (
      "folder:a:b:classes=1")


def _small_config(root):
  config = default.get_config()
  config.unet.width = 4
  config.eval.image_size = 32
  config.eval.datasets = _entry(root, "classes=1", "part=2/2")
  config.eval.real.dataset = _entry(root, "part=1/2")
  config.eval.real.steps = 60
  config.eval.real.batch_size = 8
  config.eval.real.learning_rate = 3e-3
  return config


def _iou(probs, masks):
  pred = np.asarray(probs) > 0.5
  return float(np.sum(pred & masks) / np.sum(pred | masks))


@pytest.mark.slow
def test_supervised_unet_learns_planted_squares(tmp_path):
  root = str(tmp_path / "photos")
  squares = _planted(root, 24)
  config = _small_config(root)
  entry = config.eval.datasets
  predict = real.make_predictor(real.SUPERVISED, config, str(tmp_path), entry)
  test_images = np.stack([np.asarray(Image.open(f"{root}/images/{i:02d}.png"))
                          for i in range(12, 24)])
  probs = predict(test_images.astype(np.float32) / 127.5 - 1)
  assert _iou(probs, squares[12:]) > 0.8  # Held-out half, unseen photos.


def test_pseudo_masks_are_filtered_filled_and_screened():
  config = default.get_config()
  config.eval.real.min_foreground = 0.05
  config.eval.real.max_foreground = 0.5
  rng = np.random.default_rng(3)
  probs = np.zeros((4, 16, 16), np.float32)
  probs[0, 4:12, 4:12] = 0.9
  probs[0, 7, 7] = 0.1  # A hole: filled.
  probs[0, 0, 15] = 0.8  # A speck: removed by the components filter.
  probs[1, 0:1, 0:3] = 0.9  # 3 pixels: too small, dropped.
  probs[2] = 0.95  # Everything: too large, dropped.
  probs[3] = rng.random((16, 16)) * 0.4
  probs[3, 2:8, 2:14] = 0.7
  photos = rng.random((4, 16, 16, 3)).astype(np.float32)
  kept, masks = real.pseudo_masks(lambda x: probs[:len(x)] if len(x) == 4
                                  else None, photos, config)
  np.testing.assert_array_equal(kept, photos[[0, 3]])
  expected0 = ndimage.binary_fill_holes(probs[0, :, :] > 0.5)
  expected0[0, 15] = False
  np.testing.assert_array_equal(masks[0], expected0)
  np.testing.assert_array_equal(masks[1], probs[3] > 0.5)


def test_real_trained_results_keep_their_own_settings():
  config = default.get_config()
  settings = eval_stage.result_settings(config.eval, "selftrain")
  assert settings["real"] == config.eval.real.to_dict()
  assert "real" not in eval_stage.result_settings(config.eval, "unet")
  assert "wctr" not in settings
