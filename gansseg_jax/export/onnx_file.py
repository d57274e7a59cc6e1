"""The probability function as an ONNX model (jax2onnx), and running it.

jax2onnx traces the function with a symbolic batch, height and width and
writes ONNX operators for its primitives. Its graph carries shape notes
(value_info) for the intermediate tensors, some in the wrong layout: they
are dropped, onnxruntime infers the shapes itself, and so are the output's
height and width (16 floor(H / 16), not expressible in ONNX).
"""
import contextlib
import json
import logging as std_logging
import types
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.infra import fileio
from gansseg_jax.export import function

METADATA_KEY = "gansseg_jax"  # metadata_props key of the description (JSON).


# Loggers quieted to errors during the conversion: jax2onnx imports all its
# plugins and logs a traceback for each whose optional library (equinox,
# dm_pix: examples the U-Net does not use) is absent; onnx_ir notes each
# shape-only value it leaves out of the file.
_QUIET_LOGGERS = ("jax2onnx.plugins.plugin_system", "onnx_ir.serde")


@contextlib.contextmanager
def _converter_warnings_quiet() -> Iterator[None]:
  loggers = [std_logging.getLogger(name) for name in _QUIET_LOGGERS]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(std_logging.ERROR)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def _drop_shape_notes(model) -> None:
  del model.graph.value_info[:]
  for dim in list(model.graph.output[0].type.tensor_type.shape.dim)[1:]:
    dim.Clear()


def write(probabilities: Callable, path: str, opset: int,
          metadata: dict[str, Any], jax2onnx: types.ModuleType,
          onnx: types.ModuleType) -> None:
  """Converts `probabilities` and writes it to `path` (atomic)."""
  spec = jax.ShapeDtypeStruct(
      jax.export.symbolic_shape(function.POLYMORPHIC_SHAPE), jnp.float32)
  with _converter_warnings_quiet():
    model = jax2onnx.to_onnx(
        probabilities, [spec], model_name="gansseg_unet", opset=opset,
        input_names=[function.INPUT_NAME],
        output_names=[function.OUTPUT_NAME])
  _drop_shape_notes(model)
  model.doc_string = metadata["output"]["meaning"]
  onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
  onnx.checker.check_model(model)
  fileio.write_bytes(path, model.SerializeToString())


def session(path: str, onnxruntime: types.ModuleType):
  """An onnxruntime session of `path`, warnings only."""
  options = onnxruntime.SessionOptions()
  options.log_severity_level = 2  # Warnings and errors.
  return onnxruntime.InferenceSession(
      path, options, providers=onnxruntime.get_available_providers())


def run(onnx_session, images: np.ndarray) -> np.ndarray:
  """probabilities [N, H', W'] of float32 images [N, H, W, 3] in [-1, 1]."""
  return onnx_session.run(
      [function.OUTPUT_NAME],
      {function.INPUT_NAME: np.asarray(images, np.float32)})[0]
