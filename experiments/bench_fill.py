r"""Cost of full batches: the fused step with one round vs rounds until full.

  python experiments/bench_fill.py --preset=demo --steps=20
  python experiments/bench_fill.py --preset=paper --batch_size=4 --steps=3

Presets: 'demo' = configs/demo.py (the shipped demo generator, 32 px, U-Net
width 16, batch 32); 'paper' = configs/default.py at the paper's sizes
(BigGAN-128 ch 96 with attention at 64, random weights; U-Net width 64; batch
--batch_size, 95 in the paper). The direction is a random unit vector (timing
does not depend on it).

The keep rate p is planted by a filter setting: the histogram filter off and
the size filter's max_foreground set to the p-quantile of the foreground
fractions of --calibration candidates (made by the same synthesis with the
filters off); p = 1 turns the size filter off too. For each p the fused step
(`segmentation.build(...).step`, the body of training's loop) is compiled with
config.synth.max_rounds = 1 and = --max_rounds, run once (compile) and then
timed over --steps steps. Reported per step: wall time and CPU time (the
process's CPU seconds over all threads: on a shared, loaded machine the
wall time mostly measures the other jobs; CPU s per step does not), rounds
(the most any chunk ran), filled fraction of the slots, the keep rate
measured by the stats (kept / generated); samples/s = batch / step time,
and filled samples/s = filled slots / step time (what the U-Net learns
from).

Also writes, for the choice of the default cap, the probability that a batch
of B slots is still unfilled after R rounds of ceil(1.5 B) candidates at
keep rate p: P(Binomial(R ceil(1.5 B), p) < B) (scipy).

Writes experiments/results/bench_fill.json (entries replaced by device,
preset, batch, p and max_rounds) and prints markdown tables.
"""
import json
import math
import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats as scipy_stats

from gansseg_jax.infra import fileio
from gansseg_jax.infra import machine
from gansseg_jax.generators import bigbigan
from gansseg_jax.generators import demo
from gansseg_jax.infra import config_files
from gansseg_jax.infra import sharding
from gansseg_jax.models import biggan
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import latents as synth_latents
from gansseg_jax.train import segmentation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results", "bench_fill.json")
PAPER_GENERATOR = dict(resolution=128, ch=96, shared_dim=128,
                       attention_resolution=64)

flags.DEFINE_enum("preset", "demo", ["demo", "paper"], "Sizes to time.")
flags.DEFINE_integer("batch_size", 0, "Global batch; 0 = the config's.")
flags.DEFINE_list("keep", ["1.0", "0.5", "0.25"], "Planted keep rates p.")
flags.DEFINE_integer("max_rounds", 16, "The loop's cap (vs 1 round).")
flags.DEFINE_integer("steps", 20, "Timed steps after the compiling one.")
flags.DEFINE_integer("calibration", 256, "Candidates to plant p from.")
flags.DEFINE_string("out", RESULTS, "JSON results file.")
FLAGS = flags.FLAGS


def load_config():
  """configs/demo.py or configs/default.py at the paper's sizes."""
  name = "demo" if FLAGS.preset == "demo" else "default"
  config = config_files.load_checkout(name)
  if FLAGS.preset == "paper":
    config.generator.update(PAPER_GENERATOR)
  if FLAGS.batch_size:
    config.train.batch_size = FLAGS.batch_size
  return config


def load_generator(config):
  """(generate, params) of the preset: the demo's, or random BigGAN."""
  if FLAGS.preset == "demo":
    generate, params, _ = demo.import_demo_gan().load_builtin()
    return generate, params
  spec = bigbigan.generator_spec(config)
  return biggan.make_generate(spec), biggan.init_params(spec, seed=0)


def foreground_fractions(config, generate, gen_params, direction, count):
  """Foreground fraction of `count` candidates' masks (components filtered)."""
  spec = synth_batch.SynthSpec.from_config(config.synth)
  sampler = synth_latents.make_sampler(config.synth, config.generator.z_dim)
  chunk = min(count, 64 if FLAGS.preset == "demo" else 8)
  make = jax.jit(lambda key: synth_batch.make_candidates(
      sampler(key, chunk), generate, gen_params, direction, spec).masks)
  masks = [make(jax.random.key(1000 + i)) for i in range(-(-count // chunk))]
  return np.concatenate([np.asarray(m).mean(axis=(1, 2)) for m in masks])


def plant(config, keep, fractions):
  """Filters that keep a fraction `keep` of the candidates (module doc)."""
  config.synth.histogram_filter = False
  config.synth.size_filter = keep < 1
  if keep < 1:
    config.synth.max_foreground = float(np.quantile(fractions, keep))


def measure(config, generate, gen_params, direction):
  """Times and per-step stats of the fused step of `config`."""
  mesh = sharding.data_mesh()
  fused = segmentation.build(config, mesh, generate)
  frozen = sharding.replicate(
      segmentation.Frozen(gen_params, direction, None, None), mesh)
  start = time.perf_counter()
  state, sums = fused.step(fused.init_state(), fused.zero_sums(frozen),
                           frozen)
  jax.block_until_ready(sums)
  first = time.perf_counter() - start
  sums = fused.zeros_like(sums)
  jax.block_until_ready(sums)
  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(FLAGS.steps):
    state, sums = fused.step(state, sums, frozen)
  jax.block_until_ready(sums)
  step_s = (time.perf_counter() - start) / FLAGS.steps
  cpu_s = (time.process_time() - cpu_start) / FLAGS.steps
  s = {k: float(v) for k, v in sharding.fetch(sums).items()}
  filled = s["synth/filled"] / (s["synth/filled"] + s["synth/unfilled"])
  batch = config.train.batch_size
  return {"first_call_s": first, "step_s": step_s, "step_cpu_s": cpu_s,
          "cpu_samples_per_s": batch / cpu_s,
          "rounds_per_step": s["synth/rounds"] / s["steps"],
          "filled_fraction": filled,
          "measured_keep": s["synth/kept"] / s["synth/generated"],
          "samples_per_s": batch / step_s,
          "filled_samples_per_s": filled * batch / step_s}


def unfilled_probabilities(batches=(95, 32, 12), keeps=(0.1, 0.25, 0.38),
                           rounds=(1, 2, 4, 8, 12, 16, 20)):
  """P(a batch is unfilled after R rounds) = P(Bin(R ceil(1.5 B), p) < B)."""
  table = []
  for batch in batches:
    n = math.ceil(1.5 * batch - 1e-9)
    for keep in keeps:
      table.append({"batch": batch, "keep": keep, "unfilled_after": {
          str(r): float(scipy_stats.binom.cdf(batch - 1, r * n, keep))
          for r in rounds}})
  return table


def markdown(entries) -> str:
  lines = ["| preset | batch | keep p (measured) | max_rounds | rounds/step "
           "| filled | CPU s/step | samples per CPU s | wall ms/step "
           "| samples/s (wall) | filled samples/s (wall) | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for e in entries:
    lines.append(
        f"| {e['preset']} | {e['batch_size']} "
        f"| {e['keep']:g} ({e['measured_keep']:.2f}) | {e['max_rounds']} "
        f"| {e['rounds_per_step']:.2f} | {e['filled_fraction']:.3f} "
        f"| {e['step_cpu_s']:.3f} | {e['cpu_samples_per_s']:.3g} "
        f"| {1e3 * e['step_s']:.0f} | {e['samples_per_s']:.3g} "
        f"| {e['filled_samples_per_s']:.3g} | {e['load_average']:.0f} |")
  return "\n".join(lines)


def probability_markdown(table) -> str:
  rounds = list(table[0]["unfilled_after"])
  lines = ["| B | p | " + " | ".join(f"R={r}" for r in rounds) + " |",
           "|---|---|" + "---|" * len(rounds)]
  for row in table:
    lines.append(f"| {row['batch']} | {row['keep']:g} | " + " | ".join(
        f"{row['unfilled_after'][r]:.1e}" for r in rounds) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  config = load_config()
  generate, gen_params = load_generator(config)
  rng = np.random.default_rng(0)
  direction = rng.normal(size=config.generator.z_dim).astype(np.float32)
  direction = jnp.asarray(direction / np.linalg.norm(direction))
  fractions = foreground_fractions(config, generate, gen_params, direction,
                                   FLAGS.calibration)
  results = {"runs": [], "unfilled_probability": unfilled_probabilities()}
  if os.path.exists(FLAGS.out):
    with open(FLAGS.out) as f:
      results["runs"] = json.load(f)["runs"]
  key = lambda e: (e["device"], e["preset"], e["batch_size"], e["keep"],
                   e["max_rounds"])
  for keep in map(float, FLAGS.keep):
    for rounds in (1, FLAGS.max_rounds):
      plant(config, keep, fractions)
      config.synth.max_rounds = rounds
      entry = {"device": machine.describe(), "preset": FLAGS.preset,
               "batch_size": config.train.batch_size, "keep": keep,
               "max_rounds": rounds, "timed_steps": FLAGS.steps,
               "jax": jax.__version__,
               "load_average": os.getloadavg()[0],
               "max_foreground": (config.synth.max_foreground
                                  if keep < 1 else None),
               **measure(config, generate, gen_params, direction)}
      print(json.dumps(entry), flush=True)
      results["runs"] = [e for e in results["runs"]
                         if key(e) != key(entry)] + [entry]
      fileio.write_json(FLAGS.out, results)
  print(markdown(results["runs"]))
  print()
  print(probability_markdown(results["unfilled_probability"]))


if __name__ == "__main__":
  app.run(main)
