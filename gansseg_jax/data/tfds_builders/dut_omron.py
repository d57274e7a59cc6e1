"""DUT-OMRON: 5168 images with pixel-wise salient-object masks (all used)."""
import tensorflow_datasets as tfds

from gansseg_jax.data.tfds_builders import common


class DutOmron(common.PairedFolderBuilder):
  """DUT-OMRON (Yang, Zhang, Lu, Ruan, Yang), pixel-wise ground truth."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Images and binarised masks, split 'test'."}
  IMAGES_FOLDER = "DUT-OMRON-image"
  MASKS_FOLDER = "pixelwiseGT-new-PNG"
  SPLIT = "test"
  DESCRIPTION = "DUT-OMRON: 5168 images with pixel-wise salient-object masks."
  HOMEPAGE = "http://saliencydetection.net/dut-omron/"
  CITATION = """@inproceedings{yang2013saliency,
  title={Saliency detection via graph-based manifold ranking},
  author={Yang, Chuan and Zhang, Lihe and Lu, Huchuan and Ruan, Xiang and
          Yang, Ming-Hsuan},
  booktitle={CVPR}, pages={3166--3173}, year={2013}}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  From the DUT-OMRON page download the images (`DUT-OMRON-image.zip`) and the
  pixel-wise ground truth (`DUT-OMRON-gt-pixelwise.zip.zip`) and put them, or
  their extracted folders DUT-OMRON-image/ and pixelwiseGT-new-PNG/, into the
  manual dir, e.g. <config.eval.manual_dir>/dut_omron/. Images and masks are
  matched by file stem.
  """
