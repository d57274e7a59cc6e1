"""DUTS: DUTS-TR (10553 training images) and DUTS-TE (5019 test images).

Two builders, so that either part can be prepared without the other; both
read the same manual dir (<config.eval.manual_dir>/duts/).
"""
import tensorflow_datasets as tfds

from gansseg_jax.data.tfds_builders import common

_HOMEPAGE = "http://saliencydetection.net/duts/"
_CITATION = """@inproceedings{wang2017learning,
  title={Learning to detect salient objects with image-level supervision},
  author={Wang, Lijun and Lu, Huchuan and Wang, Yifan and Feng, Mengyang and
          Wang, Dong and Yin, Baocai and Ruan, Xiang},
  booktitle={CVPR}, pages={136--145}, year={2017}}"""
_INSTRUCTIONS = """
  From the DUTS page download `DUTS-TE.zip` (and `DUTS-TR.zip` for the
  training part) and put them, or their extracted folders, into the manual
  dir, e.g. <config.eval.manual_dir>/duts/. The folders used are
  DUTS-TE-Image/ + DUTS-TE-Mask/ and DUTS-TR-Image/ + DUTS-TR-Mask/; images
  and masks are matched by file stem.
  """


class DutsTe(common.PairedFolderBuilder):
  """DUTS-TE, the 5019 test images of DUTS (paper table 2)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Images and binarised masks, split 'test'."}
  IMAGES_FOLDER = "DUTS-TE-Image"
  MASKS_FOLDER = "DUTS-TE-Mask"
  SPLIT = "test"
  DESCRIPTION = "DUTS-TE: 5019 test images with salient-object masks."
  HOMEPAGE = _HOMEPAGE
  CITATION = _CITATION
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS


class DutsTr(common.PairedFolderBuilder):
  """DUTS-TR, the 10553 training images of DUTS."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Images and binarised masks, split 'train'."}
  IMAGES_FOLDER = "DUTS-TR-Image"
  MASKS_FOLDER = "DUTS-TR-Mask"
  SPLIT = "train"
  DESCRIPTION = "DUTS-TR: 10553 training images with salient-object masks."
  HOMEPAGE = _HOMEPAGE
  CITATION = _CITATION
  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
