"""Oxford 102 Flowers with its automatic segmentations, in ReDO's splits.

The images (102flowers.tgz -> jpg/image_NNNNN.jpg), the segmentations
distributed separately on the same page (102segmentations.tgz ->
segmim/segmim_NNNNN.jpg) and the split file setid.mat are read from the
manual dir. The segmentations are colour images whose background is painted
pure blue; following ReDO (Chen et al. 2019, datasets.py), a pixel is
background when R == 0 or G == 0 or B == 254, and foreground otherwise.

Splits follow ReDO, which swaps the dataset's own names: our 'train' is
setid.mat's `tstid` (6149 images), 'validation' is `valid` (1020) and 'test'
is `trnid` (1020). The paper evaluates on 'test'.
"""
import os

from absl import logging
import numpy as np
from scipy import io as scipy_io
import tensorflow_datasets as tfds

from gansseg_jax.data import images as images_lib
from gansseg_jax.data.tfds_builders import common

# Our split -> the setid.mat key ReDO uses for it.
REDO_SPLITS = {"train": "tstid", "validation": "valid", "test": "trnid"}


def redo_foreground(segmentation: np.ndarray) -> np.ndarray:
  """bool [H, W]: not (R == 0 or G == 0 or B == 254) (ReDO's rule)."""
  r, g, b = (segmentation[:, :, c] for c in range(3))
  return ~((r == 0) | (g == 0) | (b == 254))


class Flowers102Segmentation(tfds.core.GeneratorBasedBuilder):
  """Oxford 102 Flowers images with ReDO-binarised segmentations."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "ReDO splits train/validation/test."}
  code_path = None  # No checksums file (see common.PairedFolderBuilder).
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  From https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ download the
  dataset images (102flowers.tgz), the segmentations (102segmentations.tgz)
  and the data splits (setid.mat), and put them, or the extracted jpg/ and
  segmim/ folders, into the manual dir, e.g.
  <config.eval.manual_dir>/flowers/.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Oxford 102 Flowers with the dataset's automatic "
                     "foreground segmentations, binarised as in ReDO."),
        features=common.features(),
        homepage="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        citation="""@inproceedings{nilsback2008automated,
  title={Automated flower classification over a large number of classes},
  author={Nilsback, Maria-Elena and Zisserman, Andrew},
  booktitle={ICVGIP}, pages={722--729}, year={2008}}""")

  def _split_generators(self, dl_manager):
    images_dir = common.find_in_manual_dir(dl_manager, "jpg")
    segmentations_dir = common.find_in_manual_dir(dl_manager, "segmim")
    setid = scipy_io.loadmat(
        common.find_in_manual_dir(dl_manager, "setid.mat", want_dir=False))
    return {
        split: self._generate_examples(
            images_dir, segmentations_dir,
            np.asarray(setid[key]).ravel().astype(int).tolist())
        for split, key in REDO_SPLITS.items()
    }

  def _generate_examples(self, images_dir, segmentations_dir, image_ids):
    for image_id in image_ids:
      name = f"image_{image_id:05d}"
      image_path = os.path.join(images_dir, name + ".jpg")
      segmentation_path = os.path.join(segmentations_dir,
                                       f"segmim_{image_id:05d}.jpg")
      try:
        image = common.encodable_image(image_path)
        segmentation = images_lib.read_rgb(segmentation_path)
      except images_lib.UnreadableImageError as e:
        logging.warning("skipped: %s", e)
        continue
      yield name, {"image": image,
                   "mask": common.binary_mask_feature(
                       redo_foreground(segmentation)),
                   "name": name}
