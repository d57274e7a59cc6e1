"""What the manual-download builders share: features, finding folders, encoding.

Every builder here reads files the user downloaded by hand into its manual
dir (nothing is fetched), either extracted or as the original archives
(.zip, .tar, .tar.gz, .tgz; TFDS extracts them locally into its extract dir).
Examples have the features
  image: uint8 [H, W, 3]  (JPEG/PNG bytes kept as they are when RGB or gray,
                           other files converted by gansseg_jax.data.images)
  mask:  uint8 [H, W, 1]  0 or 255, the ground truth binarised at 0.5 of its
                           range (docs/method.md section 8)
  name:  text             the file stem
"""
import os
from typing import Iterator, Union

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from gansseg_jax.infra import errors
from gansseg_jax.data import folder
from gansseg_jax.data import images as images_lib

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_PASSTHROUGH_FORMATS = ("JPEG", "PNG")
_PASSTHROUGH_MODES = ("RGB", "L")


def features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3)),
      "mask": tfds.features.Image(shape=(None, None, 1)),
      "name": tfds.features.Text(),
  })


def _walk_for(root: str, name: str, want_dir: bool) -> Union[str, None]:
  for parent, dirs, files in os.walk(root):
    dirs.sort()
    if name in (dirs if want_dir else files):
      return os.path.join(parent, name)
  return None


def find_in_manual_dir(dl_manager: tfds.download.DownloadManager, name: str,
                       want_dir: bool = True) -> str:
  """Path of the folder (or file) `name` in the manual dir or its archives.

  The manual dir is searched first; then each archive in it is extracted
  (locally, cached by TFDS) and searched. Raises UserError when not found.
  """
  manual = os.fspath(dl_manager.manual_dir)
  found = _walk_for(manual, name, want_dir)
  if found:
    return found
  for archive in sorted(os.listdir(manual)):
    if archive.lower().endswith(ARCHIVE_SUFFIXES):
      extracted = os.fspath(dl_manager.extract(os.path.join(manual, archive)))
      found = _walk_for(extracted, name, want_dir)
      if found:
        return found
  kind = "folder" if want_dir else "file"
  raise errors.UserError(
      f"{manual}: no {kind} {name!r} in the manual dir or in its archives "
      f"({', '.join(ARCHIVE_SUFFIXES)})")


def encodable_image(path: str) -> Union[bytes, np.ndarray]:
  """The file's bytes when TFDS can decode them as RGB unchanged, else RGB.

  Raises images.UnreadableImageError for files Pillow cannot decode.
  """
  image = images_lib.open_image(path)
  if (images_lib.file_format(path) in _PASSTHROUGH_FORMATS
      and image.mode in _PASSTHROUGH_MODES):
    with open(path, "rb") as f:
      return f.read()
  return images_lib.to_rgb(image)


def binary_mask_feature(mask: np.ndarray) -> np.ndarray:
  """bool [H, W] -> uint8 [H, W, 1] with values 0 and 255."""
  return (np.asarray(mask, dtype=np.uint8) * 255)[:, :, None]


def paired_folder_examples(images_dir: str, masks_dir: str,
                           field: str) -> Iterator[tuple[str, dict]]:
  """(key, example) for each image/mask pair matched by stem; unreadable
  pairs are skipped with a warning."""
  pairs = folder.match_folders(images_dir, masks_dir, field)
  for stem, image_path, mask_path in pairs.pairs:
    try:
      image = encodable_image(image_path)
      mask = images_lib.read_mask(mask_path)
    except images_lib.UnreadableImageError as e:
      logging.warning("skipped: %s", e)
      continue
    yield stem, {"image": image, "mask": binary_mask_feature(mask),
                 "name": stem}


class PairedFolderBuilder(tfds.core.GeneratorBasedBuilder,
                          skip_registration=True):
  """A dataset of one split from an images folder and a masks folder.

  Subclasses set IMAGES_FOLDER and MASKS_FOLDER (folder names searched in the
  manual dir and its archives), SPLIT, DESCRIPTION, HOMEPAGE, CITATION,
  VERSION and MANUAL_DOWNLOAD_INSTRUCTIONS.
  """
  # No checksums file: nothing is downloaded. (Also keeps TFDS 4.9.10 from
  # looking up the module's resource path, which imports the
  # `importlib_resources` backport it does not install on Python >= 3.9.)
  code_path = None
  IMAGES_FOLDER = ""
  MASKS_FOLDER = ""
  SPLIT = "test"
  DESCRIPTION = ""
  HOMEPAGE = ""
  CITATION = ""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self.DESCRIPTION, features=features(),
        homepage=self.HOMEPAGE, citation=self.CITATION)

  def _split_generators(self, dl_manager):
    images_dir = find_in_manual_dir(dl_manager, self.IMAGES_FOLDER)
    masks_dir = find_in_manual_dir(dl_manager, self.MASKS_FOLDER)
    return {self.SPLIT: self._generate_examples(images_dir, masks_dir)}

  def _generate_examples(self, images_dir: str, masks_dir: str):
    yield from paired_folder_examples(images_dir, masks_dir,
                                      f"{self.name} manual dir")
