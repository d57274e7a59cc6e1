"""The report: every section from a hand-made workdir, HTML self-contained."""
import base64
import csv
import io
import os
import re

import numpy as np
from PIL import Image
import pytest

from configs import default
from gansseg_jax.infra import fileio
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import workdir as wd
from gansseg_jax.report import images as pics
from gansseg_jax.report import stage


def save_png(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)


def make_workdir(w: str) -> str:
  """A hand-made workdir with every file the report reads."""
  rng = np.random.default_rng(0)
  wd.write_marker(w, "score", "h", {}, 12.0)
  wd.write_marker(w, "train", "h", {}, 3600.0)
  with open(os.path.join(w, "ranking.csv"), "w") as f:
    f.write("rank,index,L_h,D_h,area,brightening_area,lighting_area,sign,status\n"
            "2,7,0.2,0.5,0.6,0.3,0.3,1,kept\n1,3,0.1,0.9,0.7,0.3,0.3,1,kept\n"
            "-1,0,0.05,0.01,1.0,0.0,0.0,1,dropped: one class\n")
  save_png(os.path.join(w, "strips", "rank_01_index_003.png"),
           rng.integers(0, 255, (16, 40, 3), dtype=np.uint8))
  synth = os.path.join(w, "synthetic")
  rows = [("000000.png", 0, 1, "pass", "pass"), ("000001.png", 1, 0, "fail", "pass")]
  for name, *_ in rows:
    save_png(os.path.join(synth, "images", name),
             rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    save_png(os.path.join(synth, "masks", name),
             (rng.random((8, 8)) > 0.5).astype(np.uint8) * 255)
  with open(os.path.join(synth, "index.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["file", "key_index", "kept", "size_filter",
                     "histogram_filter", "pruned_pixels", "foreground_fraction"])
    writer.writerows([r + (0, 0.5) for r in rows])
  metrics = monitoring.MetricsWriter(w, "train", tensorboard=False)
  metrics.write_scalars(5, {"holdout_iou": 0.5, "loss": 0.4,
                            "kept_fraction": 0.9})
  metrics.write_scalars(9, {"holdout_iou": 0.75, "loss": 0.2,
                            "kept_fraction": 1.0})
  samples = os.path.join("eval", "scenes_1", "unet_samples.npz")
  os.makedirs(os.path.join(w, "eval", "scenes_1"))
  np.savez(os.path.join(w, samples), title=np.array("scenes"),
           image_0=np.zeros((10, 12, 3), np.uint8),
           mask_0=np.ones((10, 12), bool), prob_0=np.full((10, 12), 200, np.uint8))
  unet = {"title": "scenes", "images": 5, "maxF": 0.9, "IoU": 0.8125,
          "acc": 0.95, "MAE": 0.05}
  prior = dict(unet, maxF=0.925, IoU=0.6)
  fileio.write_json(os.path.join(w, "eval.json"), {"datasets": {"scenes:1:5:16": dict(
      unet, paper=None, predictor="unet", samples=samples,
      rows={"unet": unet, "centre_prior": prior})}})
  return w


@pytest.fixture
def workdir(tmp_path):
  return make_workdir(str(tmp_path))


def test_report_has_every_section(workdir):
  stage.run(default.get_config(), workdir)
  page = open(os.path.join(workdir, "report.html")).read()
  for text in ("Time per stage", "1:00:00", "Direction ranking",
               "rank_01_index_003.png", "Synthetic training pairs",
               "1 kept samples", "1 rejected samples (1 size)",
               "holdout_iou", "0.75", "Training curves", "Predictions",
               "scenes: image, ground truth", "Metrics", "0.812",
               "<td>centre prior</td>",
               "On scenes the centre prior baseline scores maxFβ 0.925"):
    assert text in page, text
  # Metrics: the model's row before its baselines (eval.json sorts keys).
  metrics = page[page.index("<h2>Metrics"):]
  assert metrics.index("<td>U-Net</td>") < metrics.index("<td>centre prior</td>")
  # Ranking table: rank 1 (index 3) before rank 2 (index 7); dropped ones out.
  ranking = page[page.index("Direction ranking"):page.index("Synthetic")]
  assert ranking.index("<td>3</td>") < ranking.index("<td>7</td>")
  assert "dropped: one class" not in ranking
  # The rule in words is the config's: by L_h by default ...
  assert "ordered by L_h" in ranking and "then by D_h (highest" not in ranking
  # Self-contained: no link to a file, every figure inlined and decodable.
  assert "src='report_files" not in page
  uris = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
  assert len(uris) == 5  # strip, kept, rejected, curves, predictions
  for uri in uris:
    Image.open(io.BytesIO(base64.b64decode(uri))).verify()
  markdown = open(os.path.join(workdir, "report.md")).read()
  for link in re.findall(r"\]\((report_files/[^)]+)\)", markdown):
    assert os.path.exists(os.path.join(workdir, link)), link


def test_report_states_a_shortlist_ordered_by_separation(workdir):
  config = default.get_config()
  config.score.order_by = "separation"
  stage.run(config, workdir)
  page = open(os.path.join(workdir, "report.html")).read()
  ranking = page[page.index("Direction ranking"):page.index("Synthetic")]
  assert (f"the first {config.score.top_k} of them then by D_h (highest first)"
          in ranking)


def test_report_without_upstream_outputs_says_what_is_missing(tmp_path):
  stage.run(default.get_config(), str(tmp_path))
  page = open(os.path.join(tmp_path, "report.html")).read()
  assert "the score stage has not run" in page
  assert "the eval stage has not run" in page


def test_overlay_tints_exactly_the_foreground():
  image = np.full((2, 2, 3), 100, np.uint8)
  mask = np.array([[0.9, 0.1], [0.5, 0.51]])
  out = pics.overlay(image, mask)
  tinted = np.round(0.55 * 100 + 0.45 * np.array([40, 220, 90]))
  np.testing.assert_array_equal(out[0, 0], tinted)
  np.testing.assert_array_equal(out[1, 1], tinted)
  np.testing.assert_array_equal(out[0, 1], image[0, 1])
  np.testing.assert_array_equal(out[1, 0], image[1, 0])


def test_report_names_the_direction_used_and_its_pass_rates(workdir):
  """Rank 1 by default; config.score.index's pick when set, with its strip
  first; the train stage's pass rates when measured."""
  config = default.get_config()
  stage.run(config, workdir)
  page = open(os.path.join(workdir, "report.md")).read()
  used = page[page.index("### Direction used"):]
  assert "| index (row of directions.npy) | 3 |" in used
  assert "| chosen as | config.score.choose=objectness |" in used
  assert "not measured yet" in used

  save_png(os.path.join(workdir, "strips", "rank_02_index_007.png"),
           np.zeros((16, 40, 3), np.uint8))
  fileio.write_json(os.path.join(workdir, "filter_rates.json"), {
      "rates": {"samples": 256, "size": 0.5, "histogram": 0.25, "kept": 0.125,
                "pruned": 0.75, "foreground": 0.3, "border": 0.05,
                "centre": 0.875},
      "settings": {"histogram_rule": "authors"}})
  config.score.index = 7
  stage.run(config, workdir)
  page = open(os.path.join(workdir, "report.md")).read()
  used = page[page.index("### Direction used"):]
  assert "| index (row of directions.npy) | 7 |" in used
  assert "| chosen as | picked by config.score.index |" in used
  assert "| rank | 2 |" in used and "| L_h (restoration loss) | 0.2 |" in used
  assert "| every filter (the keep rate) | 12.5% |" in used
  assert "| ... of their central quarter | 87.5% |" in used
  assert "histogram_rule = authors" in used
  strips = re.findall(r"strip_(rank_\d+_index_\d+)\.png", used)
  assert strips[0] == "rank_02_index_007"  # The direction used comes first.


def test_report_names_the_generator_kind(workdir):
  """The kind (a plug-in's module:NAME included), not only its source."""
  config = default.get_config()
  config.generator.arch = "dcgan"
  config.generator.source = "torch"
  config.generator.resolution = 64
  stage.run(config, workdir)
  page = open(os.path.join(workdir, "report.md")).read()
  assert ("| generator | dcgan (source torch, 64 px, z_dim 120, latent prior "
          "the kind's own) |") in page
  config.generator.arch = "my_gans.faces:KIND"
  config.generator.latent_prior = "uniform"
  stage.run(config, workdir)
  page = open(os.path.join(workdir, "report.md")).read()
  assert ("| generator | my_gans.faces:KIND (source torch, 64 px, z_dim 120, "
          "latent prior uniform(-1, 1)) |") in page


def test_report_warns_at_the_top_when_the_masks_are_not_objects(workdir):
  """ranking.csv says the direction used is not object-like (choose=paper):
  the warning comes first, with the next candidates' strips, object-like
  ones first."""
  with open(os.path.join(workdir, "ranking.csv"), "w") as f:
    f.write("rank,index,L_h,D_h,area,kept,kept_border,kept_centre,"
            "object_like,status\n"
            "1,3,0.1,0.9,0.7,0.3,0.4000,0.4700,no,kept\n"
            "2,7,0.2,0.5,0.6,0.2,0.3500,0.4000,no,kept\n"
            "3,5,0.2,0.4,0.6,0.2,0.1000,0.8000,yes,kept\n")
  for name in ("rank_02_index_007.png", "rank_03_index_005.png"):
    save_png(os.path.join(workdir, "strips", name),
             np.zeros((16, 40, 3), np.uint8))
  config = default.get_config()
  config.score.choose = "paper"
  stage.run(config, workdir)
  page = open(os.path.join(workdir, "report.md")).read()
  top = page[:page.index("## Run")]
  assert "Warning: the direction used may not segment objects" in top
  assert "40.0% of the image border and 47.0% of its central quarter" in top
  strips = re.findall(r"strip_(rank_\d+_index_\d+)\.png", top)
  assert list(dict.fromkeys(strips)) == ["rank_03_index_005",
                                         "rank_02_index_007"]
  # With the objectness rule the object-like index 5 is used: no warning.
  config.score.choose = "objectness"
  stage.run(config, workdir)
  page = open(os.path.join(workdir, "report.md")).read()
  assert "Warning" not in page
  assert "| index (row of directions.npy) | 5 |" in page


def test_stage_times_are_listed_in_the_order_the_stages_finished(tmp_path):
  """Markers' modification times order the rows (a later eval comes last);
  started records and other files are not stages."""
  w = str(tmp_path)
  for i, (name, seconds) in enumerate([("train", 30.0), ("convert", 1.0),
                                       ("eval", 4.0)]):
    wd.write_marker(w, name, "h", {}, seconds)
    os.utime(wd.marker_path(w, name), ns=(10**9 * (i + 1),) * 2)
  with open(wd.started_path(w, "report"), "w") as f:
    f.write("{}")
  assert wd.stage_seconds(w) == {"train": 30.0, "convert": 1.0, "eval": 4.0}
  assert list(wd.stage_seconds(w)) == ["train", "convert", "eval"]
  assert wd.stage_seconds(str(tmp_path / "fresh")) == {}
