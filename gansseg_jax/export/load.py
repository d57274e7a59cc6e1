"""W/export/unet.onnx as segment's predictor (config.segment.backend='onnx').

predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W] float32, run by
onnxruntime on this process's CPU (or the providers onnxruntime has); H and
W multiples of 16, which segment's padding to config.eval.pad_multiple
gives.
"""
import os
from typing import Callable

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import optional
from gansseg_jax.export import onnx_file
from gansseg_jax.export import stage


def load_onnx_predictor(workdir: str) -> Callable[[np.ndarray], np.ndarray]:
  """predict(images) of W/export/unet.onnx in onnxruntime."""
  onnxruntime = optional.load("onnxruntime", "config.segment.backend='onnx'",
                              optional.EXPORT_EXTRA)
  path = stage.onnx_path(workdir)
  if not os.path.isfile(path):
    raise errors.UserError(f"{path}: missing; config.segment.backend='onnx' "
                           "needs it (written by stage 'export')")
  session = onnx_file.session(path, onnxruntime)
  return lambda images: onnx_file.run(session, images)
