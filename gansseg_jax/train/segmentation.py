"""The fused training step of the U-Net and the training loop (docs/method.md §7).

One jitted step, no host round trip (docs/architecture.md, "The fused training
step"):

  key_c = fold_in(fold_in(stage_key(seed, 'train'), step), c)   c = chunk
  (images, masks, weights) = synthesize(key_c, G, ...)   per device, shard_map;
      rounds of candidates until the batch is full (config.synth.max_rounds)
  loss = sum_i w_i mean_pixels CE(UNet(images_i), masks_i) / max(sum_i w_i, 1)
  params <- Adam(lr(step)) on grad loss;  lr = 1e-3, x0.2 at step 8000

The global batch (`config.train.batch_size`) is split over a 1-D device mesh,
axis 'data'; params, optimizer state and the frozen generator are replicated;
the state is donated. Each device synthesizes its own slice inside
`jax.shard_map` from keys folded with the global chunk index, so the batch
never exists on a host and the data of step s is a pure function of
(config.seed, s) (and of the device count unless config.train.synth_chunks is
fixed). The U-Net part runs under plain `jit` on the batch-sharded arrays: its
BatchNorm statistics and gradients are over the global batch (XLA inserts the
all-reduces), so a step gives the same result on any number of devices.

BatchNorm statistics use only the kept samples (weight 1); a batch with none
kept uses all slots (its loss is 0 anyway). Empty slots enter the U-Net as
zero images.

The loop runs `config.train.steps_per_call` steps per call (`run_steps`). On
TPUs and GPUs a call is one XLA while loop over a traced count (`steps`); on
CPUs it is a host loop over the plain one-step program (`step`), because
XLA:CPU gives the convolutions of a while body (the U-Net's gradients) naive
kernels instead of its library ones (13x slower per step). Either way every
count runs one program, so any steps_per_call gives bit-identical results;
the two programs differ from each other in the last bits (`device_loop`
picks one per platform). A call never crosses a log, hold-out or checkpoint
step (the call before one runs fewer steps).

A step whose loss, gradients or new state (params, BatchNorm statistics, Adam
moments) hold a NaN or inf is not applied: the jitted step keeps the old state
(`jnp.where` on one on-device finiteness flag) and counts it in the metric
`skipped`. The step counter in the state then stops; a call ends after such a
step (the rest of it would redo the same batch), and every later call redoes
it once; the loop notices at its next log, eval or checkpoint point, saves the
last good state (finite by construction) and raises `NonFiniteLossError`
naming the step.
"""
import functools
import os
import time
import zlib
from typing import Any, Callable, NamedTuple, Optional

from absl import logging
from flax import nnx
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec
import ml_collections
import numpy as np
import optax

from gansseg_jax.infra import errors
from gansseg_jax.infra import keys
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import finite as finite_lib
from gansseg_jax.infra import sharding
from gansseg_jax.infra import training_loop
from gansseg_jax.models import unet as unet_lib
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import latents as synth_latents
from gansseg_jax.train import augment
from gansseg_jax.train import holdout
from gansseg_jax.train import summaries

STAGE = "train"
HOLDOUT = "train/holdout"
# The U-Net's initial params use XLA's RngBitGenerator ('rbg'): the same on
# every device of a platform, and ~10x faster to compile on CPU than
# threefry for this many initializers.
INIT = "train/init"
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
AUGMENT_SALT = zlib.crc32(b"train/augment")  # Folded into the batch key.
PHOTOMETRIC_SALT = zlib.crc32(b"train/photometric")  # Likewise.

TrainState = dict[str, Any]  # params, batch_stats, opt_state (pytrees), step.


class NonFiniteLossError(errors.UserError):
  """The training loss became NaN or inf."""


def activation_dtype(name: str, field: str):
  """The jnp dtype called `name` ('float32' or 'bfloat16'), else a UserError."""
  if name not in DTYPES:
    raise errors.UserError(f"{field}: {name!r} is not one of {sorted(DTYPES)}")
  return DTYPES[name]


def new_unet(config_unet: ml_collections.ConfigDict,
             rngs: nnx.Rngs) -> unet_lib.UNet:
  """The U-Net of `config.unet` (width, activation dtype, BatchNorm)."""
  if config_unet.width <= 0:
    raise errors.UserError(
        f"config.unet.width: must be positive, got {config_unet.width}")
  return unet_lib.UNet(
      config_unet.width,
      dtype=activation_dtype(config_unet.dtype, "config.unet.dtype"),
      bn_momentum=config_unet.bn_momentum, bn_eps=config_unet.bn_eps,
      rngs=rngs)


def learning_rate_schedule(config_train: ml_collections.ConfigDict):
  """lr(s) = learning_rate * decay_factor ** #{d in decay_steps: s >= d}."""
  return optax.piecewise_constant_schedule(
      config_train.learning_rate,
      {int(s): config_train.decay_factor for s in config_train.decay_steps})


def weighted_pixel_cross_entropy(logits: jax.Array, masks: jax.Array,
                                 weights: jax.Array) -> jax.Array:
  """sum_i w_i mean_pixels CE_i / max(sum_i w_i, 1), in float32 (§7)."""
  per_sample = holdout.pixel_cross_entropy(logits, masks)
  return jnp.sum(weights * per_sample) / jnp.maximum(jnp.sum(weights), 1.0)


class Frozen(NamedTuple):
  """The step's constant inputs, replicated on every device."""
  gen_params: Any  # The generator's params (never trained).
  direction: jax.Array  # [z_dim] raw background direction h_bg.
  embeddings: Optional[jax.Array]  # [N, z_dim] for latents='embeddings'.
  affine_maps: Optional[jax.Array]  # [2, 3, 4] for mask_rule='affine'.


def latent_sampler(config_synth: ml_collections.ConfigDict, z_dim: int,
                   embeddings: Optional[jax.Array]):
  """`sample(key, n)` of §5; traced `embeddings` stay a step argument.

  The table is an input of the jitted step rather than a constant baked
  into it (it can hold a million rows).
  """
  if config_synth.latents == "embeddings" and embeddings is not None:
    return synth_latents.embedding_sampler(embeddings,
                                           float(config_synth.embedding_noise))
  return synth_latents.make_sampler(config_synth, z_dim)


class FusedTraining(NamedTuple):
  """The jitted pieces of training on one mesh (`build`'s result).

  init_state:  () -> TrainState (replicated).
  synthesize:  (stream, index, frozen) ->
               (images, masks, weights, stats): global batch `index` of the
               'train' or 'holdout' stream, made on the devices; the
               arrays batch-sharded, the stats summed and replicated.
  update:      (state, images, masks, weights) -> (state, metrics): U-Net
               forward/backward + Adam on a given batch (benchmarks).
  step:        (state, sums, frozen) ->
               (state, sums): synthesize('train', state.step) + update, and
               the metrics added to `sums`; state and sums donated.
  steps:       (state, sums, frozen, count) -> (state, sums): `step`
               `count` times in one XLA while loop (count: a replicated
               int32 scalar, so every count runs the same program); stops
               early after a step that was not applied.
  run_steps:   (state, sums, frozen, count: int) -> (state, sums): what
               training calls: `steps` where `device_loop(mesh)`, else
               `step` `count` times from the host, stopping early likewise.
  zero_sums:   (frozen) -> the metric
               sums of zero steps (replicated zeros shaped like `step`'s).
  eval_sums:   (state, HoldoutBatch) -> weighted metric sums (eval mode).
  preview:     (state, images, masks, weights) -> the first
               summaries.PREVIEW_SAMPLES of each and the U-Net's P(fg) on
               them (eval mode), replicated (TensorBoard images).
  zeros_like:  (sums) -> zeros of the same shapes (resets the sums).
  first_slots: (weights, count) -> weights of slots >= count zeroed.
  abstract_state: ShapeDtypeStructs of the state, replicated (restores).
  """
  init_state: Callable
  synthesize: Callable
  update: Callable
  step: Callable
  steps: Callable
  run_steps: Callable
  zero_sums: Callable
  eval_sums: Callable
  preview: Callable
  zeros_like: Callable
  first_slots: Callable
  abstract_state: Any


def combine_chunk_stats(name: str, values: jax.Array) -> jax.Array:
  """One step's synth stat from its chunks' [local_chunks] values.

  Counts add up over all chunks; `rounds` is the most any chunk ran, the
  rounds the step took (vmapped and parallel chunks wait for the slowest).
  """
  if name in synth_batch.MAX_OVER_CHUNKS:
    return jax.lax.pmax(jnp.max(values, axis=0), sharding.DATA_AXIS)
  return jax.lax.psum(jnp.sum(values, axis=0), sharding.DATA_AXIS)


def device_loop(mesh) -> bool:
  """Whether training loops over its steps on the devices of `mesh`.

  True on TPUs and GPUs (one XLA while loop per call: the host dispatches
  and waits once per call), False on CPUs: XLA:CPU canonicalizes the layout
  of convolutions only in a program's entry computation, so those of a while
  body (the U-Net's gradient convolutions) get naive kernels instead of its
  library ones, 13x slower per step than the plain one-step program.
  """
  return any(d.platform != "cpu" for d in mesh.devices.flat)


def host_loop(step: Callable) -> Callable:
  """(state, sums, frozen, count: int) -> (state, sums): `step` `count` times.

  Stops after a step that was not applied, like `build`'s `steps`: the
  state's step counter did not advance (one host sync per step; none for
  count 1).
  """

  def steps(state, sums, frozen, count):
    start = int(sharding.fetch(state["step"])) if count > 1 else 0
    for done in range(1, count + 1):
      state, sums = step(state, sums, frozen)
      if done < count and int(sharding.fetch(state["step"])) != start + done:
        break
    return state, sums

  return steps


def build(config: ml_collections.ConfigDict, mesh,
          generate: Callable) -> FusedTraining:
  """Jits the training pieces of `config` on `mesh` with generator `generate`.

  Nothing compiles here; each piece compiles on its first call.
  """
  num_devices = mesh.size
  batch_size = config.train.batch_size
  chunks = sharding.synth_chunks(config.train, num_devices)
  chunk_size, local_chunks = batch_size // chunks, chunks // num_devices
  spec = synth_batch.SynthSpec.from_config(config.synth)
  z_dim = config.generator.z_dim
  tx = optax.adam(learning_rate_schedule(config.train))
  abstract_model = nnx.eval_shape(lambda: new_unet(config.unet, nnx.Rngs(0)))
  graphdef, _, _ = nnx.split(abstract_model, nnx.Param, nnx.BatchStat)
  rep, batch_sh = sharding.replicated(mesh), sharding.batch_sharded(mesh)

  stream_keys = {
      "train": lambda: keys.stage_key(config.seed, STAGE),
      "holdout": lambda: keys.stage_key(config.train.holdout_seed, HOLDOUT),
  }

  def init_state() -> TrainState:
    init_key = keys.stage_key(config.seed, INIT, impl="rbg")
    model = new_unet(config.unet, nnx.Rngs(init_key))
    _, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    params = nnx.to_pure_dict(params)
    return {"params": params, "batch_stats": nnx.to_pure_dict(stats),
            "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32)}

  def local_synthesize(index, gen_params, direction, embeddings, affine_maps,
                       *, stream):
    """This device's slice of batch `index`: local_chunks * chunk_size."""
    sample_latents = latent_sampler(config.synth, z_dim, embeddings)
    first = jax.lax.axis_index(sharding.DATA_AXIS) * local_chunks
    batch_key = jax.random.fold_in(stream_keys[stream](), index)
    keys = jax.vmap(lambda c: jax.random.fold_in(batch_key, c))(
        first + jnp.arange(local_chunks))
    made = jax.vmap(lambda k: synth_batch.synthesize(
        k, generate, gen_params, direction, sample_latents, spec,
        chunk_size, affine_maps))(keys)
    flat = lambda x: x.reshape((local_chunks * chunk_size,) + x.shape[2:])
    stats = {k: combine_chunk_stats(k, v) for k, v in made.stats.items()}
    images, masks = flat(made.images), flat(made.masks)
    if stream == "train" and config.train.shift_augment > 0:
      images, masks = augment.random_translate(
          jax.random.fold_in(keys[0], AUGMENT_SALT), images, masks,
          config.train.shift_augment)
    if stream == "train":  # Strength 0 leaves the images as they are.
      images = augment.photometric(
          jax.random.fold_in(keys[0], PHOTOMETRIC_SALT), images,
          config.train.photometric_augment)
    return (images, masks, flat(made.weights), stats)

  def synthesize(stream, index, frozen: Frozen):
    data = PartitionSpec(sharding.DATA_AXIS)
    return jax.shard_map(
        functools.partial(local_synthesize, stream=stream), mesh=mesh,
        in_specs=(PartitionSpec(),) * 5,
        out_specs=(data, data, data, PartitionSpec()),
        check_vma=False,  # synth's while_loops start from invariant carries.
    )(index, *frozen)

  def update(state, images, masks, weights):
    kept = weights > 0
    bn_samples = jnp.where(jnp.any(kept), kept, True)
    # Empty slots hold rejected samples; zeroing them keeps a NaN there out
    # of the gradients (0 * NaN in the batch sums).
    images = jnp.where(kept[:, None, None, None], images, 0)
    masks = jnp.where(kept[:, None, None], masks, 0)

    def loss_fn(params):
      model = nnx.merge(graphdef, params, state["batch_stats"])
      model.train()
      logits = model(images, sample_mask=bn_samples)
      loss = weighted_pixel_cross_entropy(logits, masks, weights)
      return loss, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    new_state = {"params": optax.apply_updates(state["params"], updates),
                 "batch_stats": batch_stats, "opt_state": opt_state,
                 "step": state["step"] + 1}
    finite = finite_lib.all_finite((loss, grads, new_state))
    state = finite_lib.keep_finite(finite, new_state, state)
    metrics = {"loss": loss, "kept_fraction": jnp.mean(weights),
               "skipped": jnp.logical_not(finite).astype(jnp.int32)}
    return state, metrics

  def step_metrics(state, frozen: Frozen):
    images, masks, weights, stats = synthesize("train", state["step"], frozen)
    state, metrics = update(state, images, masks, weights)
    metrics.update({f"synth/{k}": v for k, v in stats.items()})
    metrics["steps"] = jnp.ones((), jnp.int32)
    return state, metrics

  def step(state, sums, frozen: Frozen):
    state, metrics = step_metrics(state, frozen)
    return state, jax.tree.map(jnp.add, sums, metrics)

  def steps(state, sums, frozen: Frozen, count):
    """`step` `count` times in one while loop (count traced: one program).

    Stops after a step that was not applied (non-finite): the rest of the
    call would redo that step's batch on the same state.
    """
    start = state["step"]

    def all_applied_and_more(carry):
      done, state, _ = carry
      return (done < count) & (state["step"] == start + done)

    def body(carry):
      done, state, sums = carry
      state, sums = step(state, sums, frozen)
      return done + 1, state, sums

    _, state, sums = jax.lax.while_loop(
        all_applied_and_more, body, (jnp.zeros((), jnp.int32), state, sums))
    return state, sums

  def eval_sums(state, batch: holdout.HoldoutBatch):
    model = nnx.merge(graphdef, state["params"], state["batch_stats"])
    model.eval()
    return holdout.metric_sums(model(batch.images), batch.masks, batch.weights)

  def preview(state, images, masks, weights):
    model = nnx.merge(graphdef, state["params"], state["batch_stats"])
    model.eval()
    first = slice(0, summaries.PREVIEW_SAMPLES)
    return (images[first], masks[first], weights[first],
            unet_lib.foreground_probability(model(images[first])))

  def first_slots(weights, count):
    return jnp.where(jnp.arange(weights.shape[0]) < count, weights, 0.0)

  abstract_state = checkpointing.abstract_like(jax.eval_shape(init_state),
                                               rep)
  synth_out = (batch_sh, batch_sh, batch_sh, rep)

  def zero_sums(frozen: Frozen):
    """Zeros shaped like step's metrics (traces synthesis, not the U-Net)."""
    stats = jax.eval_shape(
        functools.partial(synthesize, "train"), abstract_state["step"],
        frozen)[3]
    shapes = {"loss": jnp.float32, "kept_fraction": jnp.float32,
              "steps": jnp.int32, "skipped": jnp.int32,
              **{f"synth/{k}": v.dtype for k, v in stats.items()}}
    return jax.jit(lambda: {k: jnp.zeros((), dtype)
                            for k, dtype in shapes.items()},
                   out_shardings=rep)()

  jitted_step = jax.jit(step, donate_argnums=(0, 1), out_shardings=(rep, rep))
  jitted_steps = jax.jit(steps, donate_argnums=(0, 1),
                         out_shardings=(rep, rep))
  if device_loop(mesh):
    counts = functools.lru_cache(
        lambda n: sharding.replicate(np.int32(n), mesh))
    run_steps = lambda state, sums, frozen, count: jitted_steps(
        state, sums, frozen, counts(count))
  else:
    run_steps = host_loop(jitted_step)
  return FusedTraining(
      init_state=jax.jit(init_state, out_shardings=rep),
      synthesize=jax.jit(synthesize, static_argnums=0,
                         out_shardings=synth_out),
      update=jax.jit(update, donate_argnums=0, out_shardings=(rep, rep)),
      step=jitted_step,
      steps=jitted_steps,
      run_steps=run_steps,
      zero_sums=zero_sums,
      eval_sums=jax.jit(eval_sums, out_shardings=rep),
      preview=jax.jit(preview, out_shardings=rep),
      zeros_like=jax.jit(lambda t: jax.tree.map(jnp.zeros_like, t),
                         out_shardings=rep),
      first_slots=jax.jit(first_slots, static_argnums=1,
                          out_shardings=batch_sh),
      abstract_state=abstract_state)


def steps_program(config: ml_collections.ConfigDict, mesh, generate: Callable,
                  frozen: Frozen) -> tuple[Callable, tuple[Any, ...]]:
  """(the jitted `steps` of `build`, its abstract arguments) for AOT compiles.

  `program.lower(*args).compile()` compiles the program that training runs
  on TPUs and GPUs for `config.train.steps_per_call` steps per call (the
  device loop), on `mesh` (which may hold AOT devices, e.g. a TPU
  topology's). `frozen` holds arrays or
  ShapeDtypeStructs; args are (state, sums, frozen, count) as
  ShapeDtypeStructs, replicated on `mesh`.
  """
  fused = build(config, mesh, generate)
  rep = sharding.replicated(mesh)
  frozen = checkpointing.abstract_like(frozen, rep)
  sums = checkpointing.abstract_like(jax.eval_shape(fused.zero_sums, frozen),
                                     rep)
  count = jax.ShapeDtypeStruct((), jnp.int32, sharding=rep)
  return fused.steps, (fused.abstract_state, sums, frozen, count)


def _check_periods(config_train: ml_collections.ConfigDict) -> None:
  for name in ("steps", "log_every", "eval_every", "checkpoint_every",
               "keep_checkpoints", "holdout_size", "steps_per_call"):
    value = config_train[name]
    if not (isinstance(value, int) and value > 0):
      raise errors.UserError(
          f"config.train.{name}: must be a positive integer, got {value!r}")


def checkpoint_dir(workdir: str) -> str:
  """W/checkpoints/train."""
  return os.path.join(workdir, "checkpoints", STAGE)


def _check_finite(state: TrainState, step: int, checkpoints) -> None:
  """Raises NonFiniteLossError if a step <= `step` was not applied.

  The state stops at the last good step (see `build`); that state is saved
  as its checkpoint before raising.
  """
  good = int(sharding.fetch(state["step"]))
  if good == step:
    return
  checkpoints.save(good, state, force=True)
  checkpoints.wait()
  raise NonFiniteLossError(
      f"{STAGE}: the loss, gradients or new params are NaN or inf at step "
      f"{good + 1} (not applied); the last good "
      f"state (step {good}) is checkpoint {good} in "
      f"{checkpoints.directory} (lower config.train.learning_rate or use "
      f"config.unet.dtype='float32')")


def _interval_scalars(sums: dict[str, Any], step: int, interval_s: float,
                      config_train: ml_collections.ConfigDict
                      ) -> tuple[dict[str, float], dict[str, float]]:
  """(scalars to log, summed synth stats) of one log interval's metric sums.

  synth/<stat> is the stat's mean per step (synth/rounds: the rounds a step
  ran); synth/filled_fraction = filled / (filled + unfilled) slots.
  """
  steps = max(int(sums["steps"]), 1)
  stats = {k[len("synth/"):]: v for k, v in sums.items()
           if k.startswith("synth/")}
  scalars = {
      "loss": float(sums["loss"]) / steps,
      "kept_fraction": float(sums["kept_fraction"]) / steps,
      "skipped_steps": float(sums["skipped"]),
      "learning_rate": float(learning_rate_schedule(config_train)(step - 1)),
      "samples_per_s": steps * config_train.batch_size / max(interval_s, 1e-9),
      **{f"synth/{k}": float(v) / steps for k, v in stats.items()}}
  slots = max(float(stats["filled"]) + float(stats["unfilled"]), 1.0)
  scalars["synth/filled_fraction"] = float(stats["filled"]) / slots
  return scalars, stats


def train(config: ml_collections.ConfigDict, workdir: str, generate: Callable,
          gen_params: Any, direction: Any, embeddings: Any = None,
          affine_maps: Any = None) -> TrainState:
  """Trains the U-Net on on-the-fly synthetic pairs; returns the final state.

  Resumes from the latest checkpoint in W/checkpoints/train; logs the
  training metrics every `log_every` steps, the hold-out metrics every
  `eval_every` steps (and at step 0 and the end), checkpoints every
  `checkpoint_every` steps (and at the end and on SIGTERM). Inputs are
  host arrays (or single-device arrays), the same on every process.

  Args:
    config: the run's config (sections generator, synth, unet, train, log).
    workdir: W.
    generate: `generate(params, z) -> images` of the frozen generator.
    gen_params: its params.
    direction: [z_dim] the background direction h_bg.
    embeddings: [N, z_dim] for config.synth.latents='embeddings', else None.
    affine_maps: [2, 3, 4] for config.synth.mask_rule='affine', else None.

  Returns:
    The final TrainState (params, batch_stats, opt_state, step), replicated.
  """
  cfg = config.train
  _check_periods(cfg)
  if config.synth.latents != "embeddings":
    embeddings = None
  synth_latents.make_sampler(
      config.synth, config.generator.z_dim,
      embeddings=None if embeddings is None else np.asarray(embeddings[:1]))
  mesh = sharding.data_mesh()
  fused = build(config, mesh, generate)
  frozen = sharding.replicate(
      Frozen(gen_params, direction, embeddings, affine_maps), mesh)
  guard = synth_batch.StarvationGuard(
      synth_batch.SynthSpec.from_config(config.synth))
  writer = monitoring.MetricsWriter(workdir, STAGE)
  try:
    return _train_loop(config, workdir, fused, frozen, mesh, writer, guard)
  finally:
    writer.close()


def _pictures(fused: FusedTraining, state: TrainState,
              holdout_batch: holdout.HoldoutBatch) -> dict[str, np.ndarray]:
  """The TensorBoard images of the current state (train/summaries.py)."""
  images, masks, weights, probs = sharding.fetch(
      fused.preview(state, *holdout_batch))
  pictures = {
      "synth/kept_pairs": summaries.rows_picture(images, masks, weights),
      "holdout/predictions": summaries.rows_picture(images, masks, weights,
                                                    probs)}
  return {name: p for name, p in pictures.items() if p is not None}


def _train_loop(config, workdir: str, fused: FusedTraining, frozen: Frozen,
                mesh, writer: monitoring.MetricsWriter,
                guard: synth_batch.StarvationGuard) -> TrainState:
  """Steps from the latest checkpoint to config.train.steps (see `train`)."""
  cfg = config.train
  holdout_batches = holdout.build(
      lambda b: fused.synthesize(
          "holdout", sharding.replicate(np.int32(b), mesh), frozen),
      cfg.holdout_size, cfg.batch_size, fused.first_slots)
  sums = None  # The metric sums since the last log.
  log_time = None
  unfilled = synth_batch.UnfilledWarning(
      synth_batch.SynthSpec.from_config(config.synth))

  def advance(state, step, count):
    nonlocal sums, log_time
    if sums is None:
      sums, log_time = fused.zero_sums(frozen), time.monotonic()
    state, sums = fused.run_steps(state, sums, frozen, count)
    return state

  def log(state, step):
    del state
    nonlocal sums, log_time
    now = time.monotonic()
    interval = sharding.fetch(sums)
    scalars, stats = _interval_scalars(interval, step, now - log_time, cfg)
    sums, log_time = fused.zeros_like(sums), now
    writer.write_scalars(step, scalars)
    warning = unfilled.check(stats, batches=int(interval["steps"]))
    if warning:
      logging.warning("%s step %d: %s", STAGE, step, warning)
    guard.check(stats, batches=int(interval["steps"]))

  def evaluate(state, step):
    scalars = holdout.evaluate(holdout_batches,
                               lambda b: fused.eval_sums(state, b))
    writer.write_scalars(step, {f"holdout/{k}": v
                                for k, v in scalars.items()})
    if writer.writes_images:
      writer.write_images(step, _pictures(fused, state, holdout_batches[0]))

  return training_loop.run(training_loop.Loop(
      stage=STAGE, total=cfg.steps, advance=advance,
      initial=fused.init_state,
      actions=(training_loop.Every(cfg.log_every, log),
               training_loop.Every(cfg.eval_every, evaluate, at_start=True)),
      steps_per_call=cfg.steps_per_call,
      checkpoint_dir=checkpoint_dir(workdir),
      checkpoint_every=cfg.checkpoint_every,
      keep_checkpoints=cfg.keep_checkpoints, abstract=fused.abstract_state,
      fits="config.unet / config.train", steps_field="config.train.steps",
      check_finite=_check_finite,
      progress_every_s=config.log.progress_every_s))
