"""The `eval` and `segment` stages with a stand-in predictor (brightness)."""
import hashlib
import json
import os
import re
import shutil

import numpy as np
from PIL import Image
import pytest
from scipy import ndimage

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.data import preprocess
from gansseg_jax.run import stages
from gansseg_jax.eval import layout
from gansseg_jax.eval import metrics
from gansseg_jax.eval import stage
from gansseg_jax.eval import tables
from stage_markers import mark_done


def brightness(images):
  """P(foreground) = mean channel value mapped from [-1, 1] to [0, 1]."""
  return (np.asarray(images).mean(axis=-1) + 1.0) / 2.0


@pytest.fixture
def predictor(monkeypatch):
  calls = []

  def load(config, workdir):
    calls.append(workdir)
    return brightness

  monkeypatch.setattr(stage, "_load_predictor", load)
  return calls


def _config(**sections):
  config = default.get_config()
  config.eval.batch_size = 4
  config.eval.baseline_workers = 1
  for dotted, value in sections.items():
    section, field = dotted.split("__")
    config[section][field] = value
  return config


def _planted(height, width, rect):
  image = np.zeros((height, width, 3), np.uint8)
  mask = np.zeros((height, width), bool)
  mask[rect[0]:rect[2], rect[1]:rect[3]] = True
  image[mask] = 255
  return image, mask


def _write(path, array, **kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path, **kwargs)


@pytest.fixture
def saliency_folder(tmp_path):
  """White objects on black (plus noise) at odd sizes, with exact masks."""
  root = str(tmp_path / "data")
  rng = np.random.default_rng(0)
  for i, (h, w) in enumerate([(45, 67), (130, 97), (64, 64), (201, 150),
                              (45, 67)]):
    rect = (h // 4, w // 5, h // 4 + h // 2, w // 5 + w // 2)
    image, mask = _planted(h, w, rect)
    noise = rng.integers(0, 40, image.shape)
    image = np.where(mask[..., None], image - noise, image + noise)
    _write(f"{root}/images/{i}.png", image.astype(np.uint8))
    _write(f"{root}/masks/{i}.png", mask.astype(np.uint8) * 255)
  return root


def centre_prior(image):
  """The centre prior at the image's own size, from its formula."""
  h, w = image.shape[:2]
  y, x = np.mgrid[0:h, 0:w] + 0.5
  return np.exp(-(y - h / 2) ** 2 / (2 * (h / 4) ** 2)
                - (x - w / 2) ** 2 / (2 * (w / 4) ** 2))


def _reference_metrics(root, baseline=None):
  """The same metrics through a plain per-image path: no batching, padding
  or bucketing (brightness is pixel-wise, so padding cannot matter); a
  `baseline` sees the image at its own size."""
  m = metrics.SaliencyMetrics(255, 0.3, 0.5, 2**22)
  for i in range(5):
    image = np.asarray(Image.open(f"{root}/images/{i}.png"))
    mask = np.asarray(Image.open(f"{root}/masks/{i}.png")) > 127
    if baseline is not None:
      m.add(baseline(image).astype(np.float32), mask)
      continue
    x = preprocess.model_input(image, 128, 1024)
    probs = brightness(x[None])[0]
    m.add(preprocess.resize_map(probs, mask.shape), mask)
  return m.result()


def test_eval_writes_json_and_tables(tmp_path, saliency_folder, predictor):
  workdir = str(tmp_path / "w")
  os.makedirs(workdir)
  config = _config(eval__datasets=f"folder:{saliency_folder}")
  stage.evaluate(config, workdir)
  assert predictor == [workdir]
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)
  ours = result["datasets"][f"folder:{saliency_folder}"]
  reference = _reference_metrics(saliency_folder)
  for name in ("images", "maxF", "IoU", "acc", "MAE", "F_cut"):
    assert ours[name] == pytest.approx(reference[name], abs=1e-9), name
  assert ours["images"] == 5 and ours["IoU"] > 0.9 and ours["maxF"] > 0.95
  assert ours["paper"] is None and "MaxBoxAcc" not in ours
  assert 0.9 < ours["PxAP"] <= 1.0
  with open(os.path.join(workdir, "eval.md")) as f:
    markdown = f.read()
  assert "| data | U-Net | 5 | " in markdown and "maxFβ" in markdown
  assert f"{ours['maxF']:.3f} / —" in markdown
  assert sorted(os.listdir(workdir)) == ["eval", "eval.json", "eval.md"]
  key = f"folder:{saliency_folder}"
  assert sorted(os.listdir(os.path.join(workdir, layout.dataset_dir(key)))) == [
      "centre_prior.json", "centre_prior_samples.npz", "unet.json",
      "unet_samples.npz"]
  # The centre-prior row: the same images through the same metrics.
  prior = result["datasets"][key]["rows"]["centre_prior"]
  reference = _reference_metrics(saliency_folder, centre_prior)
  for name in ("images", "maxF", "IoU", "acc", "MAE"):
    assert prior[name] == pytest.approx(reference[name], abs=1e-9), name
  assert "| data | centre prior | 5 | " in markdown
  assert ours["samples"] == layout.samples_path(key, "unet")
  samples = np.load(os.path.join(workdir, ours["samples"]))
  kept = min(5, config.report.num_predictions)
  assert sorted(samples.files) == sorted(
      ["title"] + [f"{k}_{j}" for k in ("image", "mask", "prob")
                   for j in range(kept)])
  for j in range(kept):
    image, mask = samples[f"image_{j}"], samples[f"mask_{j}"]
    probs = brightness(preprocess.model_input(image, 128, 1024)[None])[0]
    np.testing.assert_array_equal(
        samples[f"prob_{j}"],
        np.round(255 * preprocess.resize_map(probs, mask.shape)).astype(np.uint8))


def test_images_without_a_mask_are_counted_as_skipped(tmp_path,
                                                      saliency_folder,
                                                      predictor):
  _write(f"{saliency_folder}/images/orphan.png", np.zeros((40, 40, 3),
                                                          np.uint8))
  _write(f"{saliency_folder}/images/twice.png", np.zeros((40, 40, 3),
                                                         np.uint8))
  _write(f"{saliency_folder}/images/twice.jpg", np.zeros((40, 40, 3),
                                                         np.uint8))
  _write(f"{saliency_folder}/masks/twice.png", np.zeros((40, 40), np.uint8))
  workdir = str(tmp_path / "w")
  stage.evaluate(_config(eval__datasets=f"folder:{saliency_folder}"), workdir)
  with open(os.path.join(workdir, "eval.json")) as f:
    ours = json.load(f)["datasets"][f"folder:{saliency_folder}"]
  assert ours["images"] == 5
  assert ours["skipped"] == {"unreadable": 0, "too_small": 0,
                             "masks_resized": 0, "without_mask": 1,
                             "ambiguous": 1}
  with open(os.path.join(workdir, "eval.md")) as f:
    assert "1 ambiguous, 1 without_mask" in f.read()


def test_eval_max_images_and_errors(tmp_path, saliency_folder, predictor):
  workdir = str(tmp_path)
  config = _config(eval__datasets=f"folder:{saliency_folder}",
                   eval__max_images=2)
  stage.evaluate(config, workdir)
  with open(os.path.join(workdir, "eval.json")) as f:
    assert json.load(f)["datasets"][f"folder:{saliency_folder}"]["images"] == 2
  for field, value, message in (
      ("eval__datasets", "", "config.eval.datasets"),
      ("eval__datasets", "folder:/no/such/dir", "config.eval.datasets"),
      ("eval__pxap_average", "boxes", "config.eval.pxap_average"),
      ("eval__max_long_side", 64, "config.eval.max_long_side")):
    sections = {"eval__datasets": f"folder:{saliency_folder}", field: value}
    config = _config(**sections)
    with pytest.raises(errors.UserError, match=message):
      stage.evaluate(config, workdir)


def test_tables_put_the_papers_numbers_beside_ours():
  result = {"title": "ECSSD", "images": 1000, "maxF": 0.8, "IoU": 0.7,
            "acc": 0.9, "MAE": 0.1, "F_cut": 0.75, "PxAP": 0.6,
            "skipped": {"unreadable": 0, "too_small": 0, "masks_resized": 0,
                        "without_mask": 0, "ambiguous": 0}}
  cub = dict(result, title="CUB-200-2011", MaxBoxAcc=0.5)
  settings = {"mask_threshold": 0.5, "pxap_average": "images"}
  prior = dict(result, maxF=0.85, IoU=0.72)
  wctr = dict(result, maxF=0.7, IoU=0.5)
  document, markdown = tables.build(
      {"ecssd": {"wctr": wctr, "unet": result, "centre_prior": prior},
       "cub": {"unet": cub}}, "unet", "prior", settings)
  assert document["datasets"]["ecssd"]["paper"] == {
      "row": "BigBiGAN", "maxF": 0.782, "IoU": 0.672, "acc": 0.899}
  assert document["datasets"]["ecssd"]["predictor"] == "unet"
  assert list(document["datasets"]["ecssd"]["rows"]) == [
      "unet", "centre_prior", "wctr"]
  assert document["datasets"]["cub"]["paper"]["row"] == "E-BigBiGAN"
  assert ("| ECSSD | U-Net | 1000 | 0.800 / 0.782 | 0.700 / 0.672 "
          "| 0.900 / 0.899 |") in markdown
  assert "| ECSSD | centre prior | 1000 | 0.850 / — | 0.720 / — |" in markdown
  # wCtr beside the GAN paper's published wCtr row on ECSSD.
  assert "| ECSSD | wCtr* | 1000 | 0.700 / 0.684 | 0.500 / 0.517 " in markdown
  assert ("On ECSSD the centre prior baseline scores maxFβ 0.850 / IoU 0.720, "
          "above the U-Net's 0.800 / 0.700") in markdown
  assert "wCtr* baseline scores" not in markdown
  assert "| CUB-200-2011 | U-Net | 0.500 / 0.742 | 0.600 / — |" in markdown
  document, _ = tables.build({"ecssd": {"unet": result}}, "unet",
                             "embeddings", settings)
  assert document["datasets"]["ecssd"]["paper"]["maxF"] == 0.797


def _run_eval(config, workdir):
  """The eval stage through the runner (plan, skip, markers), as main does."""
  config.stages = "eval"
  stages.run(config, workdir)


def stand_in_unet(workdir, config):
  """An empty W/unet with the marker a train stage of `config` writes."""
  os.makedirs(os.path.join(workdir, "unet"))
  mark_done(workdir, "train", config)


def test_evaluating_datasets_one_after_another_keeps_every_result(
    tmp_path, saliency_folder, predictor):
  workdir = str(tmp_path / "w")
  stand_in_unet(workdir, _config())
  second = str(tmp_path / "second")
  shutil.copytree(saliency_folder, second)
  os.remove(os.path.join(second, "images", "4.png"))
  os.remove(os.path.join(second, "masks", "4.png"))
  first_key, second_key = f"folder:{saliency_folder}", f"folder:{second}"
  _run_eval(_config(eval__datasets=first_key), workdir)
  first_file = os.path.join(workdir, layout.result_path(first_key, "unet"))
  first_bytes = open(first_file, "rb").read()
  _run_eval(_config(eval__datasets=second_key), workdir)  # No force.
  assert open(first_file, "rb").read() == first_bytes  # Untouched.
  with open(os.path.join(workdir, "eval.json")) as f:
    datasets = json.load(f)["datasets"]
  assert set(datasets) == {first_key, second_key}
  assert datasets[second_key]["images"] == 4 and datasets[first_key]["images"] == 5
  for key in (first_key, second_key):
    assert set(datasets[key]["rows"]) == {"unet", "centre_prior"}
  markdown = open(os.path.join(workdir, "eval.md")).read()
  # The configured dataset first, then those evaluated earlier.
  assert 0 < markdown.index("| second | U-Net | 4 |") < markdown.index(
      "| data | U-Net | 5 |")
  # The same selection again: outputs exist, nothing is recomputed.
  calls = len(predictor)
  _run_eval(_config(eval__datasets=f"{first_key},{second_key}"), workdir)
  assert len(predictor) == calls
  # A baseline on a workdir without any U-Net: no 'unet' input needed.
  fresh = str(tmp_path / "fresh")
  _run_eval(_config(eval__datasets=first_key, eval__predictor="centre_prior",
                    eval__baselines=""), fresh)
  with open(os.path.join(fresh, "eval.json")) as f:
    only = json.load(f)["datasets"][first_key]
  assert only["predictor"] == "centre_prior" and list(only["rows"]) == [
      "centre_prior"]
  reference = _reference_metrics(saliency_folder, centre_prior)
  assert only["maxF"] == pytest.approx(reference["maxF"], abs=1e-9)


def test_optional_dataset_put_in_place_later_is_evaluated(
    tmp_path, saliency_folder, predictor):
  """The absent-dataset warning says to run eval again once it is there:
  the same config then scores it (and only it), and a third run is a skip."""
  workdir = str(tmp_path / "w")
  stand_in_unet(workdir, _config())
  later = str(tmp_path / "later")
  key, later_key = f"folder:{saliency_folder}", f"folder:{later}"
  config = lambda: _config(eval__datasets=key,
                           eval__optional_datasets=later_key)
  _run_eval(config(), workdir)
  calls = len(predictor)
  shutil.copytree(saliency_folder, later)
  _run_eval(config(), workdir)
  assert len(predictor) == calls + 1
  with open(os.path.join(workdir, "eval.json")) as f:
    datasets = json.load(f)["datasets"]
  assert list(datasets) == [key, later_key]
  assert datasets[later_key]["maxF"] == pytest.approx(
      _reference_metrics(saliency_folder)["maxF"], abs=1e-9)
  _run_eval(config(), workdir)
  assert len(predictor) == calls + 1


def test_changed_eval_settings_hide_older_results(tmp_path, saliency_folder,
                                                  predictor):
  workdir = str(tmp_path / "w")
  key = f"folder:{saliency_folder}"
  stage.evaluate(_config(eval__datasets=key), workdir)
  stage.evaluate(_config(eval__datasets=key, eval__max_images=2), workdir)
  with open(os.path.join(workdir, "eval.json")) as f:
    document = json.load(f)
  assert document["datasets"][key]["images"] == 2
  assert document["hidden_results"] == 0  # Same files, recomputed.
  config = _config(eval__datasets=key, eval__max_images=3)
  stage.write_summary(config, workdir)  # Settings the files were not made with.
  with open(os.path.join(workdir, "eval.json")) as f:
    document = json.load(f)
  assert document["datasets"] == {} and document["hidden_results"] == 2


@pytest.fixture
def photos(tmp_path):
  """A folder of the user's images, good and bad."""
  folder = str(tmp_path / "photos")
  planted, _ = _planted(45, 67, (10, 20, 30, 50))
  _write(f"{folder}/planted.png", planted)
  rgba = np.zeros((40, 50, 4), np.uint8)
  rgba[..., 3] = 255
  rgba[:, :25, 3] = 0  # Transparent left half: white after compositing.
  _write(f"{folder}/alpha.png", rgba)
  gray = np.full((60, 30), 30, np.uint8)
  gray[10:50, 5:25] = 230
  _write(f"{folder}/gray.jpg", gray, quality=95)
  _write(f"{folder}/dup.png", planted)
  _write(f"{folder}/dup.jpg", planted, quality=95)
  _write(f"{folder}/tiny.png", np.zeros((5, 5, 3), np.uint8))
  with open(f"{folder}/broken.jpg", "wb") as f:
    f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
  with open(f"{folder}/notes.txt", "w") as f:
    f.write("not an image")
  return folder


def _read(path):
  return np.asarray(Image.open(path))


def test_segment_outputs(tmp_path, photos, predictor):
  workdir = str(tmp_path / "w")
  os.makedirs(workdir)
  config = _config(segment__input_dir=photos)
  stage.segment(config, workdir)
  assert os.listdir(workdir) == ["segment"]
  out = os.path.join(workdir, "segment")
  with open(os.path.join(out, "summary.json")) as f:
    summary = json.load(f)
  assert summary["counts"] == {"segmented": 5, "unreadable": 1,
                               "too_small": 1, "ignored_files": 1}
  assert [r["image"] for r in summary["images"]] == [
      os.path.join(photos, n) for n in ("alpha.png", "dup.jpg", "dup.png",
                                        "gray.jpg", "planted.png")]
  for base in ("planted", "alpha", "gray", "dup_png", "dup_jpg"):
    for suffix in ("_prob.png", "_mask.png", "_cutout.png", ".json"):
      assert os.path.isfile(os.path.join(out, base + suffix)), base + suffix
  # Probability map = brightness resized back; mask and cut-out follow it.
  prob = _read(os.path.join(out, "planted_prob.png"))
  image = _read(os.path.join(photos, "planted.png"))
  x = preprocess.model_input(image, 128, 1024)
  expected = preprocess.resize_map(brightness(x[None])[0], (45, 67))
  np.testing.assert_array_equal(prob, np.round(expected * 255))
  mask = _read(os.path.join(out, "planted_mask.png"))
  np.testing.assert_array_equal(mask, (expected > 0.5) * 255)
  cutout = _read(os.path.join(out, "planted_cutout.png"))
  assert cutout.shape == (45, 67, 4)
  np.testing.assert_array_equal(cutout[..., :3], image)
  np.testing.assert_array_equal(cutout[..., 3], mask)
  with open(os.path.join(out, "planted.json")) as f:
    record = json.load(f)
  # The planted object is rows 10..29, columns 20..49: box [20, 10, 50, 30].
  assert np.abs(np.array(record["box_xyxy"]) - [20, 10, 50, 30]).max() <= 1
  assert (record["width"], record["height"]) == (67, 45)
  # Transparent pixels were composited over white: bright, so foreground.
  alpha_mask = _read(os.path.join(out, "alpha_mask.png"))
  assert alpha_mask[:, :20].all() and not alpha_mask[:, 30:].any()
  gray_mask = _read(os.path.join(out, "gray_mask.png")) > 0
  labels, count = ndimage.label(gray_mask)
  assert count == 1 and gray_mask[12:48, 7:23].all()


def test_segment_bad_input(tmp_path, photos, predictor):
  workdir = str(tmp_path / "w")
  os.makedirs(workdir)
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "readme.txt").write_text("no images")
  broken = tmp_path / "broken"
  broken.mkdir()
  (broken / "a.png").write_bytes(b"garbage")
  for sections, message in (
      ({"segment__input_dir": ""}, "config.segment.input_dir"),
      ({"segment__input_dir": f"{photos},/no/such.png"}, "/no/such.png"),
      ({"segment__input_dir": str(empty)}, "no image files"),
      ({"segment__input_dir": str(broken)}, "none of the 1 image files"),
      ({"segment__input_dir": photos, "segment__output_dir": "../out"},
       "config.segment.output_dir"),
      ({"segment__input_dir": photos, "segment__connectivity": 6},
       "config.segment.connectivity")):
    with pytest.raises(errors.UserError, match=message):
      stage.segment(_config(**sections), workdir)
  assert os.listdir(workdir) == []  # Nothing half-written, nothing outside.


def test_segment_files_and_folders_recursively(tmp_path, photos, predictor,
                                               caplog):
  """Files and folders mixed; sub-folders mirrored; each output logged."""
  planted, _ = _planted(45, 67, (10, 20, 30, 50))
  _write(str(tmp_path / "tree" / "a.png"), planted)
  _write(str(tmp_path / "tree" / "sub" / "a.png"), planted)
  _write(str(tmp_path / "tree" / "sub" / "deeper" / "b.png"), planted)
  _write(str(tmp_path / "loose" / "a.png"), planted)
  tree, loose = str(tmp_path / "tree"), str(tmp_path / "loose" / "a.png")
  workdir = str(tmp_path / "w")
  caplog.set_level("INFO", logger="absl")
  stage.segment(_config(segment__input_dir=f"{tree},{loose}"), workdir)
  out = os.path.join(workdir, "segment")
  with open(os.path.join(out, "summary.json")) as f:
    flat = json.load(f)
  assert flat["counts"]["segmented"] == 2  # Not recursive: tree/a, loose/a.
  assert [r["outputs"]["mask"] for r in flat["images"]] == [
      "a_mask.png", "a_2_mask.png"]
  assert f"{loose} -> {os.path.join(out, 'a_2')}" in caplog.text
  shutil.rmtree(workdir)
  stage.segment(_config(segment__input_dir=f"{tree},{loose}",
                        segment__recursive=True), workdir)
  with open(os.path.join(out, "summary.json")) as f:
    deep = json.load(f)
  assert [r["outputs"]["mask"] for r in deep["images"]] == [
      "a_mask.png", "sub/a_mask.png", "sub/deeper/b_mask.png", "a_2_mask.png"]
  for record in deep["images"]:
    mask = _read(os.path.join(out, record["outputs"]["mask"]))
    assert mask.shape == (45, 67) and mask[15, 30] == 255
  assert f"{os.path.join(tree, 'sub', 'deeper', 'b.png')} -> " in caplog.text


def test_segment_with_a_baseline_needs_no_unet(tmp_path, photos):
  workdir = str(tmp_path / "w")
  stage.segment(_config(segment__input_dir=photos,
                        eval__predictor="centre_prior"), workdir)
  prob = _read(os.path.join(workdir, "segment", "planted_prob.png"))
  image = _read(os.path.join(photos, "planted.png"))
  np.testing.assert_array_equal(prob, np.round(centre_prior(image) * 255))



@pytest.mark.parametrize("key, name", [
    ("ecssd", "ecssd"),
    ("duts_te", "duts_te"),
    ("folder:/home/someone/older_work/s_tmp_ecssd/images:"
     "/home/someone/older_work/s_tmp_ecssd/masks", "s_tmp_ecssd"),
    ("folder:" + "/very" * 60 + "/pascal-s/", "pascal-s"),  # <root> form.
    ("folder:/data/photos/imgs:/elsewhere/gt", "imgs"),
    ("folder:/d/My Photos (2024)/images:/d/My Photos (2024)/masks",
     "My_Photos_2024"),
    ("folder:relative/images:relative/masks", "relative"),
    ("scenes:1:100:64", "scenes_1_100_64"),
    ("folder:/x/" + "n" * 80 + "/images:/x/" + "n" * 80 + "/masks",
     "n" * layout.NAME_CHARS),
    ("folder:/::", "dataset"),
])
def test_dataset_folders_start_with_the_datasets_own_name(key, name):
  directory = layout.dataset_dir(key)
  parent, base = os.path.split(directory)
  assert parent == layout.EVAL_DIR
  assert re.fullmatch(r"[A-Za-z0-9.\-_]+", base), base
  assert base == f"{name}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
  assert len(base) <= layout.NAME_CHARS + 9


def test_folders_named_alike_stay_apart():
  first = "folder:/a/ecssd/images:/a/ecssd/masks"
  second = "folder:/b/ecssd/images:/b/ecssd/masks"
  assert layout.dataset_dir(first) != layout.dataset_dir(second)
  assert all(os.path.basename(layout.dataset_dir(k)).startswith("ecssd_")
             for k in (first, second))


def test_legacy_names_are_those_older_workdirs_hold():
  """Names the eval stage wrote in older workdirs (values from that code)."""
  assert layout.legacy_dataset_dir(
      "folder:/home/someone/older_work/s_tmp_ecssd/images:"
      "/home/someone/older_work/s_tmp_ecssd/masks") == (
          "eval/ome_someone_older_work_s_tmp_ecssd_masks_df0542bc")
  assert layout.legacy_dataset_dir("ecssd") == "eval/ecssd_de4203ce"


def test_results_under_a_legacy_name_are_moved_and_kept(
    tmp_path, saliency_folder, monkeypatch):
  """An older workdir: its results move to the new folder, are not
  recomputed, and eval.json points at the moved samples; a copy left under
  the old name beside a new folder is ignored."""
  workdir = str(tmp_path / "w")
  key = f"folder:{saliency_folder}"
  config = _config(eval__datasets=key, eval__predictor="centre_prior",
                   eval__baselines="")
  stage.evaluate(config, workdir)
  new = os.path.join(workdir, layout.dataset_dir(key))
  old = os.path.join(workdir, layout.legacy_dataset_dir(key))
  assert old != new
  result = os.path.join(new, "centre_prior.json")
  with open(result) as f:
    record = json.load(f)
  legacy = dict(record, samples=os.path.relpath(
      os.path.join(old, "centre_prior_samples.npz"), workdir))
  del legacy[stage.SEAL]  # Written before results were sealed.
  os.rename(new, old)
  with open(os.path.join(old, "centre_prior.json"), "w") as f:
    json.dump(legacy, f)

  def no_recompute(*args, **kwargs):
    raise AssertionError("a kept result was recomputed")
  monkeypatch.setattr(stage.evaluate_lib, "evaluate_source", no_recompute)
  stage.evaluate(config, workdir)
  assert not os.path.exists(old)
  with open(result) as f:
    assert json.load(f) == record
  with open(os.path.join(workdir, "eval.json")) as f:
    entry = json.load(f)["datasets"][key]
  assert entry["samples"] == layout.samples_path(key, "centre_prior")
  assert os.path.isfile(os.path.join(workdir, entry["samples"]))

  shutil.copytree(new, old)  # Both names: the old copy is not read.
  with open(os.path.join(old, "centre_prior.json"), "w") as f:
    json.dump(dict(legacy, dataset="folder:/elsewhere"), f)
  stage.write_summary(config, workdir)
  with open(os.path.join(workdir, "eval.json")) as f:
    assert list(json.load(f)["datasets"]) == [key]


def evaluated(tmp_path, folder):
  """(workdir, dataset entry): `folder` evaluated through the runner."""
  workdir = str(tmp_path / "w")
  stand_in_unet(workdir, _config())
  key = f"folder:{folder}"
  _run_eval(_config(eval__datasets=key), workdir)
  return workdir, key


def test_edited_result_is_refused_not_published(tmp_path, saliency_folder,
                                                predictor):
  """An edited result (maxF) is refused, not shown in eval.md or the report."""
  workdir, key = evaluated(tmp_path, saliency_folder)
  path = os.path.join(workdir, layout.result_path(key, "unet"))
  with open(path) as f:
    record = json.load(f)
  record["result"]["maxF"] = 0.999
  with open(path, "w") as f:
    json.dump(record, f)
  second = str(tmp_path / "second")
  shutil.copytree(saliency_folder, second)
  with pytest.raises(errors.UserError) as raised:
    _run_eval(_config(eval__datasets=f"{key},folder:{second}"), workdir)
  assert str(raised.value) == (
      f"{path}: changed since the eval stage wrote it (its sha256 does not "
      "match); delete it to compute it again")
  assert "0.999" not in open(os.path.join(workdir, "eval.md")).read()


def test_changed_dataset_folder_is_evaluated_again(tmp_path, saliency_folder,
                                                   predictor):
  """A dataset folder that changed (inverted masks) is evaluated again."""
  workdir, key = evaluated(tmp_path, saliency_folder)
  calls = len(predictor)
  for i in range(5):
    path = f"{saliency_folder}/masks/{i}.png"
    mask = np.asarray(Image.open(path))
    _write(path, 255 - mask)
  _run_eval(_config(eval__datasets=key), workdir)
  assert len(predictor) == calls + 1
  with open(os.path.join(workdir, "eval.json")) as f:
    result = json.load(f)["datasets"][key]
  inverted = _reference_metrics(saliency_folder)
  assert result["maxF"] == pytest.approx(inverted["maxF"], abs=1e-9)
  _run_eval(_config(eval__datasets=key), workdir)  # Unchanged: kept.
  assert len(predictor) == calls + 1


def test_targets_of_one_folder_run_a_baseline_once_per_image(tmp_path):
  """Three class-id targets of one image folder: the baseline's maps are
  computed for the first and reused by the others (no baseline call), with
  the metrics each target gets when evaluated alone."""
  root = str(tmp_path / "celeb")
  rng = np.random.default_rng(3)
  for i in range(5):
    image, _ = _planted(40 + 4 * i, 48, (8, 10, 30, 40))
    _write(f"{root}/images/{i}.png", image)
    _write(f"{root}/labels/{i}.png",
           rng.integers(0, 19, image.shape[:2]).astype(np.uint8))
  entries = [f"folder:{root}/images:{root}/labels:classes={t}"
             for t in ("face", "head", "person")]
  workdir = str(tmp_path / "w")
  os.makedirs(workdir)
  stage.evaluate(_config(eval__datasets=",".join(entries),
                         eval__predictor="centre_prior", eval__baselines=""),
                 workdir)
  results = [json.load(open(os.path.join(
      workdir, layout.result_path(e, "centre_prior"))))["result"]
             for e in entries]
  assert [r["model_calls"] for r in results] == [1, 0, 0]  # One chunk.
  for entry, together in zip(entries, results):
    alone = str(tmp_path / f"alone_{entries.index(entry)}")
    os.makedirs(alone)
    stage.evaluate(_config(eval__datasets=entry,
                           eval__predictor="centre_prior",
                           eval__baselines=""), alone)
    single = json.load(open(os.path.join(
        alone, layout.result_path(entry, "centre_prior"))))["result"]
    assert single["model_calls"] > 0
    for metric in ("maxF", "IoU", "acc", "MAE"):
      assert together[metric] == single[metric]
