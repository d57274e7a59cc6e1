"""Report pictures: enlarged strips and tiles, outlines, labels, curves, and
the line naming an absent optional dataset (log and report)."""
import csv
import os

import numpy as np
from PIL import Image
import pytest

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.data import sources
from gansseg_jax.report import charts
from gansseg_jax.report import images as pics
from gansseg_jax.report import stage


def test_upscale_is_pillows_nearest_resize():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
  expected = np.asarray(Image.fromarray(image).resize((21, 15), Image.NEAREST))
  np.testing.assert_array_equal(pics.upscale(image, 3), expected)
  assert pics.readable_factor(32, 128) == 4
  assert pics.readable_factor(33, 128) == 4
  assert pics.readable_factor(236, 640) == 3
  assert pics.readable_factor(700, 640) == 1


def test_outline_is_the_foreground_with_a_background_neighbour():
  rng = np.random.default_rng(1)
  mask = rng.random((9, 11)) > 0.4
  image = np.zeros((9, 11, 3), np.uint8)
  out = pics.outline(image, mask.astype(np.float32), color=(1, 2, 3))
  expected = np.zeros_like(mask)
  for y in range(9):
    for x in range(11):
      if not mask[y, x]:
        continue
      for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        yy, xx = y + dy, x + dx
        if not (0 <= yy < 9 and 0 <= xx < 11) or not mask[yy, xx]:
          expected[y, x] = True
  np.testing.assert_array_equal((out == (1, 2, 3)).all(-1), expected)
  np.testing.assert_array_equal(out[~expected], 0)


def test_outcome_names_the_filters_that_failed():
  row = {"kept": "0", "size_filter": "pass", "histogram_filter": "fail"}
  assert stage.outcome(row) == "rejected: histogram"
  assert stage.outcome(dict(row, size_filter="fail")) == (
      "rejected: size, histogram")
  assert stage.outcome(dict(row, kept="1")) == "kept"


def _has_color(image, color, tolerance=40):
  return (np.abs(image.astype(int) - np.array(color)).max(-1)
          <= tolerance).any()


def test_label_band_is_written_in_the_outcome_colour():
  tile = np.zeros((20, 30, 3), np.uint8)
  out = pics.labelled(tile, [("rejected: size", pics.REJECTED_COLOR)],
                      width=120)
  assert out.shape[1] == 120 and out.shape[0] > 20
  np.testing.assert_array_equal(out[:20, :30], tile)
  band = out[20:]
  assert _has_color(band, pics.REJECTED_COLOR)
  assert not _has_color(band, pics.KEPT_COLOR)


def test_chart_puts_the_ends_of_a_line_at_the_box_corners():
  series = charts.Series("a", [0, 50, 100], [0.0, 0.5, 1.0])
  image = charts.line_chart("t", [series], width=300, height=200,
                            y_range=(0.0, 1.0))
  left, top, right, bottom = charts.plot_box(300, 200)
  color = charts.COLORS[0]
  for x, y in ((left, bottom), ((left + right) // 2, (top + bottom) // 2),
               (right, top)):
    patch = image[y - 1:y + 2, x - 1:x + 2]
    assert _has_color(patch, color, 0), (x, y)
  # Nothing of the series' colour far from the diagonal (above-left corner).
  assert not _has_color(image[top + 5:top + 40, left + 5:left + 40], color, 0)


@pytest.fixture
def synth_workdir(tmp_path):
  w = str(tmp_path)
  folder = os.path.join(w, "synthetic")
  rows = [("a.png", 1, "pass", "pass"), ("b.png", 0, "pass", "fail")]
  for kind in ("images", "masks"):
    os.makedirs(os.path.join(folder, kind))
  for name, *_ in rows:
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(
        os.path.join(folder, "images", name))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(os.path.join(folder, "masks", name))
  with open(os.path.join(folder, "index.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["file", "key_index", "kept", "size_filter",
                     "histogram_filter", "pruned_pixels",
                     "foreground_fraction"])
    writer.writerows([(n, i, k, a, b, 0, 0.25)
                      for i, (n, k, a, b) in enumerate(rows)])
  return w


def test_each_tile_is_enlarged_outlined_and_labelled(synth_workdir):
  folder = os.path.join(synth_workdir, "synthetic")
  with open(os.path.join(folder, "index.csv")) as f:
    kept, rejected = list(csv.DictReader(f))
  for row, color, other in ((kept, pics.KEPT_COLOR, pics.REJECTED_COLOR),
                            (rejected, pics.REJECTED_COLOR, pics.KEPT_COLOR)):
    tile = stage._tile(folder, row)  # pylint: disable=protected-access
    picture, band = tile[:stage.TILE], tile[stage.TILE:]
    # 32 px enlarged x4; the 16-px square's outline lands on rows 32 and 95.
    assert tuple(picture[32, 40]) == pics.OUTLINE_COLOR
    assert tuple(picture[95, 40]) == pics.OUTLINE_COLOR
    assert tuple(picture[60, 60]) == (90, 90, 90)
    assert _has_color(band, color) and not _has_color(band, other)


def test_optional_dataset_absent_is_logged_and_reported(tmp_path,
                                                        monkeypatch):
  warnings = []
  monkeypatch.setattr(sources.logging, "warning",
                      lambda fmt, *args: warnings.append(fmt % args))
  config = default.get_config()
  missing = str(tmp_path / "nowhere" / "pascal-s")
  config.eval.datasets = "scenes:1:4:16"
  config.eval.optional_datasets = f"folder:{missing}"
  assert sources.available_datasets(config.eval) == ["scenes:1:4:16"]
  assert len(warnings) == 1
  for text in (f"folder:{missing} is absent", f"looked in {missing}/images",
               "PASCAL-S", "cbi.gatech.edu/salobj",
               "run the eval and report stages again"):
    assert text in warnings[0], text
  stage.run(config, str(tmp_path / "w"))
  page = open(tmp_path / "w" / "report.html").read()
  assert f"Not evaluated: optional dataset folder:{missing} is absent" in page
  # Present: evaluated, and nothing said.
  for kind in ("images", "masks"):
    os.makedirs(os.path.join(missing, kind))
  warnings.clear()
  assert sources.available_datasets(config.eval) == [
      "scenes:1:4:16", f"folder:{missing}"]
  assert not warnings and not sources.absent_datasets(config.eval)


def test_known_dataset_absent_names_its_manual_dir(tmp_path):
  config = default.get_config()
  config.eval.data_dir = str(tmp_path / "tfds")
  config.eval.manual_dir = str(tmp_path / "manual")
  config.eval.optional_datasets = "ecssd"
  (absent,) = sources.absent_datasets(config.eval)
  assert str(tmp_path / "manual" / "ecssd") in absent.line()
  assert "ground_truth_mask.zip" in absent.line()
  os.makedirs(tmp_path / "manual" / "ecssd")
  assert not sources.absent_datasets(config.eval)


def test_nothing_left_to_evaluate_is_an_error(tmp_path):
  config = default.get_config()
  config.eval.datasets = ""
  config.eval.optional_datasets = f"folder:{tmp_path / 'x'}"
  with pytest.raises(errors.UserError, match="nothing|no dataset"):
    sources.available_datasets(config.eval)
  config.eval.datasets = f"folder:{tmp_path / 'x'}"
  with pytest.raises(errors.UserError, match="also in config.eval.datasets"):
    sources.available_datasets(config.eval)


def test_curves_read_every_train_record(monkeypatch):
  drawn = {}

  def fake_chart(title, series, **kwargs):
    drawn[title] = {s.label: (list(s.steps), list(s.values)) for s in series}
    return np.zeros((10, 10, 3), np.uint8)

  monkeypatch.setattr(charts, "line_chart", fake_chart)
  records = [
      {"stage": "train", "step": 0, "holdout/iou": 0.1, "holdout/loss": 0.7},
      {"stage": "train", "step": 100, "loss": 0.5, "kept_fraction": 1.0,
       "synth/kept": 30.0, "synth/generated": 48.0},
      {"stage": "train", "step": 200, "loss": 0.25, "kept_fraction": 0.5,
       "synth/kept": 12.0, "synth/generated": 48.0, "holdout/iou": 0.8,
       "holdout/loss": 0.2}]
  (figure,) = stage._curves(records)  # pylint: disable=protected-access
  assert figure.name == "training_curves.png"
  assert drawn["loss"] == {"loss": ([100, 200], [0.5, 0.25]),
                           "holdout/loss": ([0, 200], [0.7, 0.2])}
  assert drawn["kept fraction"] == {
      "synth/kept_of_generated": ([100, 200], [0.625, 0.25]),
      "kept_fraction": ([100, 200], [1.0, 0.5])}
  assert drawn["hold-out IoU / maxF / accuracy"] == {
      "holdout/iou": ([0, 200], [0.1, 0.8])}
