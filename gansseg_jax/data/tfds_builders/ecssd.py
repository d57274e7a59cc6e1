"""ECSSD: 1000 images with pixel-accurate salient-object masks (all used)."""
import tensorflow_datasets as tfds

from gansseg_jax.data.tfds_builders import common


class Ecssd(common.PairedFolderBuilder):
  """Extended Complex Scene Saliency Dataset (Shi, Yan, Xu, Jia)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Images and binarised masks, split 'test'."}
  IMAGES_FOLDER = "images"
  MASKS_FOLDER = "ground_truth_mask"
  SPLIT = "test"
  DESCRIPTION = "ECSSD: 1000 natural images with salient-object masks."
  HOMEPAGE = ("https://www.cse.cuhk.edu.hk/leojia/projects/hsaliency/"
              "dataset.html")
  CITATION = """@article{shi2016hierarchical,
  title={Hierarchical image saliency detection on extended CSSD},
  author={Shi, Jianping and Yan, Qiong and Xu, Li and Jia, Jiaya},
  journal={IEEE TPAMI}, volume={38}, number={4}, pages={717--729},
  year={2016}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  From the ECSSD page download `images.zip` and `ground_truth_mask.zip` and
  put them (or the `images/` and `ground_truth_mask/` folders they contain)
  into the manual dir, e.g. <config.eval.manual_dir>/ecssd/. Images and masks
  are matched by file stem (0001.jpg <-> 0001.png).
  """
