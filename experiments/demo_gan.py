r"""Speed of the demo's data and GAN training: scenes/s and GAN steps/s.

  python experiments/demo_gan.py --config=configs/demo_gan.py [--steps=20]
      [--config.model.g_channels=48 ...]

Writes experiments/results/demo_gan.json and prints markdown table rows. The
timed GAN steps run after one compiled warm-up step; scenes are timed on a
second call of `render_scenes` (compiled by the first).
"""
import json
import os
import time

from absl import app
from absl import flags
import jax

from gansseg_jax.infra import fileio
from gansseg_jax.infra import machine
from gansseg_jax.data import scenes
from gansseg_jax.train import gan

_CONFIG = gan.define_flags()["config"]  # --config=configs/demo_gan.py
_STEPS = flags.DEFINE_integer("steps", 20, "Timed GAN steps.")
_SCENES = flags.DEFINE_integer("scenes", 4096, "Timed scenes.")

RESULTS = os.path.join(os.path.dirname(__file__), "results", "demo_gan.json")


def main(argv):
  del argv
  config = _CONFIG.value
  if config is None:
    raise app.UsageError("--config=configs/demo_gan.py is required")
  resolution = config.model.resolution
  scenes.render_scenes(0, _SCENES.value, resolution, chunk=1024)
  t0 = time.perf_counter()
  scenes.render_scenes(1, _SCENES.value, resolution, chunk=1024)
  scene_rate = _SCENES.value / (time.perf_counter() - t0)

  nets = gan.Networks(config)
  step = gan.make_train_step(config, nets)
  state, metrics = step(nets.initial_state)
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for _ in range(_STEPS.value):
    state, metrics = step(state)
  jax.block_until_ready(metrics)
  step_rate = _STEPS.value / (time.perf_counter() - t0)

  result = {
      "machine": machine.describe(),
      "load_average_1min": os.getloadavg()[0],
      "resolution": resolution,
      "batch_size": config.train.batch_size,
      "scenes_per_s": round(scene_rate, 1),
      "gan_steps_per_s": round(step_rate, 3),
      "gan_hours_for_config_steps": round(config.train.steps / step_rate / 3600,
                                          2),
  }
  fileio.write_json(RESULTS, result)
  print("| what | resolution | rate | machine (1-min load) |")
  print("|---|---|---|---|")
  print(f"| render_scenes | {resolution} | {scene_rate:.0f} scenes/s | "
        f"{result['machine']} ({result['load_average_1min']:.1f}) |")
  print(f"| GAN train step (batch {config.train.batch_size}) | {resolution} | "
        f"{step_rate:.2f} steps/s | {result['machine']} "
        f"({result['load_average_1min']:.1f}) |")
  print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)
