"""The folder source: matching by stem, mismatch reports, soft masks, specs."""
import os

import ml_collections
import numpy as np
from PIL import Image
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.data import example as example_lib
from gansseg_jax.data import folder
from gansseg_jax.data import sources
from gansseg_jax.eval import layout


def _write(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)


@pytest.fixture
def dataset(tmp_path):
  """root/images + root/masks with every kind of mismatch."""
  root = str(tmp_path / "pascal-like")
  rng = np.random.default_rng(0)
  for stem in ("1", "2", "10"):
    _write(f"{root}/images/{stem}.jpg",
           rng.integers(0, 256, (20, 30, 3)).astype(np.uint8))
  soft = np.zeros((20, 30), np.uint8)
  soft[:, :10], soft[:, 10:20] = 200, 128  # >= 128 is foreground.
  soft[:, 20:] = 127
  for stem in ("1", "2", "10"):
    _write(f"{root}/masks/{stem}.png", soft)
  _write(f"{root}/images/only_image.png", np.zeros((9, 9, 3), np.uint8))
  _write(f"{root}/masks/only_mask.png", np.zeros((9, 9), np.uint8))
  _write(f"{root}/images/dup.png", np.zeros((9, 9, 3), np.uint8))
  _write(f"{root}/images/dup.jpg", np.zeros((9, 9, 3), np.uint8))
  _write(f"{root}/masks/dup.png", np.zeros((9, 9), np.uint8))
  with open(f"{root}/images/notes.txt", "w") as f:
    f.write("not an image")
  with open(f"{root}/images/.hidden.png", "w") as f:
    f.write("ignored")
  return root


def test_match_folders_reports_mismatches(dataset):
  pairs = folder.match_folders(f"{dataset}/images", f"{dataset}/masks", "f")
  assert [p[0] for p in pairs.pairs] == ["1", "2", "10"]  # Natural order.
  assert pairs.images_without_mask == ("only_image.png",)
  assert pairs.masks_without_image == ("only_mask.png",)
  assert pairs.ambiguous == ("dup",)
  assert pairs.mismatch_counts() == {"images_without_mask": 1,
                                     "masks_without_image": 1,
                                     "ambiguous_stems": 1}


def test_soft_masks_binarised_at_half_range(dataset):
  pairs = folder.match_folders(f"{dataset}/images", f"{dataset}/masks", "f")
  log = example_lib.ReadLog()
  examples = list(folder.iterate_examples(pairs, 8, log))
  assert len(examples) == 3
  expected = np.zeros((20, 30), bool)
  expected[:, :20] = True
  for example in examples:
    np.testing.assert_array_equal(example.mask, expected)
    assert example.image.shape == (20, 30, 3) and example.boxes is None


def test_unreadable_small_and_resized_are_logged(tmp_path):
  images_dir, masks_dir = str(tmp_path / "im"), str(tmp_path / "ma")
  _write(f"{images_dir}/ok.png", np.zeros((12, 12, 3), np.uint8))
  _write(f"{masks_dir}/ok.png", np.full((6, 6), 255, np.uint8))  # Half size.
  _write(f"{images_dir}/tiny.png", np.zeros((5, 40, 3), np.uint8))
  _write(f"{masks_dir}/tiny.png", np.zeros((5, 40), np.uint8))
  with open(f"{images_dir}/bad.jpg", "wb") as f:
    f.write(b"\xff\xd8 truncated")
  _write(f"{masks_dir}/bad.png", np.zeros((5, 5), np.uint8))
  log = example_lib.ReadLog()
  pairs = folder.match_folders(images_dir, masks_dir, "f")
  examples = list(folder.iterate_examples(pairs, 8, log))
  assert [e.name for e in examples] == ["ok"]
  assert examples[0].mask.shape == (12, 12) and examples[0].mask.all()
  assert log.counts() == {"unreadable": 1, "too_small": 1, "masks_resized": 1,
                          "without_mask": 0, "ambiguous": 0}


@pytest.mark.parametrize("mask_shape", [(30, 20), (20, 20)])
def test_mask_of_another_aspect_ratio_is_refused(tmp_path, mask_shape):
  """A transposed mask is refused, not stretched onto its image."""
  _write(f"{tmp_path}/im/a.png", np.zeros((20, 30, 3), np.uint8))
  _write(f"{tmp_path}/ma/a.png", np.zeros(mask_shape, np.uint8))
  pairs = folder.match_folders(f"{tmp_path}/im", f"{tmp_path}/ma", "f")
  with pytest.raises(errors.UserError, match=(
      f"mask {mask_shape[1]}x{mask_shape[0]} has another aspect ratio than "
      "its image 30x20")):
    list(folder.iterate_examples(pairs, 8, example_lib.ReadLog()))


def test_no_pairs_or_missing_folder_is_a_user_error(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "b").mkdir()
  with pytest.raises(errors.UserError, match="config.eval.datasets"):
    folder.match_folders(str(tmp_path / "a"), str(tmp_path / "b"),
                         "config.eval.datasets")
  with pytest.raises(errors.UserError, match="does not exist"):
    folder.match_folders(str(tmp_path / "nope"), str(tmp_path / "b"), "f")


def test_parse_dataset_list():
  field = "config.eval.datasets"
  assert sources.parse_dataset_list(" ecssd, cub ,folder:a:b", field) == [
      "ecssd", "cub", "folder:a:b"]
  for bad in ("", " , ", "imagenet", "ecssd,ecssd", "folder:", "folder:a:b:c"):
    with pytest.raises(errors.UserError, match=field):
      sources.parse_dataset_list(bad, field)
  assert sources.folder_dirs("folder:/x/pascal-s", field) == (
      "/x/pascal-s/images", "/x/pascal-s/masks")
  assert sources.folder_title("/x/pascal-s/images", "/x/pascal-s/masks") == (
      "pascal-s")
  assert sources.folder_title("/x/imgs", "/y/gts") == "imgs"


def test_open_folder_source(dataset):
  eval_config = ml_collections.ConfigDict({"min_side": 8})
  source = sources.open_source(f"folder:{dataset}", eval_config)
  assert (source.title, source.mode, source.size) == ("pascal-like", "full", 3)
  assert len(list(source.examples)) == 3


def test_scenes_source_yields_the_rendered_scenes():
  from gansseg_jax.data import scenes

  entry = "scenes:3:5:16"
  assert sources.parse_dataset_list(entry, "f") == [entry]
  source = sources.open_source(entry, None)
  got = list(source.examples)
  reference = scenes.render_scenes(3, 5, 16)
  assert source.size == 5 and len(got) == 5
  for i, example in enumerate(got):
    np.testing.assert_array_equal(example.mask, reference.masks[i] > 0.5)
    np.testing.assert_allclose(example.image / 127.5 - 1.0, reference.images[i],
                               atol=1 / 127.5)


@pytest.mark.parametrize("entry", ["scenes:1:0:16", "scenes:x:2:16", "scenes:1:2"])
def test_scenes_source_rejects_bad_specs(entry):

  with pytest.raises(errors.UserError, match="scenes:<seed>:<count>:<resolution>"):
    sources.parse_dataset_list(entry, "config.eval.datasets")


def _class_map_folder(tmp_path):
  """root/images + root/labels: 3 images, label maps of random ids 0..18."""
  root = str(tmp_path / "celeb-like")
  rng = np.random.default_rng(1)
  labels = {}
  for stem in ("a", "b", "c"):
    _write(f"{root}/images/{stem}.jpg",
           rng.integers(0, 256, (16, 12, 3)).astype(np.uint8))
    labels[stem] = rng.integers(0, 19, (16, 12)).astype(np.uint8)
    _write(f"{root}/labels/{stem}.png", labels[stem])
  return root, labels


@pytest.mark.parametrize("classes,ids", [
    ("1-12,15", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15]),
    ("face", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15]),
    ("head", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
    ("person", list(range(1, 19))),
    ("13", [13])])
def test_class_map_target_matches_a_numpy_reference(tmp_path, classes, ids):
  root, labels = _class_map_folder(tmp_path)
  entry = f"folder:{root}/images:{root}/labels:classes={classes}"
  assert sources.parse_dataset_list(f"ecssd,{entry},cub",
                                    "config.eval.datasets") == [
                                        "ecssd", entry, "cub"]
  source = sources.open_source(entry, ml_collections.ConfigDict(
      {"min_side": 8}))
  examples = list(source.examples)
  assert [e.name for e in examples] == ["a", "b", "c"]
  for example in examples:
    reference = np.zeros(labels[example.name].shape, bool)
    for class_id in ids:  # Independent of np.isin: one id at a time.
      reference |= labels[example.name] == class_id
    np.testing.assert_array_equal(example.mask, reference)


def test_parts_split_the_sorted_pairs_into_disjoint_halves(tmp_path):
  root, _ = _class_map_folder(tmp_path)
  config = ml_collections.ConfigDict({"min_side": 8})
  names = {}
  for part in ("1/2", "2/2"):
    source = sources.open_source(
        f"folder:{root}/images:{root}/labels:classes=face:part={part}", config)
    names[part] = [e.name for e in source.examples]
  assert names == {"1/2": ["a"], "2/2": ["b", "c"]}  # 3 * 1 // 2 = 1.


def test_targets_of_one_folder_get_distinct_names(tmp_path):
  root, _ = _class_map_folder(tmp_path)
  config = ml_collections.ConfigDict({"min_side": 8})
  entries = [f"folder:{root}/images:{root}/labels:classes={t}"
             for t in ("face", "head", "person")]
  entries.append(entries[0] + ":part=2/2")
  titles = [sources.open_source(e, config).title for e in entries]
  assert titles == ["celeb-like face", "celeb-like head", "celeb-like person",
                    "celeb-like face 2/2"]
  names = [layout.dataset_name(e) for e in entries]
  assert names == titles
  dirs = [layout.dataset_dir(e) for e in entries]
  assert len(set(dirs)) == 4
  assert os.path.basename(dirs[0]).startswith("celeb-like_face_")
  assert os.path.basename(dirs[3]).startswith("celeb-like_face_2_2_")


@pytest.mark.parametrize("bad", [
    "folder:a:b:classes=", "folder:a:b:classes=x", "folder:a:b:classes=5-2",
    "folder:a:b:part=3/2", "folder:a:b:part=0/2", "folder:a:b:part=1",
    "folder:a:b:size=2", "folder:a:b:part=1/2:part=2/2"])
def test_bad_folder_options_name_the_field(bad):
  with pytest.raises(errors.UserError, match="config.eval.datasets"):
    sources.parse_dataset_list(bad, "config.eval.datasets")


def test_colour_label_maps_are_skipped_as_not_class_maps(tmp_path):
  root = str(tmp_path / "rgb")
  _write(f"{root}/images/a.png", np.zeros((9, 9, 3), np.uint8))
  _write(f"{root}/masks/a.png", np.zeros((9, 9, 3), np.uint8))
  log = example_lib.ReadLog()
  pairs = folder.match_folders(f"{root}/images", f"{root}/masks", "f")
  assert not list(folder.iterate_examples(pairs, 8, log, frozenset({1})))
  assert "not a class-id map" in log.unreadable[0]
