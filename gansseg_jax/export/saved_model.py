"""The probability function as a TF SavedModel (jax2tf), and running it.

jax2tf serializes the function's StableHLO, shape-polymorphic in batch,
height and width, compiled for config.model_export.tf_platforms, into one
XlaCallModule op of a tf.function. The SavedModel's signature
`serving_default` takes `images` and returns {'probabilities': ...}; the
description (function.description) is in assets.extra/metadata.json.
"""
import os
import types
from typing import Any, Callable, Optional, Sequence

import numpy as np

from gansseg_jax.infra import fileio
from gansseg_jax.export import function

SIGNATURE = "serving_default"
METADATA_FILE = os.path.join("assets.extra", "metadata.json")
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")  # What jax2tf can compile for.


def platforms(text: str) -> list[str]:
  """config.model_export.tf_platforms as a list ('cpu,cuda' -> both)."""
  return [p.strip() for p in str(text).split(",") if p.strip()]


def platforms_problem(text: str) -> Optional[str]:
  """Why `text` is not a list of PLATFORMS, or None."""
  names = platforms(text)
  if not names or any(p not in PLATFORMS for p in names):
    return ("must list platforms among " + ", ".join(PLATFORMS)
            + ", comma-separated")
  return None


def write(probabilities: Callable, path: str, compile_for: Sequence[str],
          metadata: dict[str, Any], tf: types.ModuleType,
          jax2tf: types.ModuleType) -> None:
  """Converts `probabilities` and saves it as the folder `path` (atomic).

  `jax2tf` is jax.experimental.jax2tf, passed in: importing it imports
  TensorFlow (the stage checks TensorFlow is there first)."""
  converted = jax2tf.convert(
      probabilities, polymorphic_shapes=[function.POLYMORPHIC_SHAPE],
      native_serialization_platforms=tuple(compile_for), with_gradient=False)

  @tf.function(autograph=False, input_signature=[tf.TensorSpec(
      [None, None, None, 3], tf.float32, name=function.INPUT_NAME)])
  def serve(images):
    return {function.OUTPUT_NAME: converted(images)}

  module = tf.Module()
  module.serve = serve
  with fileio.atomic_path(path) as tmp:
    tf.saved_model.save(module, tmp, signatures={SIGNATURE: serve})
    os.makedirs(os.path.dirname(os.path.join(tmp, METADATA_FILE)))
    fileio.write_json(os.path.join(tmp, METADATA_FILE), metadata)


def load(path: str, tf: types.ModuleType) -> Callable:
  """The SavedModel's serving signature."""
  return tf.saved_model.load(path).signatures[SIGNATURE]


def run(signature, images: np.ndarray, tf: types.ModuleType) -> np.ndarray:
  """probabilities [N, H', W'] of float32 images [N, H, W, 3] in [-1, 1]."""
  outputs = signature(**{function.INPUT_NAME: tf.constant(
      np.asarray(images, np.float32))})
  return outputs[function.OUTPUT_NAME].numpy()
