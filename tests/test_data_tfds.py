"""TFDS builders on tiny generated manual dirs, and CUB through a mocked
caltech_birds2011. Nothing is downloaded."""
import io
import os
import shutil
import zipfile

import ml_collections
import numpy as np
from PIL import Image
import pytest
from scipy import io as scipy_io

from gansseg_jax.infra import errors
from gansseg_jax.data import sources

tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")


def _png_bytes(array):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


def _write(path, array, **kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path, **kwargs)


def _eval_config(tmp_path, **overrides):
  config = ml_collections.ConfigDict({
      "data_dir": str(tmp_path / "tfds"),
      "manual_dir": str(tmp_path / "manual"),
      "allow_download": False, "min_side": 8})
  config.update(overrides)
  return config


def _pair(rng, height, width):
  image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
  soft = rng.integers(0, 256, (height, width)).astype(np.uint8)
  return image, soft


def test_ecssd_from_zip_archives(tmp_path):
  rng = np.random.default_rng(0)
  manual = tmp_path / "manual" / "ecssd"
  manual.mkdir(parents=True)
  expected = {}
  with zipfile.ZipFile(manual / "images.zip", "w") as images_zip, \
       zipfile.ZipFile(manual / "ground_truth_mask.zip", "w") as masks_zip:
    for stem, size in (("0001", (20, 30)), ("0002", (33, 17))):
      image, soft = _pair(rng, *size)
      images_zip.writestr(f"images/{stem}.png", _png_bytes(image))
      masks_zip.writestr(f"ground_truth_mask/{stem}.png", _png_bytes(soft))
      expected[stem] = (image, soft > 127)
  source = sources.open_source("ecssd", _eval_config(tmp_path))
  assert (source.title, source.mode, source.has_boxes, source.size) == (
      "ECSSD", "full", False, 2)
  examples = {e.name: e for e in source.examples}
  assert examples.keys() == expected.keys()
  for stem, (image, mask) in expected.items():
    np.testing.assert_array_equal(examples[stem].image, image)
    np.testing.assert_array_equal(examples[stem].mask, mask)
  # Once prepared, the raw files are no longer needed.
  shutil.rmtree(manual)
  again = sources.open_source("ecssd", _eval_config(tmp_path))
  assert sorted(e.name for e in again.examples) == ["0001", "0002"]


def test_duts_te_and_dut_omron_from_folders(tmp_path):
  rng = np.random.default_rng(1)
  root = tmp_path / "manual"
  image, soft = _pair(rng, 24, 16)
  _write(f"{root}/duts/DUTS-TE/DUTS-TE-Image/a.png", image)
  _write(f"{root}/duts/DUTS-TE/DUTS-TE-Mask/a.png", soft)
  # DUT-OMRON: an RGBA image (converted over white) and a grayscale JPEG.
  rgba = np.dstack([image, np.full((24, 16), 255, np.uint8)])
  rgba[0, 0, 3] = 0
  _write(f"{root}/dut_omron/DUT-OMRON-image/x.png", rgba)
  gray = rng.integers(0, 256, (10, 12)).astype(np.uint8)
  _write(f"{root}/dut_omron/DUT-OMRON-image/y.jpg", gray, quality=95)
  _write(f"{root}/dut_omron/pixelwiseGT-new-PNG/x.png", soft)
  _write(f"{root}/dut_omron/pixelwiseGT-new-PNG/y.png", soft[:10, :12])
  config = _eval_config(tmp_path)
  duts = list(sources.open_source("duts_te", config).examples)
  assert [e.name for e in duts] == ["a"]
  np.testing.assert_array_equal(duts[0].image, image)
  np.testing.assert_array_equal(duts[0].mask, soft > 127)
  omron = {e.name: e for e in sources.open_source("dut_omron", config).examples}
  expected_x = image.copy()
  expected_x[0, 0] = 255
  np.testing.assert_array_equal(omron["x"].image, expected_x)
  decoded = np.asarray(Image.open(f"{root}/dut_omron/DUT-OMRON-image/y.jpg"))
  assert omron["y"].image.shape == (10, 12, 3)
  for channel in range(3):  # Gray replicated; TF's JPEG IDCT is not Pillow's.
    difference = np.abs(omron["y"].image[..., channel].astype(int) - decoded)
    assert difference.max() <= 10 and difference.mean() <= 3


def test_flowers_redo_splits_and_mask_rule(tmp_path):
  rng = np.random.default_rng(2)
  root = tmp_path / "manual" / "flowers"
  truths = {}
  for image_id in range(1, 5):
    image, _ = _pair(rng, 12, 14)
    _write(f"{root}/jpg/image_{image_id:05d}.jpg", image, quality=95)
    segmentation = rng.integers(1, 250, (12, 14, 3)).astype(np.uint8)
    background = rng.random((12, 14)) < 0.5
    segmentation[background] = [0, 0, 254]  # The blue background.
    segmentation[0, 0] = [7, 0, 90]  # G == 0: background by ReDO's rule.
    # Stored losslessly (PNG data; readers go by content, not extension) so
    # the test sees the exact colours the rule looks at.
    _write(f"{root}/segmim/segmim_{image_id:05d}.jpg", segmentation,
           format="PNG")
    truth = ~background
    truth[0, 0] = False
    truths[f"image_{image_id:05d}"] = truth
  scipy_io.savemat(root / "setid.mat", {"trnid": np.array([[1, 3]]),
                                        "valid": np.array([[2]]),
                                        "tstid": np.array([[4]])})
  source = sources.open_source("flowers", _eval_config(tmp_path))
  assert (source.mode, source.size) == ("crop", 2)
  examples = list(source.examples)
  assert sorted(e.name for e in examples) == ["image_00001", "image_00003"]
  for example in examples:
    np.testing.assert_array_equal(example.mask, truths[example.name])


def test_missing_manual_files_is_a_user_error(tmp_path):
  with pytest.raises(errors.UserError, match="config.eval.manual_dir"):
    sources.open_source("ecssd", _eval_config(tmp_path))


def test_cub_needs_prepared_data_or_download_permission(tmp_path):
  cub_dir = tmp_path / "manual" / "cub"
  cub_dir.mkdir(parents=True)
  (cub_dir / "images.txt").write_text("1 001.A/a.jpg\n")
  (cub_dir / "train_val_test_split.txt").write_text("1 2\n")
  with pytest.raises(errors.UserError, match="allow_download"):
    sources.open_source("cub", _eval_config(tmp_path))


def test_cub_redo_test_split_from_mocked_caltech_birds(tmp_path, monkeypatch):
  rng = np.random.default_rng(3)
  cub_dir = tmp_path / "manual" / "cub"
  cub_dir.mkdir(parents=True)
  names = ["001.A/a1.jpg", "001.A/a2.jpg", "002.B/b1.jpg", "002.B/b2.jpg"]
  codes = [0, 2, 2, 1]
  (cub_dir / "images.txt").write_text(
      "".join(f"{i} {n}\n" for i, n in enumerate(names, 1)))
  (cub_dir / "train_val_test_split.txt").write_text(
      "".join(f"{i} {c}\n" for i, c in enumerate(codes, 1)))
  records, expected = [], {}
  for name in names:
    image, soft = _pair(rng, 20, 40)
    bbox = np.array([0.25, 0.1, 0.75, 0.6], np.float32)
    records.append({
        "image": _png_bytes(image),
        "segmentation_mask": _png_bytes(soft),
        "image/filename": f"CUB_200_2011/images/{name}".encode(),
        "bbox": bbox})
    expected[name] = (image, soft > 127, bbox * [20, 40, 20, 40])

  def as_dataset(self, split, decoders=None, read_config=None,
                 shuffle_files=False):
    del self, split, read_config, shuffle_files
    assert set(decoders) == {"image", "segmentation_mask"}  # Not decoded.
    signature = {"image": tf.TensorSpec((), tf.string),
                 "segmentation_mask": tf.TensorSpec((), tf.string),
                 "image/filename": tf.TensorSpec((), tf.string),
                 "bbox": tf.TensorSpec((4,), tf.float32)}
    return tf.data.Dataset.from_generator(lambda: iter(records),
                                          output_signature=signature)

  monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared",
                      lambda self: True)
  with tfds.testing.mock_data(as_dataset_fn=as_dataset):
    source = sources.open_source("cub", _eval_config(tmp_path))
    assert (source.mode, source.has_boxes, source.size) == ("crop", True, 2)
    examples = list(source.examples)
  assert [e.name for e in examples] == ["001.A/a2.jpg", "002.B/b1.jpg"]
  for example in examples:
    image, mask, box = expected[example.name]
    np.testing.assert_array_equal(example.image, image)
    np.testing.assert_array_equal(example.mask, mask)
    np.testing.assert_allclose(example.boxes, [box])
