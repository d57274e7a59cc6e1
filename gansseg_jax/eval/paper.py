"""The paper's numbers (docs/method.md section 9), to print beside ours.

Segmentation rows are (maxF_beta, IoU, accuracy). The paper's "E-BigBiGAN"
rows sample latents from encoder embeddings (config.synth.latents =
'embeddings'), its "BigBiGAN" rows from the prior ('prior'); CUB and Flowers
have E-BigBiGAN rows only (table 1).
"""
from typing import Optional

ROW_OF_LATENTS = {"embeddings": "E-BigBiGAN", "prior": "BigBiGAN"}

SEGMENTATION = {
    "E-BigBiGAN": {
        "cub": (0.834, 0.710, 0.940),
        "flowers": (0.878, 0.804, 0.904),
        "ecssd": (0.797, 0.684, 0.906),
        "duts_te": (0.624, 0.511, 0.882),
        "dut_omron": (0.563, 0.464, 0.860),
    },
    "BigBiGAN": {
        "ecssd": (0.782, 0.672, 0.899),
        "duts_te": (0.608, 0.498, 0.878),
        "dut_omron": (0.549, 0.453, 0.856),
    },
}

# Table 3. ImageNet (MaxBoxAcc 0.614) and OpenImages (PxAP 0.638) are not
# among the datasets wired here; they are quoted in eval.md's notes.
WSOL = {"cub": {"MaxBoxAcc": 0.742}}
WSOL_NOT_WIRED = "ImageNet MaxBoxAcc 0.614, OpenImages PxAP 0.638"


def segmentation(dataset: str, latents: str) -> Optional[dict]:
  """{'row', 'maxF', 'IoU', 'acc'} of the paper for `dataset`, or None.

  The row matching `latents` is used; where the paper has none for the
  dataset, its E-BigBiGAN row (named in 'row').
  """
  row = ROW_OF_LATENTS.get(latents, "E-BigBiGAN")
  if dataset not in SEGMENTATION[row]:
    row = "E-BigBiGAN"
  if dataset not in SEGMENTATION[row]:
    return None
  max_f, iou, acc = SEGMENTATION[row][dataset]
  return {"row": row, "maxF": max_f, "IoU": iou, "acc": acc}

# Published numbers of the baselines (maxF_beta, IoU, accuracy): the GAN
# paper's table of "shallow" unsupervised methods on ECSSD (wCtr = Zhu et
# al., CVPR 2014). Sources and PASCAL-S comparisons: docs/baselines.md.
BASELINES = {
    "wctr": {"ecssd": (0.684, 0.517, 0.862)},
}


def baseline(dataset: str, predictor: str) -> Optional[dict]:
  """{'row', 'maxF', 'IoU', 'acc'} published for a baseline, or None."""
  found = BASELINES.get(predictor, {}).get(dataset)
  if found is None:
    return None
  max_f, iou, acc = found
  return {"row": "GAN paper's table", "maxF": max_f, "IoU": iou, "acc": acc}
