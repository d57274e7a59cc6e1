r"""Training the demo's DCGAN on procedural scenes, and shipping its generator.

  python -m gansseg_jax.train.gan --config=configs/demo_gan.py \
      --workdir=runs/demo_gan --export_dir=gansseg_jax/assets/demo_generator

Recipe (SNGAN, Miyato et al. 2018, with the hinge loss of Lim & Ye 2017):
- L_D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))), D spectrally normalised;
- L_G = -mean(D(G(z))); per step `d_steps` D Adam updates, then one of G
  (SNGAN's n_dis; BigGAN (Brock et al. 2019) uses 2, with D's learning rate
  4x G's);
- EMA of G's weights, decay min(ema_decay, (1 + s) / (10 + s)); the EMA
  generator is the one shipped.
Real images are an endless stream: D update k of step s renders real batch
n = s d_steps + k, scenes [n B, (n + 1) B) of `config.data_seed`
(data/scenes.py), inside the jitted step; z ~ N(0, I) from
fold_in(key(config.seed), s). Everything is a function of the step number,
so a resumed run repeats exactly what an uninterrupted one would do.

Outputs in the workdir: checkpoints/ (orbax, the last `keep_checkpoints`,
resumed from automatically; also written on SIGTERM, which then exits with
status 143), samples/step_*.png
(EMA generator on fixed latents), metrics.jsonl (+ TensorBoard events),
machine.txt (machine.describe() of the latest training run, which the
export reports even when `--export_only` runs elsewhere).
`--export_dir` writes params.npz, info.json, samples.png and README.md of the
latest checkpoint there (models/demo_gan.py `load_builtin` reads them); with
`config.model.g_norm='batch'` params.npz also holds the standing statistics of
the EMA weights over `config.train.standing_batches` batches.
`--export_only` exports without training further.
"""
import io
import json
import os
import sys
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import flax.nnx as nnx
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np
import optax
from PIL import Image

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import machine as machine_lib
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import runtime
from gansseg_jax.data import scenes
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import training_loop
from gansseg_jax.models import demo_gan

STAGE = "demo_gan"
State = dict[str, Any]


def model_config(config: ml_collections.ConfigDict) -> dict[str, int | str]:
  """The fields `demo_gan.abstract_generator` needs, as a plain dict."""
  return {**{k: int(config.model[k])
             for k in ("z_dim", "resolution", "g_channels", "d_channels")},
          "g_norm": str(config.model.g_norm)}


def _optimizers(config: ml_collections.ConfigDict):
  t = config.train
  return (optax.adam(t.g_learning_rate, t.adam_b1, t.adam_b2),
          optax.adam(t.d_learning_rate, t.adam_b1, t.adam_b2))


class Networks:
  """Graph definitions and optimisers of G and D for one config."""

  def __init__(self, config: ml_collections.ConfigDict):
    m = config.model
    rngs = nnx.Rngs(config.seed)
    generator = demo_gan.Generator(m.z_dim, m.g_channels, m.resolution,
                                   m.g_norm, rngs=rngs)
    discriminator = demo_gan.Discriminator(m.d_channels, m.resolution,
                                           rngs=rngs)
    self.g_graph, g_params, g_stats = nnx.split(
        generator, nnx.Param, demo_gan.StandingStat)
    # Placeholders for merging: training normalises with batch statistics,
    # and the export computes standing ones (`standing_statistics`).
    self.g_stats = nnx.to_pure_dict(g_stats)
    self.d_graph, d_params, d_stats = nnx.split(
        discriminator, nnx.Param, demo_gan.PowerIterate)
    self.g_tx, self.d_tx = _optimizers(config)
    g_params = nnx.to_pure_dict(g_params)
    d_params = nnx.to_pure_dict(d_params)
    self.initial_state: State = {
        "step": jnp.zeros((), jnp.int32),
        "g": g_params,
        "g_ema": g_params,
        "d": d_params,
        "d_stats": nnx.to_pure_dict(d_stats),
        "g_opt": self.g_tx.init(g_params),
        "d_opt": self.d_tx.init(d_params),
        "train_seconds": jnp.zeros((), jnp.float32),
    }

  def generate(self, params, z: jax.Array) -> jax.Array:
    """G(z) as trained: batch norm (if any) uses the batch's statistics."""
    return nnx.merge(self.g_graph, params, self.g_stats)(z, batch_stats=True)

  def standing_statistics(self, params, config: ml_collections.ConfigDict):
    """Batch-norm statistics of `params` over `standing_batches` batches."""
    t = config.train
    z = jax.random.normal(jax.random.key(config.seed + 2),
                          (t.standing_batches, t.batch_size, config.model.z_dim))
    return jax.jit(demo_gan.standing_statistics, static_argnums=0)(
        self.g_graph, params, self.g_stats, z)

  def discriminate(self, params, stats, images: jax.Array, update_stats: bool):
    """D's logits [B] and its power-iteration vectors after the call."""
    d = nnx.merge(self.d_graph, params, stats)
    logits = d(images, update_stats)
    return logits, nnx.to_pure_dict(nnx.state(d, demo_gan.PowerIterate))


def real_images(config: ml_collections.ConfigDict, batch: jax.Array) -> jax.Array:
  """Scenes [n B, (n + 1) B) of config.data_seed for batch n: [B, R, R, 3] in [-1, 1]."""
  b = config.train.batch_size
  indices = batch.astype(jnp.uint32) * b + jnp.arange(b, dtype=jnp.uint32)
  images, _, _ = scenes.render_keys(
      scenes.scene_keys(config.data_seed, indices), config.model.resolution)
  return images


def hinge_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))."""
  return (jnp.mean(jax.nn.relu(1.0 - real_logits))
          + jnp.mean(jax.nn.relu(1.0 + fake_logits)))


def make_train_step(config: ml_collections.ConfigDict,
                    nets: Networks) -> Callable[[State], tuple[State, dict]]:
  """The jitted step: state -> (state, metrics). `d_steps` D updates, then one G update.

  D update k of step s sees real batch s d_steps + k and latents from
  fold_in(key(seed), s) split d_steps + 1 ways (the last one is G's).
  """
  b, z_dim = config.train.batch_size, config.model.z_dim
  d_steps = config.train.d_steps
  if d_steps < 1:
    raise errors.UserError(f"config.train.d_steps: {d_steps} is not >= 1")

  def d_update(g_params, d_params, d_stats, d_opt, batch, key):
    real = real_images(config, batch)
    fake = nets.generate(g_params, jax.random.normal(key, (b, z_dim)))

    def d_loss_fn(d_params):
      # Separate calls: D's minibatch-stddev channel must not mix the two.
      real_logits, stats = nets.discriminate(d_params, d_stats, real, True)
      fake_logits, _ = nets.discriminate(d_params, stats, fake, False)
      return (hinge_d_loss(real_logits, fake_logits),
              (real_logits, fake_logits, stats))

    (d_loss, (real_logits, fake_logits, d_stats)), d_grads = (
        jax.value_and_grad(d_loss_fn, has_aux=True)(d_params))
    updates, d_opt = nets.d_tx.update(d_grads, d_opt, d_params)
    d_params = optax.apply_updates(d_params, updates)
    metrics = {"d_loss": d_loss, "d_real": jnp.mean(real_logits),
               "d_fake": jnp.mean(fake_logits)}
    return d_params, d_stats, d_opt, metrics

  def train_step(state: State):
    step = state["step"]
    keys = jax.random.split(
        jax.random.fold_in(jax.random.key(config.seed), step), d_steps + 1)
    d_params, d_stats, d_opt = state["d"], state["d_stats"], state["d_opt"]
    # A Python loop, unrolled: XLA:CPU ran this step 13x slower with the
    # updates in a lax.scan (0.27 vs 3.7 steps/s, convolutions in a loop body).
    for k in range(d_steps):
      d_params, d_stats, d_opt, d_metrics = d_update(
          state["g"], d_params, d_stats, d_opt, step * d_steps + k, keys[k])

    def g_loss_fn(g_params):
      images = nets.generate(g_params, jax.random.normal(keys[-1], (b, z_dim)))
      fake_logits, _ = nets.discriminate(d_params, d_stats, images, False)
      return -jnp.mean(fake_logits)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state["g"])
    updates, g_opt = nets.g_tx.update(g_grads, state["g_opt"], state["g"])
    g_params = optax.apply_updates(state["g"], updates)
    s = step.astype(jnp.float32)
    decay = jnp.minimum(config.train.ema_decay, (1.0 + s) / (10.0 + s))
    g_ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                         state["g_ema"], g_params)
    new_state = {**state, "step": step + 1, "g": g_params, "g_ema": g_ema,
                 "d": d_params, "d_stats": d_stats, "g_opt": g_opt,
                 "d_opt": d_opt}
    metrics = {**d_metrics, "g_loss": g_loss}  # D's are its last update's.
    return new_state, metrics

  return jax.jit(train_step)


def sample_grid(generate: demo_gan.Generate, params,
                config: ml_collections.ConfigDict) -> bytes:
  """PNG of `generate(params, z)` on `num_samples` fixed latents, in a square grid."""
  n = config.train.num_samples
  side = int(round(n**0.5))
  z = jax.random.normal(jax.random.key(config.seed + 1), (n, config.model.z_dim))
  images = np.asarray(jax.jit(generate)(params, z))
  return png_grid(images, side)


def png_grid(images: np.ndarray, columns: int) -> bytes:
  """[N, H, W, 3] in [-1, 1] -> PNG bytes of a grid with `columns` columns."""
  n, h, w, _ = images.shape
  rows = -(-n // columns)
  grid = np.zeros((rows * h, columns * w, 3), np.uint8)
  pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
  for i in range(n):
    r, c = divmod(i, columns)
    grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = pixels[i]
  buffer = io.BytesIO()
  Image.fromarray(grid).save(buffer, format="PNG")
  return buffer.getvalue()


def checkpoint_dir(workdir: str) -> str:
  """W/checkpoints: the step folders, without fingerprint records."""
  return os.path.abspath(os.path.join(workdir, "checkpoints"))


MACHINE_FILE = "machine.txt"  # In the workdir: what the last training run ran on.


def trained_on(workdir: str) -> str:
  """The machine the workdir's latest training run recorded.

  Workdirs from before the record existed fall back to this process's.
  """
  path = os.path.join(workdir, MACHINE_FILE)
  if not os.path.isfile(path):
    return machine_lib.describe()
  with open(path) as f:
    return f.read().strip()


def train(config: ml_collections.ConfigDict, workdir: str) -> State:
  """Trains (or resumes) up to config.train.steps; returns the final state.

  Raises checkpointing.Preempted (exit status 143) after saving when SIGTERM
  stopped the run early.
  """
  nets = Networks(config)
  train_step = make_train_step(config, nets)  # Checks the config first.
  fileio.write_text(os.path.join(workdir, MACHINE_FILE),
                    machine_lib.describe() + "\n")
  writer = monitoring.MetricsWriter(workdir, STAGE)
  metrics = None  # Of the last step.
  seconds_before, t0 = None, None  # Wall time before this run, its start.

  def advance(state, step, count):
    del step, count  # One step per call; the state holds its number.
    nonlocal metrics, seconds_before, t0
    if t0 is None:  # The first step of this run.
      seconds_before, t0 = float(state["train_seconds"]), time.monotonic()
    state, metrics = train_step(state)
    return state

  def check_finite(state, step, checkpoints):
    del state, checkpoints
    values = jax.device_get(metrics)
    if not all(np.isfinite(v) for v in values.values()):
      raise FloatingPointError(f"{STAGE} step {step}: non-finite {values}")

  def log(state, step):
    del state
    elapsed = seconds_before + time.monotonic() - t0
    writer.write_scalars(step, {**jax.device_get(metrics),
                                "train_seconds": elapsed})

  def sample(state, step):
    fileio.write_bytes(
        os.path.join(workdir, "samples", f"step_{step:06d}.png"),
        sample_grid(nets.generate, state["g_ema"], config))

  def with_wall_time(state):
    return {**state, "train_seconds": jnp.asarray(
        seconds_before + time.monotonic() - t0, jnp.float32)}

  try:
    return training_loop.run(training_loop.Loop(
        stage=STAGE, total=config.train.steps, advance=advance,
        initial=lambda: nets.initial_state,
        actions=(training_loop.Every(config.train.log_every, log),
                 training_loop.Every(config.train.sample_every, sample)),
        checkpoint_dir=checkpoint_dir(workdir),
        checkpoint_every=config.train.checkpoint_every,
        keep_checkpoints=config.train.keep_checkpoints, fingerprints=False,
        abstract=nets.initial_state, fits="config.model / config.train",
        steps_field="config.train.steps", check_finite=check_finite,
        to_save=with_wall_time, progress_every_s=config.log.progress_every_s))
  finally:
    writer.close()


def export_generator(config: ml_collections.ConfigDict, workdir: str,
                     export_dir: str, command: str) -> dict:
  """Writes the latest checkpoint's EMA generator to `export_dir`; returns info.

  Files: params.npz (flattened EMA params), info.json (model and training
  config, seeds, steps, wall time, command), samples.png, README.md.
  """
  nets = Networks(config)
  with checkpointing.StepCheckpoints(checkpoint_dir(workdir),
                                     config.train.keep_checkpoints,
                                     fingerprints=False) as checkpoints:
    step = checkpoints.latest_step()
    if step is None:
      raise FileNotFoundError(f"{workdir}/checkpoints: no checkpoint to export")
    state = checkpoints.restore(step, nets.initial_state)
  # The shipped parameters: EMA weights and their standing statistics.
  flat = {**demo_gan.flatten_params(state["g_ema"]),
          **demo_gan.flatten_params(
              nets.standing_statistics(state["g_ema"], config))}
  graphdef, template = demo_gan.abstract_generator(model_config(config))
  params = demo_gan.unflatten_params(flat, template, export_dir)
  info = {
      "model": model_config(config),
      "config": config.to_dict(),
      "seed": int(config.seed),
      "data_seed": int(config.data_seed),
      "steps": int(state["step"]),
      "train_seconds": round(float(state["train_seconds"]), 1),
      "command": command,
      "jax_version": jax.__version__,
      "num_parameters": int(sum(v.size for v in flat.values())),
      "machine": trained_on(workdir),
  }
  with fileio.atomic_path(export_dir) as tmp:
    os.makedirs(tmp)
    np.savez(os.path.join(tmp, demo_gan.PARAMS_FILE), **flat)
    with open(os.path.join(tmp, demo_gan.INFO_FILE), "w") as f:
      f.write(_json(info))
    with open(os.path.join(tmp, "samples.png"), "wb") as f:
      f.write(sample_grid(demo_gan.make_generate(graphdef), params, config))
    with open(os.path.join(tmp, "README.md"), "w") as f:
      f.write(_readme(info))
  return info


def _json(obj) -> str:
  return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def _readme(info: dict) -> str:
  m = info["model"]
  return (
      "# The built-in demo generator\n\n"
      f"A DCGAN (`gansseg_jax/models/demo_gan.py`), {m['resolution']}x"
      f"{m['resolution']} RGB, z_dim {m['z_dim']}, trained on the procedural "
      "scenes of `gansseg_jax/data/scenes.py` by `gansseg_jax/train/gan.py`: "
      f"{info['steps']} steps, {info['train_seconds'] / 60:.1f} minutes of "
      f"wall time on {info['machine']}, seed {info['seed']}, data seed "
      f"{info['data_seed']}.\n\n"
      "- `params.npz`: the EMA generator's parameters, keys are '/'-joined "
      "paths of the Flax NNX state.\n"
      "- `info.json`: model config, full training config, steps, wall time.\n"
      "- `samples.png`: the generator on fixed latents.\n\n"
      "Load it with `gansseg_jax.models.demo_gan.load_builtin()`. "
      "Reproduce it with:\n\n"
      f"    {info['command']}\n")


def define_flags() -> dict:
  """The command line's flags, defined when this module runs as a program.

  Not at import: `gansseg_jax.main` defines `--config` and `--workdir` too,
  and a process may import both modules (the test suite does).
  """
  return {
      "config": config_flags.DEFINE_config_file(
          "config", None, "Path of configs/demo_gan.py.", lock_config=True),
      "workdir": flags.DEFINE_string(
          "workdir", None, "Checkpoints, samples and metrics go here."),
      "export_dir": flags.DEFINE_string(
          "export_dir", None,
          "Write the trained EMA generator here when done."),
      "export_only": flags.DEFINE_bool(
          "export_only", False,
          "Export the latest checkpoint without training."),
  }


def main(argv: list[str], flag_values: dict) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = flag_values["config"].value
  workdir = flag_values["workdir"].value
  export_dir = flag_values["export_dir"].value
  runtime.configure_logging(config)
  try:
    if not flag_values["export_only"].value:
      train(config, workdir)
    if export_dir:
      command = " ".join(["python -m gansseg_jax.train.gan"] + [
          a for a in sys.argv[1:] if not a.startswith("--export_only")])
      info = export_generator(config, workdir, export_dir, command)
      logging.info("%s: exported step %d to %s", STAGE, info["steps"],
                   export_dir)
  except errors.UserError as e:
    logging.flush()
    errors.exit_with_error(str(e))
  except checkpointing.Preempted as e:  # Saved; exit status 143.
    logging.flush()
    print(f"stopped: {e}", file=sys.stderr)
    raise


if __name__ == "__main__":
  _FLAGS = define_flags()
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(lambda argv: main(argv, _FLAGS))
