"""The `export` stage: W/unet/ as ONNX and as a TF SavedModel.

run(config, workdir):
  inputs:  W/unet/ (stage `train`)
  outputs: W/export/ (one folder, appears complete or not at all):
    unet.onnx      ONNX (jax2onnx), opset config.model_export.onnx_opset;
                   the description below in its metadata_props
    saved_model/   TF SavedModel (jax2tf), signature serving_default,
                   compiled for config.model_export.tf_platforms; the
                   description in assets.extra/metadata.json
    metadata.json  the description (input, output, segment's preprocessing:
                   export/function.py), the converters' versions and the
                   check below
  Batch, height and width are symbolic in both. Before the folder appears,
  config.model_export.check_images random images, at a size that is neither
  square nor config.eval.image_size, run through each file in its own
  runtime (onnxruntime, TensorFlow) and through the JAX model; a largest
  difference in probability above config.model_export.tolerance stops the
  stage with an error naming the file.
Needs the `export` extra (onnx, onnxruntime; jax2onnx installed without its
dependencies, see setup.py) and the `tf` extra (TensorFlow): without one,
the stage stops before it writes, with one error line naming the package and
the pip command. Only process 0 converts and writes.
"""
import importlib.metadata
import os
import types

from absl import logging
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import artifacts
from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import optional
from gansseg_jax.infra import runtime
from gansseg_jax.export import function
from gansseg_jax.export import onnx_file
from gansseg_jax.export import saved_model

EXPORT_DIR = artifacts.EXPORT
ONNX_FILE = "unet.onnx"
SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "metadata.json"


def onnx_path(workdir: str) -> str:
  """W/export/unet.onnx."""
  return os.path.join(workdir, EXPORT_DIR, ONNX_FILE)


def _modules() -> types.SimpleNamespace:
  """The converters and runtimes, or a UserError naming the missing one."""
  needed_by = "stage 'export'"
  modules = types.SimpleNamespace(
      jax2onnx=optional.load("jax2onnx", needed_by, optional.JAX2ONNX_INSTALL),
      onnx=optional.load("onnx", needed_by, optional.EXPORT_EXTRA),
      onnxruntime=optional.load("onnxruntime", needed_by,
                                optional.EXPORT_EXTRA))
  with runtime.native_stderr_quiet():  # TensorFlow's start-up notes.
    modules.tf = optional.load("tensorflow", needed_by, optional.TF_EXTRA)
    modules.jax2tf = optional.load("jax.experimental.jax2tf", needed_by,
                                   optional.TF_EXTRA)
  return modules


def _check_config(settings: ml_collections.ConfigDict) -> None:
  """The fields config_checks also checks (a stage may be called alone)."""
  problem = saved_model.platforms_problem(settings.tf_platforms)
  if problem:
    raise errors.UserError(f"config.model_export.tf_platforms: {problem}, "
                           f"got {settings.tf_platforms!r}")
  if int(settings.check_images) < 1:
    raise errors.UserError("config.model_export.check_images: must be an "
                           f"integer >= 1, got {settings.check_images!r}")


def check_images(config: ml_collections.ConfigDict) -> np.ndarray:
  """config.model_export.check_images random images in [-1, 1], of a size
  that is neither square nor the model's usual input."""
  multiple = function.SIDE_MULTIPLE
  height = multiple * -(-int(config.eval.image_size) // multiple)
  rng = np.random.default_rng(config.seed)
  shape = (int(config.model_export.check_images), height, height + multiple, 3)
  return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def _largest_differences(folder: str, images: np.ndarray, expected: np.ndarray,
                         modules: types.SimpleNamespace) -> dict[str, float]:
  onnx_probs = onnx_file.run(
      onnx_file.session(os.path.join(folder, ONNX_FILE), modules.onnxruntime),
      images)
  with runtime.native_stderr_quiet():  # XLA's notes (cuInit) as TF runs it.
    signature = saved_model.load(os.path.join(folder, SAVED_MODEL_DIR),
                                 modules.tf)
    tf_probs = saved_model.run(signature, images, modules.tf)
  return {ONNX_FILE: float(np.max(np.abs(onnx_probs - expected))),
          SAVED_MODEL_DIR: float(np.max(np.abs(tf_probs - expected)))}


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes W/export/ (see the module docstring)."""
  settings = config.model_export
  _check_config(settings)
  platforms = saved_model.platforms(settings.tf_platforms)
  modules = _modules()
  probabilities = function.probability_function(config, workdir)
  if jax.process_index() != 0:
    return
  description = function.description(config)
  images = check_images(config)
  expected = np.asarray(jax.jit(probabilities)(images))
  out = os.path.join(workdir, EXPORT_DIR)
  with fileio.atomic_path(out) as tmp:
    os.makedirs(tmp)
    onnx_file.write(probabilities, os.path.join(tmp, ONNX_FILE),
                    int(settings.onnx_opset), description, modules.jax2onnx,
                    modules.onnx)
    with runtime.native_stderr_quiet():  # XLA's notes as jax2tf lowers.
      saved_model.write(probabilities, os.path.join(tmp, SAVED_MODEL_DIR),
                        platforms, description, modules.tf, modules.jax2tf)
    differences = _largest_differences(tmp, images, expected, modules)
    for name, difference in differences.items():
      if not difference <= float(settings.tolerance):
        raise errors.UserError(
            f"{os.path.join(out, name)}: differs from the JAX model by "
            f"{difference:.3g} in probability on {images.shape} check images "
            f"(config.model_export.tolerance={settings.tolerance})")
    fileio.write_json(os.path.join(tmp, METADATA_FILE), {
        **description,
        "files": {"onnx": ONNX_FILE, "saved_model": SAVED_MODEL_DIR},
        "onnx": {"opset": int(settings.onnx_opset),
                 "converter": "jax2onnx "
                              + importlib.metadata.version("jax2onnx"),
                 "metadata_props_key": onnx_file.METADATA_KEY},
        "saved_model": {"signature": saved_model.SIGNATURE,
                        "platforms": platforms,
                        "converter": f"jax2tf (jax {jax.__version__})"},
        "check": {"images_shape": list(images.shape),
                  "largest_difference": differences,
                  "tolerance": float(settings.tolerance)},
    })
  logging.info("export: %s (%s) -> %s; largest difference from JAX: %s",
               ONNX_FILE, SAVED_MODEL_DIR, out,
               ", ".join(f"{k} {v:.2g}" for k, v in differences.items()))
