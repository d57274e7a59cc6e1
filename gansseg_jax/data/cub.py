"""CUB-200-2011 from TFDS's `caltech_birds2011`, in ReDO's train/val/test split.

TFDS's builder carries the images, the segmentation masks (soft, 0..255,
binarised here at 0.5 of the range) and one bounding box per image, but only
the dataset's own train/test split. The paper follows ReDO (Chen et al.
2019): 10000 train / 788 validation (unused) / 1000 test images. The split
is read from two small text files the user puts in `<manual_dir>/cub/`:

- `train_val_test_split.txt` from ReDO's repository
  (github.com/mickaelChen/ReDO, datasplits/cub/train_val_test_split.txt):
  lines `<image_id> <code>`, code 0 = train, 1 = validation, 2 = test;
- `images.txt` from CUB_200_2011.tgz: lines `<image_id> <class>/<file>.jpg`,
  which maps ReDO's image ids to file names.

The examples of both TFDS splits are scanned and those whose file name
(`image/filename`, last two path components) has the wanted code are kept;
the images of the others are never decoded. Boxes are converted from TFDS's
normalised (ymin, xmin, ymax, xmax) to pixel edges.
"""
import io
import os
from typing import Iterator

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.data import checks
from gansseg_jax.data import example as example_lib
from gansseg_jax.data import images as images_lib

TFDS_NAME = "caltech_birds2011"
SPLIT_FILE = "train_val_test_split.txt"
IMAGES_FILE = "images.txt"
REDO_CODES = {"train": 0, "validation": 1, "test": 2}


def _read_pairs(path: str) -> dict[str, str]:
  """{first field: second field} of a whitespace-separated two-column file."""
  if not os.path.isfile(path):
    raise errors.UserError(f"{path}: missing (see gansseg_jax/data/cub.py)")
  pairs = {}
  with open(path) as f:
    for number, line in enumerate(f, 1):
      fields = line.split()
      if not fields:
        continue
      if len(fields) != 2:
        raise errors.UserError(f"{path}:{number}: expected 2 fields, got "
                               f"{len(fields)}")
      pairs[fields[0]] = fields[1]
  return pairs


def redo_file_names(cub_dir: str, split: str) -> frozenset[str]:
  """'<class>/<file>.jpg' of every image in ReDO's `split`."""
  if split not in REDO_CODES:
    raise errors.UserError(f"CUB split {split!r} is not one of "
                           f"{sorted(REDO_CODES)}")
  codes = _read_pairs(os.path.join(cub_dir, SPLIT_FILE))
  names = _read_pairs(os.path.join(cub_dir, IMAGES_FILE))
  missing = codes.keys() - names.keys()
  if missing:
    raise errors.UserError(
        f"{os.path.join(cub_dir, IMAGES_FILE)}: no file name for "
        f"{len(missing)} image ids of {SPLIT_FILE} (e.g. {min(missing)})")
  wanted = str(REDO_CODES[split])
  return frozenset(names[i] for i, code in codes.items() if code == wanted)


def relative_name(tfds_filename: str) -> str:
  """'CUB_200_2011/images/001.Albatross/x.jpg' -> '001.Albatross/x.jpg'."""
  return "/".join(tfds_filename.replace("\\", "/").split("/")[-2:])


def examples(data_dir: str, cub_dir: str, split: str, allow_download: bool,
             min_side: int,
             log: example_lib.ReadLog) -> tuple[Iterator[example_lib.Example],
                                                int]:
  """(examples of ReDO's `split`, their number).

  caltech_birds2011 must be prepared in `data_dir` (TFDS's default when
  empty) unless `allow_download`, which lets TFDS download it (1.2 GB).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  wanted = redo_file_names(cub_dir, split)
  builder = tfds.builder(TFDS_NAME, data_dir=data_dir or None)
  if not builder.is_prepared():
    if not allow_download:
      raise errors.UserError(
          f"config.eval.data_dir: {TFDS_NAME} is not prepared in "
          f"{builder.data_dir_root}; prepare it with tfds or set "
          "config.eval.allow_download=True")
    builder.download_and_prepare()
  dataset = builder.as_dataset(
      split="train+test", shuffle_files=False,
      decoders={"image": tfds.decode.SkipDecoding(),
                "segmentation_mask": tfds.decode.SkipDecoding()})

  def generate():
    for record in tfds.as_numpy(dataset):
      name = relative_name(record["image/filename"].decode())
      if name not in wanted:
        continue
      try:
        image = images_lib.read_rgb(io.BytesIO(record["image"]), name)
        mask = images_lib.read_mask(io.BytesIO(record["segmentation_mask"]),
                                    name + " mask")
      except images_lib.UnreadableImageError as e:
        checks.record_unreadable(e, log)
        continue
      height, width = image.shape[:2]
      box = record["bbox"].reshape(1, 4) * [height, width, height, width]
      example = checks.checked_example(name, image, mask,
                                       box.astype(np.float32), min_side, log)
      if example is not None:
        yield example

  return generate(), len(wanted)
