"""The trained U-Net as a function: `load_predictor(config, workdir)`.

predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W] float32 =
P(foreground) = sigmoid(l_1 - l_0) of the U-Net's two logits (models/unet.py),
BatchNorm with its running averages. Any H, W; jitted once per input shape.
The batch is split over every device (zero-padded to a multiple of the device
count); the result is replicated, so every process can read all of it. In a
multi-process run every process must pass the same images.
"""
import functools
import os
from typing import Callable

from flax import nnx
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import artifacts
from gansseg_jax.infra import errors
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import sharding
from gansseg_jax.models import unet as unet_lib
from gansseg_jax.train import segmentation

UNET_DIR = artifacts.UNET


def unet_dir(workdir: str) -> str:
  """W/unet: the final U-Net's params and BatchNorm statistics (orbax)."""
  return os.path.join(workdir, UNET_DIR)


def save_unet(workdir: str, state: segmentation.TrainState) -> None:
  """Writes {'params', 'batch_stats'} of `state` to W/unet/ (atomic)."""
  checkpointing.save_tree(unet_dir(workdir), {
      "params": state["params"], "batch_stats": state["batch_stats"]})


def restore_unet(config: ml_collections.ConfigDict, workdir: str, mesh):
  """(graphdef, {'params', 'batch_stats'}) of W/unet/, replicated on `mesh`."""
  path = unet_dir(workdir)
  if not os.path.isdir(path):
    raise errors.UserError(f"{path}: no trained U-Net; run the 'train' stage")
  abstract_model = nnx.eval_shape(
      lambda: segmentation.new_unet(config.unet, nnx.Rngs(0)))
  graphdef, params, batch_stats = nnx.split(abstract_model, nnx.Param,
                                            nnx.BatchStat)
  target = checkpointing.abstract_like(
      {"params": nnx.to_pure_dict(params),
       "batch_stats": nnx.to_pure_dict(batch_stats)},
      sharding.replicated(mesh))
  try:
    return graphdef, checkpointing.restore_tree(path, target)
  except (ValueError, KeyError, TypeError) as e:
    raise errors.UserError(
        f"{path}: does not hold a U-Net of config.unet.width="
        f"{config.unet.width} ({e})") from e


def jitted_forward(graphdef: nnx.GraphDef, mesh) -> Callable:
  """forward(tree, images [B, H, W, 3] batch-sharded, b) -> probs [:b].

  The predictor's one program (per input shape); replicated output.
  """
  @functools.partial(jax.jit, static_argnums=2,
                     out_shardings=sharding.replicated(mesh))
  def forward(tree, images, batch):
    model = nnx.merge(graphdef, tree["params"], tree["batch_stats"])
    model.eval()
    return unet_lib.foreground_probability(model(images))[:batch]

  return forward


def load_predictor(config: ml_collections.ConfigDict,
                   workdir: str) -> Callable[[np.ndarray], jax.Array]:
  """predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W] from W/unet/."""
  mesh = sharding.data_mesh()
  graphdef, tree = restore_unet(config, workdir, mesh)
  return tree_predictor(graphdef, tree, mesh)


def tree_predictor(graphdef: nnx.GraphDef, tree, mesh
                   ) -> Callable[[np.ndarray], jax.Array]:
  """predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W] of the U-Net
  {'params', 'batch_stats'} `tree` (replicated on `mesh`)."""
  batch_sh = sharding.batch_sharded(mesh)
  forward = jitted_forward(graphdef, mesh)

  def predict(images) -> jax.Array:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"predict: images must be [B, H, W, 3], got "
                       f"{images.shape}")
    batch = images.shape[0]
    padded = -batch % mesh.size
    if padded:
      images = np.concatenate(
          [images, np.zeros((padded,) + images.shape[1:], np.float32)])
    global_images = jax.make_array_from_callback(
        images.shape, batch_sh, lambda index: images[index])
    return forward(tree, global_images, batch)

  return predict
