"""A GAN someone else trained, through the method with no hand tuning.

configs/faces.py on the pretrained DCGAN of the PyPI package
gan-face-generate 1.1.1 (`make weights` fetches the wheel; skipped without
it): convert, discover, score and synth as configured, no index, sign or
threshold given. In the 256 pairs the synth stage writes and keeps, the face
must be the foreground: mean foreground share of the border pixels (the
outermost row and column on each side) <= 0.2 and of the central quarter
(the middle half of the rows and of the columns) >= 0.7, counted here from
the stored mask PNGs (measured: about 0.14 / 0.88). An inverted direction
(what the 'minority' orientation rule chose on this GAN) scores about
0.60 / 0.12. The direction is chosen by config.score.choose=objectness and
must be object-like in ranking.csv.
"""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import faces

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEEL = os.path.join(REPO, "weights",
                     "gan_face_generate-1.1.1-py3-none-any.whl")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(WHEEL),
                       reason=f"{WHEEL} absent (`make weights` fetches it)"),
]


def placement(mask: np.ndarray) -> tuple[float, float]:
  """Foreground shares of the border ring and of the central quarter."""
  h, w = mask.shape
  ring = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
  centre = mask[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2]
  return ring.mean(), centre.mean()


def test_placement_by_hand():
  mask = np.zeros((8, 8), bool)
  mask[2:6, 2:6] = True  # Exactly the central quarter.
  assert placement(mask) == (0.0, 1.0)
  assert placement(~mask) == (1.0, 0.0)


def test_kept_face_masks_cover_the_centre_not_the_border(tmp_path):
  workdir = str(tmp_path / "faces")
  result = subprocess.run([
      sys.executable, "-m", "gansseg_jax.main",
      f"--config={os.path.join(REPO, 'configs', 'faces.py')}",
      f"--workdir={workdir}",
      "--config.stages=convert,discover,score,synth",
      f"--config.generator.checkpoint={WHEEL}",
      "--config.export.num_pairs=256",
  ], cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  folder = os.path.join(workdir, faces.get_config().export.output_dir)
  with open(os.path.join(folder, "index.csv"), newline="") as f:
    kept = [row["file"] for row in csv.DictReader(f) if row["kept"] == "1"]
  assert len(kept) >= 256
  shares = np.array([placement(np.asarray(Image.open(
      os.path.join(folder, "masks", name))) > 127) for name in kept])
  border, centre = shares.mean(axis=0)
  assert border <= 0.2, (border, centre)
  assert centre >= 0.7, (border, centre)
  with open(os.path.join(workdir, "ranking.md")) as f:
    assert "(the best-ranked object-like" in f.read()
