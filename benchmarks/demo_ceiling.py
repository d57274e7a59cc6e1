r"""The demo's ceiling: its U-Net trained on procedural scenes with exact masks.

  python benchmarks/demo_ceiling.py [--steps=1500]

The demo's U-Net (configs/demo.py: width, batch, Adam schedule, steps) is
trained on scenes of a seed that neither the demo generator (seed 1) nor the
evaluation (seed 1000) uses, with their exact masks instead of GAN-made ones,
and scored like the demo on its 500 held-out scenes (maxF, IoU, acc). The gap
between this and `make demo` is what the generator and its masks cost; the
U-Net and the scene source are not the limit when this is close to 1.

Writes benchmarks/results/demo_ceiling.json and prints a markdown row.
"""
import os
import platform
import sys
import time

from absl import app
from absl import flags
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import demo  # pylint: disable=g-import-not-at-top
from gansseg_jax import fileio
from gansseg_jax import monitoring
from gansseg_jax.data import scenes
from gansseg_jax.eval import metrics
from gansseg_jax.models import unet as unet_lib
from gansseg_jax.train import holdout
from gansseg_jax.train import segmentation

_STEPS = flags.DEFINE_integer("steps", 0, "U-Net steps; 0 = the demo's.")

TRAIN_SEED = 7  # Not the generator's data seed (1) nor the held-out one (1000).
RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "demo_ceiling.json")


def main(argv):
  del argv
  config = demo.get_config()
  steps = _STEPS.value or config.train.steps
  batch = config.train.batch_size
  resolution = config.generator.resolution
  _, heldout_seed, heldout_count, _ = demo.HELDOUT_SCENES.split(":")
  model = segmentation.new_unet(config.unet, nnx.Rngs(0))
  graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  params, stats = nnx.to_pure_dict(params), nnx.to_pure_dict(stats)
  tx = optax.adam(segmentation.learning_rate_schedule(config.train))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, stats, opt_state, index):
    ids = index.astype(jnp.uint32) * batch + jnp.arange(batch, dtype=jnp.uint32)
    images, masks, _ = scenes.render_keys(scenes.scene_keys(TRAIN_SEED, ids),
                                          resolution)

    def loss_fn(p):
      m = nnx.merge(graphdef, p, stats)
      m.train()
      loss = jnp.mean(holdout.pixel_cross_entropy(m(images), masks))
      return loss, nnx.to_pure_dict(nnx.state(m, nnx.BatchStat))

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), stats, opt_state, loss

  progress = monitoring.Progress(steps, "demo_ceiling",
                                 config.log.progress_every_s)
  t0 = time.perf_counter()
  for i in range(steps):
    params, stats, opt_state, loss = step(params, stats, opt_state,
                                          jnp.int32(i))
    jax.block_until_ready(loss)
    progress.update(i + 1)
  progress.close()
  train_seconds = time.perf_counter() - t0

  heldout = scenes.render_scenes(int(heldout_seed), int(heldout_count),
                                 resolution)
  m = nnx.merge(graphdef, params, stats)
  m.eval()
  probs = np.asarray(unet_lib.foreground_probability(
      m(jnp.asarray(heldout.images))))
  scores = metrics.SaliencyMetrics(config.eval.thresholds, config.eval.beta2,
                                   config.eval.mask_threshold,
                                   config.eval.metrics_pixel_budget)
  for p, g in zip(probs, heldout.masks > 0.5):
    scores.add(p, g)
  result = scores.result()
  out = {
      "machine": f"{platform.processor() or platform.machine()}, "
                 f"{os.cpu_count()} cores, {jax.devices()[0].platform}",
      "steps": steps, "batch_size": batch, "unet_width": config.unet.width,
      "train_seed": TRAIN_SEED, "heldout": f"scenes:{heldout_seed}:"
                                           f"{heldout_count}:{resolution}",
      "final_loss": float(loss), "train_seconds": round(train_seconds, 1),
      "maxF": result["maxF"], "IoU": result["IoU"], "acc": result["acc"],
  }
  fileio.write_json(RESULTS, out)
  print("| data | images | maxF | IoU | acc |")
  print("|---|---|---|---|---|")
  print(f"| {out['heldout']} (U-Net on exact masks, {steps} steps) | "
        f"{heldout_count} | {out['maxF']:.3f} | {out['IoU']:.3f} | "
        f"{out['acc']:.3f} |")


if __name__ == "__main__":
  app.run(main)
