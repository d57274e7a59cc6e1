"""Baseline predictors that need no training, beside the U-Net everywhere.

A baseline maps one uint8 RGB image [H, W, 3] at its own size to a saliency
map float32 [H, W] in [0, 1] (`saliency`), and is a picklable value so that
gansseg_jax.eval.inference can spread images over worker processes.
  centre_prior  a Gaussian at the image centre (centre_prior.py)
  wctr          Zhu et al., CVPR 2014, optimised weighted contrast (wctr.py)
docs/baselines.md says where every constant comes from.
"""
from typing import Protocol

import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.eval.baselines import centre_prior
from gansseg_jax.eval.baselines import wctr

# The model trained by this project: read from W/unet, not a baseline.
UNET = "unet"
NAMES = ("centre_prior", "wctr")
# U-Nets trained on real photos at eval time (gansseg_jax/train/real.py).
REAL_TRAINED = ("selftrain", "supervised")
PREDICTORS = (UNET,) + NAMES + REAL_TRAINED


class Baseline(Protocol):
  name: str

  def saliency(self, image: np.ndarray) -> np.ndarray:
    ...


def make(name: str, eval_config: ml_collections.ConfigDict) -> Baseline:
  """The baseline `name` with its settings from config.eval."""
  if name == "centre_prior":
    return centre_prior.CentrePrior(float(eval_config.centre_prior_sigma))
  if name == "wctr":
    return wctr.WCtr(wctr.Params.from_config(eval_config.wctr))
  raise errors.UserError(f"config.eval.predictor: unknown baseline {name!r}; "
                         f"choose from {', '.join(NAMES)}")


def parse_list(text: str) -> list[str]:
  """config.eval.baselines: comma-separated predictor names, validated
  ('' = none): baselines, and the U-Nets beside another main predictor."""
  names = [n.strip() for n in str(text).split(",") if n.strip()]
  for name in names:
    if name not in PREDICTORS:
      raise errors.UserError(
          f"config.eval.baselines: unknown predictor {name!r}; choose from "
          f"{', '.join(PREDICTORS)} (or leave it empty)")
  if len(set(names)) != len(names):
    raise errors.UserError(f"config.eval.baselines: {text!r} names one "
                           "twice")
  return names


def check_config(eval_config: ml_collections.ConfigDict) -> None:
  """Raises UserError for an unknown predictor, baseline or wCtr variant.

  The numeric baseline fields are checked with every other field, in
  gansseg_jax/run/config_checks.py.
  """
  if eval_config.predictor not in PREDICTORS:
    raise errors.UserError(
        f"config.eval.predictor: {eval_config.predictor!r} is not one of "
        f"{', '.join(PREDICTORS)}")
  parse_list(eval_config.baselines)
  if eval_config.wctr.variant not in wctr.VARIANTS:
    raise errors.UserError(
        f"config.eval.wctr.variant: {eval_config.wctr.variant!r} is not one "
        f"of {', '.join(wctr.VARIANTS)}")
