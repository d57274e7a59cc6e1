"""The function every export holds, and the description of its contract.

`probability_function(config, workdir)` restores W/unet/ (train/load.py)
and returns probabilities(images) -> P(foreground):
  images         float32 [N, H, W, 3], RGB, NHWC, in [-1, 1] (v / 127.5 - 1)
  probabilities  float32 [N, H', W'] = sigmoid(l_1 - l_0) of the two logits
N, H and W are free in the exported programs. The U-Net halves the
resolution four times, so H and W should be multiples of 16; other sizes are
cropped at the bottom/right to one (H' = 16 floor(H / 16)), as a
shape-polymorphic program cannot pad by an amount that depends on the input.
`segment` reflect-pads to config.eval.pad_multiple (32) instead.

`description(config)` is that contract and the preprocessing `segment`
applies, for the metadata of each file.
"""
from typing import Any, Callable

from flax import nnx
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import sharding
from gansseg_jax.models import unet as unet_lib
from gansseg_jax.train import load

SIDE_MULTIPLE = 16  # 2 ** (the U-Net's four 2x2 poolings).
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
# The shape the exports take: every dimension but the channels symbolic.
POLYMORPHIC_SHAPE = "(batch, height, width, 3)"


def probability_function(config: ml_collections.ConfigDict,
                         workdir: str) -> Callable[[jax.Array], jax.Array]:
  """probabilities(images) of W/unet/, float32 activations, weights as
  constants (a U-Net trained in bfloat16 runs in float32 here)."""
  float_config = config.copy_and_resolve_references()
  float_config.unet.dtype = "float32"
  graphdef, tree = load.restore_unet(float_config, workdir,
                                     sharding.data_mesh())
  host = jax.tree.map(np.asarray, tree)
  model = nnx.merge(graphdef, host["params"], host["batch_stats"])
  return model_probabilities(model)


def model_probabilities(model: unet_lib.UNet
                        ) -> Callable[[jax.Array], jax.Array]:
  """probabilities(images) of `model` in eval mode (running averages), the
  images cropped to multiples of SIDE_MULTIPLE as the exports state."""
  model.eval()

  def probabilities(images: jax.Array) -> jax.Array:
    height = SIDE_MULTIPLE * (images.shape[1] // SIDE_MULTIPLE)
    width = SIDE_MULTIPLE * (images.shape[2] // SIDE_MULTIPLE)
    logits = model(images[:, :height, :width])
    return unet_lib.foreground_probability(logits)

  return probabilities


def description(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """What goes in, what comes out, and how `segment` prepares a photo."""
  ev = config.eval
  return {
      "model": (f"U-Net of width {config.unet.width} (gansseg_jax, "
                "docs/method.md section 7), BatchNorm running averages"),
      "input": {
          "name": INPUT_NAME, "dtype": "float32", "layout": "NHWC",
          "shape": ["batch", "height", "width", 3], "channels": "RGB",
          "range": [-1.0, 1.0], "from_uint8": "v / 127.5 - 1",
          "height_width": (f"multiples of {SIDE_MULTIPLE} (other sizes are "
                           "cropped at the bottom/right to one)"),
      },
      "output": {
          "name": OUTPUT_NAME, "dtype": "float32",
          "shape": ["batch", "height", "width"],
          "meaning": ("P(foreground) per pixel = softmax of the two logits, "
                      "channel 1 = sigmoid(l_1 - l_0)"),
      },
      "preprocessing": {
          "steps": [
              "decode, apply the EXIF orientation, convert to RGB",
              "resize bilinear (Pillow) so the shorter side is shorter_side, "
              "the longer at most max_long_side (sides rounded, >= 1)",
              "to float32 in [-1, 1]: v / 127.5 - 1",
              "reflect-pad at the bottom/right to multiples of pad_multiple",
              "run; crop the probabilities to the resized size",
              "resize them bilinear (Pillow, mode F) to the photo's size",
              "mask = probability > threshold",
          ],
          "shorter_side": int(ev.image_size),
          "max_long_side": int(ev.max_long_side),
          "pad_multiple": int(ev.pad_multiple),
          "threshold": float(config.segment.threshold),
      },
  }
