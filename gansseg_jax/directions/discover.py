"""Unsupervised discovery of latent directions (Voynov & Babenko 2020).

docs/method.md section 2.

K directions are learned so that a reconstructor R can tell from the pair
(G(z), G(z + A(eps e_k))) which direction k moved z and by how much:

  k ~ U{0..K-1},  eps ~ U[-max_shift, max_shift], |eps| < min_shift pushed
  out to +-min_shift (sign kept; eps = 0 counts as positive),
  loss = label_weight * CE(R_logits, k) + shift_weight * |R_shift - eps|,

both A and R trained with Adam (one optimiser over both parameter sets: Adam
is per-parameter, so this equals the authors' two optimisers with the same
learning rate). G is frozen: its params are an argument of the step under
`stop_gradient`; gradients flow through G into A, G is never updated.

A step whose loss, gradients or new state hold a NaN or inf is not applied
(the old state is kept, on device) and counts in the metric 'skipped'; the
loop (infra/training_loop.py) raises `NonFiniteStepError` at the next log,
strips or checkpoint point, before saving, so every checkpoint holds finite
values.

One jitted step samples z, k and eps on device from `fold_in(key, step)`, so
a run resumed from a checkpoint of step s repeats exactly the steps an
uninterrupted run makes after s. Data parallel: a 1-D mesh over all devices,
axis 'data'; the batch is sharded on it, parameters and optimiser state are
replicated (`jax.jit` with shardings, no pmap). R's batch norm then sees the
statistics of the global batch, as on one device.

The training state is a plain pytree {'params', 'batch_stats', 'opt_state'}
of pure dicts; `fixed` holds the non-trained variables ('random' deformator).
"""
import dataclasses
import functools
import os
from typing import Any, Callable

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gansseg_jax.infra import errors
from gansseg_jax.infra import monitoring
from gansseg_jax.directions import deformator as deformator_lib
from gansseg_jax.directions import strips
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import finite as finite_lib
from gansseg_jax.infra import sharding
from gansseg_jax.infra import training_loop
from gansseg_jax.generator_interface import latent
from gansseg_jax.models import reconstructor as reconstructor_lib

Generate = Callable[..., jax.Array]
RECONSTRUCTORS = ("lenet", "resnet18")


class NonFiniteStepError(errors.UserError):
  """A discovery step's loss, gradients or new params became NaN or inf."""


@dataclasses.dataclass(frozen=True)
class DiscoverySpec:
  """The static numbers of one discovery step (hashable)."""
  num_directions: int
  latent_dim: int
  batch_size: int
  max_shift: float
  min_shift: float
  label_weight: float
  shift_weight: float

  @classmethod
  def from_config(cls, directions: ml_collections.ConfigDict,
                  latent_dim: int) -> "DiscoverySpec":
    return cls(num_directions=directions.num_directions,
               latent_dim=latent_dim, batch_size=directions.batch_size,
               max_shift=directions.max_shift, min_shift=directions.min_shift,
               label_weight=directions.label_weight,
               shift_weight=directions.shift_weight)


def sample_shifts(key: jax.Array, spec: DiscoverySpec
                  ) -> tuple[jax.Array, jax.Array]:
  """k ~ U{0..K-1} [B] int32 and eps ~ U[-max, max] with |eps| >= min [B]."""
  k_key, eps_key = jax.random.split(key)
  k = jax.random.randint(k_key, (spec.batch_size,), 0, spec.num_directions)
  eps = jax.random.uniform(eps_key, (spec.batch_size,), minval=-spec.max_shift,
                           maxval=spec.max_shift)
  eps = jnp.where(eps >= 0, jnp.maximum(eps, spec.min_shift),
                  jnp.minimum(eps, -spec.min_shift))
  return k, eps


def discovery_loss(logits: jax.Array, shift_prediction: jax.Array,
                   k: jax.Array, eps: jax.Array, label_weight: float,
                   shift_weight: float
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """label_weight * CE(logits, k) + shift_weight * mean |shift_pred - eps|.

  Returns the loss and the metrics {'loss', 'label_loss' (the CE),
  'shift_loss' (the mean L1, unweighted), 'accuracy' (of argmax logits)}.
  """
  label_loss = jnp.mean(
      optax.softmax_cross_entropy_with_integer_labels(logits, k))
  shift_loss = jnp.mean(jnp.abs(shift_prediction - eps))
  loss = label_weight * label_loss + shift_weight * shift_loss
  accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == k).astype(jnp.float32))
  return loss, {"loss": loss, "label_loss": label_loss,
                "shift_loss": shift_loss, "accuracy": accuracy}


class DiscoveryModel(nnx.Module):
  """The two trained parts: deformator A and reconstructor R."""

  def __init__(self, deformator: deformator_lib.Deformator,
               reconstructor: nnx.Module):
    self.deformator = deformator
    self.reconstructor = reconstructor


def build_model(directions: ml_collections.ConfigDict, latent_dim: int,
                key: jax.Array) -> DiscoveryModel:
  """A and R as `config.directions` says (UserError names a bad field)."""
  if directions.deformator not in deformator_lib.KINDS:
    raise errors.UserError(
        f"config.directions.deformator: {directions.deformator!r} is not one "
        f"of {deformator_lib.KINDS}")
  if directions.reconstructor not in RECONSTRUCTORS:
    raise errors.UserError(
        f"config.directions.reconstructor: {directions.reconstructor!r} is not "
        f"one of {RECONSTRUCTORS}")
  if directions.num_directions < 2:
    raise errors.UserError(
        "config.directions.num_directions: need at least 2 directions, got "
        f"{directions.num_directions}")
  if (directions.deformator in ("ortho", "random", "id")
      and directions.num_directions > latent_dim):
    raise errors.UserError(
        f"config.directions.num_directions: {directions.num_directions} > the "
        f"latent size {latent_dim}, impossible for a "
        f"{directions.deformator!r} deformator (use 'linear' or 'projective')")
  rngs = nnx.Rngs(params=key)
  deformator = deformator_lib.Deformator(
      directions.deformator, directions.num_directions, latent_dim,
      directions.deformator_init_std, rngs=rngs)
  if directions.reconstructor == "lenet":
    reconstructor = reconstructor_lib.LeNetReconstructor(
        directions.num_directions, directions.lenet_width,
        directions.bn_momentum, directions.bn_eps, rngs=rngs)
  else:
    reconstructor = reconstructor_lib.ResNet18Reconstructor(
        directions.num_directions, directions.resnet_width,
        directions.bn_momentum, directions.bn_eps, rngs=rngs)
  return DiscoveryModel(deformator, reconstructor)


def split_model(model: DiscoveryModel
                ) -> tuple[nnx.GraphDef, dict[str, Any], dict[str, Any]]:
  """(graphdef, {'params', 'batch_stats'} pure dicts, fixed pure dict)."""
  graphdef, params, batch_stats, fixed = nnx.split(
      model, nnx.Param, nnx.BatchStat, ...)
  return graphdef, {"params": nnx.to_pure_dict(params),
                    "batch_stats": nnx.to_pure_dict(batch_stats)}, (
                        nnx.to_pure_dict(fixed))


def make_optimizer(learning_rate: float) -> optax.GradientTransformation:
  """Adam over A and R together (docs/method.md §2)."""
  return optax.adam(learning_rate)


@functools.lru_cache(maxsize=4)
def make_train_step(graphdef: nnx.GraphDef, generate: Generate,
                    spec: DiscoverySpec, learning_rate: float,
                    mesh: jax.sharding.Mesh):
  """Jitted (state, fixed, gen_params, key_data, step) -> (state, metrics).

  The state argument is donated. `key_data` is the raw uint32 data of a PRNG
  key (`jax.random.key_data`; typed keys cannot be placed from the host).
  z, k and eps come from fold_in(key, step) and are sharded over the mesh's
  'data' axis; everything else is replicated.
  Cached, so a resumed run in the same process reuses the compilation.
  """
  optimizer = make_optimizer(learning_rate)
  replicated = sharding.replicated(mesh)
  batch_sharded = sharding.batch_sharded(mesh)

  def train_step(state, fixed, gen_params, key_data, step):
    step_key = jax.random.fold_in(jax.random.wrap_key_data(key_data), step)
    z_key, shift_key = jax.random.split(step_key)
    z = latent.draw(generate, gen_params, z_key, (spec.batch_size,),
                    spec.latent_dim)
    k, eps = sample_shifts(shift_key, spec)
    z, k, eps = (jax.lax.with_sharding_constraint(x, batch_sharded)
                 for x in (z, k, eps))
    gen_params = jax.lax.stop_gradient(gen_params)
    images = generate(gen_params, z)

    def loss_fn(params):
      model = nnx.merge(graphdef, params, state["batch_stats"], fixed)
      coefficients = jax.nn.one_hot(k, spec.num_directions) * eps[:, None]
      shifted = generate(gen_params, latent.shift(
          z, model.deformator(coefficients)))
      logits, shift_prediction = model.reconstructor(
          jnp.concatenate([images, shifted], axis=-1))
      loss, metrics = discovery_loss(logits, shift_prediction, k, eps,
                                     spec.label_weight, spec.shift_weight)
      batch_stats = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
      return loss, (metrics, batch_stats)

    grads, (metrics, batch_stats) = jax.grad(loss_fn, has_aux=True)(
        state["params"])
    updates, opt_state = optimizer.update(grads, state["opt_state"],
                                          state["params"])
    new_state = {"params": optax.apply_updates(state["params"], updates),
                 "batch_stats": batch_stats, "opt_state": opt_state}
    finite = finite_lib.all_finite((metrics["loss"], grads, new_state))
    metrics["skipped"] = jnp.logical_not(finite).astype(jnp.float32)
    return finite_lib.keep_finite(finite, new_state, state), metrics

  return jax.jit(train_step,
                 in_shardings=(replicated,) * 5,
                 out_shardings=(replicated, replicated),
                 donate_argnums=0)


@functools.lru_cache(maxsize=4)
def _directions_fn(graphdef: nnx.GraphDef):
  def directions(state, fixed):
    model = nnx.merge(graphdef, state["params"], state["batch_stats"], fixed)
    return model.deformator.directions()
  return jax.jit(directions)


def directions_of(graphdef: nnx.GraphDef, state: dict[str, Any],
                  fixed: dict[str, Any]) -> np.ndarray:
  """The K learned directions A(e_k) as rows, float32 [K, d] on the host.

  Every process must call it (a jitted computation over the global mesh).
  """
  return np.asarray(sharding.fetch(_directions_fn(graphdef)(state, fixed)),
                    dtype=np.float32)


def _write_strips(folder: str, step: int, strip_fn, gen_params, z, directions,
                  shifts, rows_per_image: int) -> None:
  """PNG pages of `rows_per_image` directions; row k = G(z + t h_k).

  Every process computes; process 0 writes.
  """
  images = sharding.fetch(strip_fn(gen_params, z, directions, shifts))
  if not sharding.is_primary():
    return
  for start in range(0, len(images), rows_per_image):
    stop = min(start + rows_per_image, len(images))
    strips.write_png(
        os.path.join(folder, f"step_{step:07d}",
                     f"directions_{start:03d}-{stop - 1:03d}.png"),
        strips.grid(images[start:stop]))


def _check_applied(skipped: Any, done: int, window_steps: int,
                   checkpoints: checkpointing.StepCheckpoints) -> None:
  """NonFiniteStepError if a step of the window ending at `done` was skipped.

  Called before every save, so no checkpoint follows a skipped step.
  """
  if not skipped:
    return
  latest = checkpoints.latest_step()
  saved = (f"the latest checkpoint (step {latest}) in {checkpoints.directory} "
           "holds finite values" if latest is not None
           else "no checkpoint was saved")
  raise NonFiniteStepError(
      f"discover: {int(skipped)} of steps {done - window_steps + 1}-{done} "
      f"had a NaN or inf loss, gradient or new params and were not applied; "
      f"{saved} (lower config.directions.learning_rate)")


def train(config: ml_collections.ConfigDict, workdir: str,
          generate: Generate, gen_params: Any, latent_dim: int,
          key: jax.Array) -> np.ndarray:
  """Runs (or resumes) discovery; returns the K directions [K, d].

  Checkpoints go to W/checkpoints/discover/ (orbax, keep the last
  `keep_checkpoints`), metrics to MetricsWriter(W, 'discover'), image strips
  to W/discover_strips/step_NNNNNNN/ every `strip_every` steps (0: none on
  the way) and after the last step.
  """
  cfg = config.directions
  for field in ("steps", "log_every", "checkpoint_every", "keep_checkpoints",
                "strip_shifts", "strip_rows"):
    if cfg[field] <= 0:
      raise errors.UserError(
          f"config.directions.{field}: must be positive, got {cfg[field]}")
  if cfg.strip_every < 0:
    raise errors.UserError(
        f"config.directions.strip_every: must be >= 0, got {cfg.strip_every}")
  if not 0 <= cfg.min_shift <= cfg.max_shift:
    raise errors.UserError(
        f"config.directions.min_shift: need 0 <= min_shift ({cfg.min_shift}) "
        f"<= max_shift ({cfg.max_shift})")
  mesh = sharding.data_mesh()
  sharding.per_device_batch(cfg.batch_size, mesh.size,
                            "config.directions.batch_size")
  replicated = sharding.replicated(mesh)
  spec = DiscoverySpec.from_config(cfg, latent_dim)
  init_key, train_key, strip_key = jax.random.split(key, 3)

  graphdef, model_state, fixed = split_model(
      build_model(cfg, latent_dim, init_key))
  state = dict(model_state, opt_state=make_optimizer(
      cfg.learning_rate).init(model_state["params"]))
  state, fixed, gen_params, key_data, strip_z, strip_shifts = (
      sharding.replicate(
          (state, fixed, gen_params, jax.random.key_data(train_key),
           latent.draw(generate, gen_params, strip_key, (),
                       latent_dim),
           np.linspace(-cfg.max_shift, cfg.max_shift, cfg.strip_shifts,
                       dtype=np.float32)), mesh))
  train_step = make_train_step(graphdef, generate, spec, cfg.learning_rate,
                               mesh)
  strip_fn = strips.jitted_direction_strips(generate)
  strip_folder = os.path.join(workdir, "discover_strips")

  def write_strips(state, step):
    directions = sharding.replicate(directions_of(graphdef, state, fixed),
                                    mesh)
    _write_strips(strip_folder, step, strip_fn, gen_params, strip_z,
                  directions, strip_shifts, cfg.strip_rows)

  window, window_steps = None, 0  # The metrics summed since the last log.

  def advance(state, step, count):
    del count  # One step per call.
    nonlocal window, window_steps
    state, metrics = train_step(state, fixed, gen_params, key_data, step)
    window = metrics if window is None else jax.tree.map(
        jnp.add, window, metrics)
    window_steps += 1
    return state

  def check_applied(state, done, checkpoints):
    del state
    if window is not None:
      _check_applied(sharding.fetch(window["skipped"]), done, window_steps,
                     checkpoints)

  def log(state, done):
    del state
    nonlocal window, window_steps
    means = {name: float(value) / window_steps
             for name, value in sharding.fetch(window).items()}
    writer.write_scalars(done, means)
    window, window_steps = None, 0

  writer = monitoring.MetricsWriter(workdir, "discover")
  try:
    state = training_loop.run(training_loop.Loop(
        stage="discover", total=cfg.steps, advance=advance,
        initial=lambda: state,
        actions=(training_loop.Every(cfg.log_every, log),
                 training_loop.Every(cfg.strip_every, write_strips,
                                     at_end=False)),
        checkpoint_dir=os.path.join(workdir, "checkpoints", "discover"),
        checkpoint_every=cfg.checkpoint_every,
        keep_checkpoints=cfg.keep_checkpoints,
        abstract=checkpointing.abstract_like(state, replicated),
        fits="config.directions", steps_field="config.directions.steps",
        check_finite=check_applied,
        progress_every_s=config.log.progress_every_s))
  finally:
    writer.close()
  write_strips(state, cfg.steps)
  return directions_of(graphdef, state, fixed)
