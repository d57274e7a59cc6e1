r"""Timing of the directions stages: discovery steps/s, seconds to score.

  # CPU, a small BigGAN (32 px, ch 4) with random weights:
  python benchmarks/bench_directions.py
  # The full BigBiGAN architecture (random weights; timing does not depend on
  # them) on an accelerator, with the paper's ResNet-18 reconstructor:
  python benchmarks/bench_directions.py --resolution=128 --ch=96 \
      --shared_dim=128 --attention_resolution=64 --reconstructor=resnet18
  # The generator a workdir's `convert` stage wrote:
  python benchmarks/bench_directions.py --config=configs/demo.py \
      --workdir=runs/demo

Hyperparameters not given as flags are the paper's (configs/default.py):
discovery batch 32, Adam 1e-4; scoring 200 Adam steps of batch 4, 4 held-out
batches. Writes benchmarks/results/bench_directions.json (one entry per
device and generator, replaced on re-run) and prints the markdown table.
"""
import json
import os
import time

from absl import app
from absl import flags
import jax
import numpy as np

from gansseg_jax.infra import machine
from gansseg_jax.directions import discover
from gansseg_jax.directions import score
from gansseg_jax.infra import config_files
from gansseg_jax.infra import sharding
from gansseg_jax.models import biggan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "bench_directions.json")

flags.DEFINE_string("config", os.path.join(ROOT, "configs", "default.py"),
                    "Config file whose directions/score sections are used.")
flags.DEFINE_string("workdir", "", "Use this workdir's converted generator; "
                    "empty = a random BigGAN of the sizes below.")
flags.DEFINE_integer("resolution", 32, "BigGAN output side.")
flags.DEFINE_integer("ch", 4, "BigGAN base width (96 for BigBiGAN).")
flags.DEFINE_integer("z_dim", 120, "Latent size.")
flags.DEFINE_integer("shared_dim", 8,
                     "Class-embedding width (128 for BigBiGAN).")
flags.DEFINE_integer("attention_resolution", 0,
                     "0 = no attention (64 for BigBiGAN).")
flags.DEFINE_enum("reconstructor", "lenet", ["lenet", "resnet18"],
                  "Discovery reconstructor.")
flags.DEFINE_integer("num_directions", 120,
                     "K for discovery; candidates to score.")
flags.DEFINE_integer("discover_steps", 20, "Timed discovery steps (after one "
                     "compiling step).")
flags.DEFINE_integer("candidate_batch", 0, "config.score.candidate_batch.")
flags.DEFINE_string("out", RESULTS, "JSON results file.")
FLAGS = flags.FLAGS


def load_config():
  config = config_files.load(FLAGS.config)
  config.directions.num_directions = FLAGS.num_directions
  config.directions.reconstructor = FLAGS.reconstructor
  config.score.candidate_batch = FLAGS.candidate_batch
  return config


def make_generator(config):
  """(generate, params, description) from the workdir or a random BigGAN."""
  if FLAGS.workdir:
    from gansseg_jax.convert import load  # pylint: disable=g-import-not-at-top
    generate, params = load.load_generator(config, FLAGS.workdir)
    return generate, params, f"workdir {FLAGS.workdir}"
  spec = biggan.BigGANSpec(
      resolution=FLAGS.resolution, z_dim=FLAGS.z_dim, ch=FLAGS.ch,
      shared_dim=FLAGS.shared_dim,
      attention_resolution=FLAGS.attention_resolution, bn_eps=1e-4)
  config.generator.z_dim = FLAGS.z_dim
  return (biggan.make_generate(spec), biggan.init_params(spec, seed=0),
          f"random BigGAN {FLAGS.resolution}px ch{FLAGS.ch} z{FLAGS.z_dim}"
          f" attn{FLAGS.attention_resolution}")


def time_discovery(config, generate, gen_params):
  """Compile seconds and steps/s of the jitted discovery step."""
  cfg, z_dim = config.directions, config.generator.z_dim
  mesh = sharding.data_mesh()
  graphdef, model_state, fixed = discover.split_model(
      discover.build_model(cfg, z_dim, jax.random.key(0)))
  state = dict(model_state, opt_state=discover.make_optimizer(
      cfg.learning_rate).init(model_state["params"]))
  state, fixed, gen_params, key_data = sharding.replicate(
      (state, fixed, gen_params, jax.random.key_data(jax.random.key(1))), mesh)
  step = discover.make_train_step(
      graphdef, generate, discover.DiscoverySpec.from_config(cfg, z_dim),
      cfg.learning_rate, mesh)
  start = time.perf_counter()
  state, metrics = step(state, fixed, gen_params, key_data, 0)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for i in range(1, FLAGS.discover_steps + 1):
    state, metrics = step(state, fixed, gen_params, key_data, i)
  jax.block_until_ready((state, metrics))
  return {"batch_size": cfg.batch_size, "timed_steps": FLAGS.discover_steps,
          "first_step_s": round(compile_s, 3),
          "steps_per_s": round(FLAGS.discover_steps
                               / (time.perf_counter() - start), 3)}


def time_scoring(config, generate, gen_params):
  """Seconds of score_candidates for K random candidates, 1st and 2nd call."""
  spec = score.ScoreSpec.from_config(config.score)
  directions = np.random.default_rng(0).normal(
      size=(FLAGS.num_directions, config.generator.z_dim)).astype(np.float32)
  seconds = []
  for _ in range(2):
    start = time.perf_counter()
    score.score_candidates(generate, gen_params, directions,
                           jax.random.key(2), spec)
    seconds.append(time.perf_counter() - start)
  return {"candidates": FLAGS.num_directions, "steps": spec.steps,
          "batch_size": spec.batch_size,
          "heldout_batches": spec.heldout_batches,
          "candidate_batch": spec.candidate_batch,
          "first_call_s": round(seconds[0], 3),
          "second_call_s": round(seconds[1], 3)}


def markdown(entries) -> str:
  lines = [
      "| device | generator | reconstructor | discovery steps/s (batch 32) "
      "| score K candidates, s (1st call, with compile) | (2nd call) |",
      "|---|---|---|---|---|---|"]
  for e in entries:
    lines.append(
        f"| {e['device']} | {e['generator']} | {e['reconstructor']} | "
        f"{e['discover']['steps_per_s']} | "
        f"{e['score']['candidates']}: {e['score']['first_call_s']} | "
        f"{e['score']['second_call_s']} |")
  return "\n".join(lines)


def main(argv):
  del argv
  config = load_config()
  generate, gen_params, description = make_generator(config)
  entry = {"device": machine.describe(), "generator": description,
           "reconstructor": FLAGS.reconstructor, "jax": jax.__version__,
           "discover": time_discovery(config, generate, gen_params),
           "score": time_scoring(config, generate, gen_params)}
  entries = []
  if os.path.exists(FLAGS.out):
    with open(FLAGS.out) as f:
      entries = json.load(f)
  entries = [e for e in entries
             if (e["device"], e["generator"], e["reconstructor"]) != (
                 entry["device"], entry["generator"], entry["reconstructor"])]
  entries.append(entry)
  os.makedirs(os.path.dirname(FLAGS.out), exist_ok=True)
  with open(FLAGS.out, "w") as f:
    json.dump(entries, f, indent=2)
    f.write("\n")
  print(markdown(entries))


if __name__ == "__main__":
  app.run(main)
