r"""The demo's ceiling: its U-Net trained on procedural scenes with exact masks.

  python experiments/demo_ceiling.py [--steps=1500]

The demo's U-Net (configs/demo.py: width, batch, Adam schedule, steps) is
trained on scenes of a seed that neither the demo generator (seed 1) nor the
evaluation (seed 1000) uses, with their exact masks instead of GAN-made ones,
and scored like the demo on its 500 held-out scenes (maxF, IoU, acc). It runs
the demo's own pieces: the U-Net's init and update of train/segmentation.py
(all weights 1), W/unet/ in a temporary folder, train/load.py's predictor and
eval/evaluate.py's `evaluate_source` on the `scenes:` source. The gap
between this and `make demo` is what the generator and its masks cost; the
U-Net and the scene source are not the limit when this is close to 1.

Writes experiments/results/demo_ceiling.json and prints a markdown row.
"""
import os
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import demo  # pylint: disable=g-import-not-at-top
from gansseg_jax.infra import fileio
from gansseg_jax.infra import machine
from gansseg_jax.infra import monitoring
from gansseg_jax.data import scenes
from gansseg_jax.data import sources
from gansseg_jax.eval import evaluate
from gansseg_jax.infra import sharding
from gansseg_jax.train import load
from gansseg_jax.train import segmentation

_STEPS = flags.DEFINE_integer("steps", 0, "U-Net steps; 0 = the demo's.")

TRAIN_SEED = 7  # Not the generator's data seed (1) nor the held-out one (1000).
RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "demo_ceiling.json")


def train_on_exact_masks(config, steps: int):
  """The demo's U-Net trained on TRAIN_SEED scenes with their exact masks.

  Returns (state, final loss, training seconds).
  """
  batch = config.train.batch_size
  resolution = config.generator.resolution
  # Only init_state and update are used: no generator is needed.
  fused = segmentation.build(config, sharding.data_mesh(), generate=None)
  render = jax.jit(lambda index: scenes.render_keys(
      scenes.scene_keys(TRAIN_SEED, index.astype(jnp.uint32) * batch
                        + jnp.arange(batch, dtype=jnp.uint32)), resolution))
  weights = jnp.ones((batch,), jnp.float32)

  state = fused.init_state()
  progress = monitoring.Progress(steps, "U-Net on exact masks",
                                 config.log.progress_every_s)
  t0 = time.perf_counter()
  for i in range(steps):
    images, masks, _ = render(jnp.int32(i))
    state, metrics = fused.update(state, images, masks, weights)
    jax.block_until_ready(metrics)
    progress.update(i + 1)
  progress.close()
  return state, float(metrics["loss"]), time.perf_counter() - t0


def main(argv):
  del argv
  config = demo.get_config()
  steps = _STEPS.value or config.train.steps
  batch = config.train.batch_size
  state, final_loss, train_seconds = train_on_exact_masks(config, steps)

  with tempfile.TemporaryDirectory() as workdir:
    load.save_unet(workdir, state)
    predict = load.load_predictor(config, workdir)
    result = evaluate.evaluate_source(
        predict, sources.open_source(demo.HELDOUT_SCENES, config.eval),
        config.eval, config.log.progress_every_s)
  out = {
      "machine": machine.describe(),
      "steps": steps, "batch_size": batch, "unet_width": config.unet.width,
      "train_seed": TRAIN_SEED, "heldout": demo.HELDOUT_SCENES,
      "final_loss": final_loss,
      "train_seconds": round(train_seconds, 1),
      "images": result["images"], "maxF": result["maxF"],
      "IoU": result["IoU"], "acc": result["acc"],
  }
  fileio.write_json(RESULTS, out)
  print("| data | images | maxF | IoU | acc |")
  print("|---|---|---|---|---|")
  print(f"| {out['heldout']} (U-Net on exact masks, {steps} steps) | "
        f"{out['images']} | {out['maxF']:.3f} | {out['IoU']:.3f} | "
        f"{out['acc']:.3f} |")


if __name__ == "__main__":
  app.run(main)
