"""A generator's latents: Network, latent priors and the arithmetic of
latents every stage shares (shift, draw, classes, noise seeds).

A stage sees one latent vector per image, [latent_dim] =
[direction_dim + condition_dim]: the first direction_dim coordinates are the
space directions live in (z, StyleGAN2's w, ...), then the trailing
condition coordinates (`Network.conditions`), each an integer-valued
float32: a class-conditional kind's class id, then, for a kind with random
noise inputs (StyleGAN2's noise_mode 'random'), a noise seed < 2**24 from
which the image's noise maps are drawn. Every site that moves a latent calls
`shift(latents, h)`, which pads h with zeros over the condition coordinates,
so G(z) and G(z + h) always share their class and noise and no direction
moves them. `draw` samples latents: noise from the network's latent
prior (`Network.latent_prior`, N(0, I) unless the kind or
config.generator.latent_prior says otherwise; or the stage's own sampler:
truncation, encoder embeddings), mapped by the kind's `prior` when it has
one (StyleGAN2 in W space: w = mapping(z)), then a class per latent drawn
uniformly from `Network.classes`, then a noise seed uniform in [0, 2**24).

Latent priors (`LatentPrior`, docs/generators.md "GANs whose latent is not
N(0, I)"): 'normal' N(0, I), 'uniform' U(-b, b)^d, 'truncated_normal'
N(0, 1) cut to [-b, b] per coordinate, or a plug-in's own. Each has a
spread, the standard deviation of one coordinate; shift lengths
(config.synth.shift_radius, config.score.shift_scale,
config.directions.max_shift) are multiples of it by default
(`shift_units` = 'spread'), so N(0, I) (spread 1) keeps its numbers.
"""
import dataclasses
import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from gansseg_jax.infra import errors

NOISE_SEEDS = 2**24  # Noise seeds are integers below this (exact in float32).

Params = Any
Sampler = Callable[[jax.Array, int], jax.Array]
LATENT_PRIORS = ("normal", "uniform", "truncated_normal")
SHIFT_UNITS = ("spread", "absolute")


@dataclasses.dataclass(frozen=True)
class LatentPrior:
  """The distribution a generator's latent z is drawn from.

  `sample(key, shape)` draws float32 noise of `shape`; `spread` is the
  standard deviation of one coordinate, the unit of shift lengths.
  """
  name: str  # Shown in logs and the report.
  spread: float
  sample: Callable[[jax.Array, tuple[int, ...]], jax.Array] = dataclasses.field(
      compare=False)


def normal_prior() -> LatentPrior:
  """z ~ N(0, I): spread 1 (the paper's BigBiGAN prior, and the default)."""
  return LatentPrior(
      "normal", 1.0,
      lambda key, shape: jax.random.normal(key, shape, jnp.float32))


def uniform_prior(bound: float) -> LatentPrior:
  """z ~ U(-b, b)^d: spread b / sqrt(3)."""
  return LatentPrior(
      f"uniform(-{bound:g}, {bound:g})", bound / math.sqrt(3.0),
      lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound,
                                            bound))


def truncated_normal_prior(bound: float) -> LatentPrior:
  """z_i ~ N(0, 1) cut to [-b, b]: spread sqrt(1 - 2 b phi(b) / (2 Phi(b) - 1)).

  The variance of a standard normal truncated to [-b, b] (phi, Phi: the
  standard normal density and distribution function).
  """
  density = math.exp(-0.5 * bound * bound) / math.sqrt(2.0 * math.pi)
  mass = math.erf(bound / math.sqrt(2.0))  # 2 Phi(b) - 1.
  return LatentPrior(
      f"truncated_normal(+-{bound:g})",
      math.sqrt(1.0 - 2.0 * bound * density / mass),
      lambda key, shape: jax.random.truncated_normal(key, -bound, bound, shape,
                                                     jnp.float32))


def named_prior(name: str, bound: float,
                field: str = "config.generator.latent_prior") -> LatentPrior:
  """The built-in prior `name` (LATENT_PRIORS) with bound b; UserError else."""
  if name not in LATENT_PRIORS:
    raise errors.UserError(f"{field}: {name!r} is not one of "
                           f"{', '.join(LATENT_PRIORS)} ('' = the kind's own)")
  if name == "normal":
    return normal_prior()
  if not (isinstance(bound, (int, float)) and 0 < bound < math.inf):
    raise errors.UserError(f"config.generator.latent_bound: must be finite and "
                           f"> 0 for the {name} prior, got {bound!r}")
  return (uniform_prior if name == "uniform"
          else truncated_normal_prior)(float(bound))


@dataclasses.dataclass(frozen=True)
class OwnPrior:
  """A sampler standing for the generator's own latent prior.

  `draw` given it as `base` draws from the network's `latent_prior`;
  called directly (no network at hand) it draws N(0, I) [n, dim].
  """
  dim: int

  def __call__(self, key: jax.Array, n: int) -> jax.Array:
    return jax.random.normal(key, (n, self.dim), jnp.float32)


def latent_spread(generate: Callable) -> float:
  """The spread of `generate`'s latent prior: 1 for a plain function."""
  return (generate.latent_prior.spread if isinstance(generate, Network)
          else 1.0)


def shift_length(length: float, units: str, generate: Callable,
                 field: str) -> float:
  """A configured shift length in latent units: x spread for 'spread'."""
  if units not in SHIFT_UNITS:
    raise errors.UserError(f"{field}: {units!r} is not one of "
                           f"{', '.join(SHIFT_UNITS)}")
  return length * latent_spread(generate) if units == "spread" else length


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
  """A generator as every stage after `convert` sees it.

  Hashable by identity, so it can be a static argument of jax.jit.
  """
  generate: Callable[[Params, jax.Array], jax.Array]  # latents -> images.
  abstract_params: Params  # ShapeDtypeStruct tree of the params.
  resolution: int  # Output side in pixels.
  direction_dim: int  # Leading latent coordinates that directions move.
  num_classes: int = 0  # > 0: one trailing class-id coordinate.
  classes: tuple[int, ...] = ()  # Ids drawn per latent (conditional only).
  noise_seeded: bool = False  # One trailing noise-seed coordinate, last.
  # prior(params, noise [n, direction_dim] ~ N(0, I)) -> [n, direction_dim].
  prior: Optional[Callable[[Params, jax.Array], jax.Array]] = None
  latent_projection: Optional[Callable[[Params], Any]] = None  # SeFa's W.
  # What z (the noise `prior` maps, when there is one) is drawn from.
  latent_prior: LatentPrior = dataclasses.field(default_factory=normal_prior)

  def __post_init__(self):
    if self.num_classes and not self.classes:
      object.__setattr__(self, "classes", tuple(range(self.num_classes)))
    bad = [c for c in self.classes if not 0 <= c < self.num_classes]
    if bad:
      raise ValueError(f"classes: {bad[0]} is not a class id of this "
                       f"generator (0..{self.num_classes - 1})")

  def __call__(self, params: Params, latents: jax.Array) -> jax.Array:
    """images float32 [B, H, W, 3] in [-1, 1] of latents [B, latent_dim]."""
    return self.generate(params, latents)

  @property
  def conditions(self) -> tuple[str, ...]:
    """Names of the trailing coordinates, in order ('class', 'noise_seed')."""
    return (("class",) * bool(self.num_classes)
            + ("noise_seed",) * self.noise_seeded)

  @property
  def condition_dim(self) -> int:
    return len(self.conditions)

  @property
  def latent_dim(self) -> int:
    return self.direction_dim + self.condition_dim


def shift(latents: jax.Array, h: jax.Array) -> jax.Array:
  """latents + h over the direction coordinates; conditions left alone.

  latents [..., latent_dim], h [..., d] with d <= latent_dim (broadcast).
  """
  pad = latents.shape[-1] - h.shape[-1]
  if pad < 0:
    raise ValueError(f"shift of width {h.shape[-1]} for latents of width "
                     f"{latents.shape[-1]}")
  if pad:
    h = jnp.pad(h, [(0, 0)] * (h.ndim - 1) + [(0, pad)])
  return latents + h


def draw(generate: Callable, params: Params, key: jax.Array,
         batch_shape: tuple[int, ...], dim: int,
         base: Optional[Sampler] = None) -> jax.Array:
  """Latents [*batch_shape, latent_dim] for `generate` (module docstring).

  Args:
    generate: a Network, or a plain generate(params, z) function (then the
      latents are the noise itself: z [*batch_shape, dim]).
    params: the generator's params (the prior may read them).
    key: PRNG key.
    batch_shape: leading shape of the result.
    dim: the latent width for a plain function (config.generator.z_dim).
    base: sample(key, n) -> noise [n, direction_dim]; None or an
      `OwnPrior`: the network's latent prior (N(0, I) for a plain function).
  """
  n = math.prod(batch_shape)
  network = generate if isinstance(generate, Network) else None
  if network is not None:
    dim = network.direction_dim
  conditional = network is not None and network.num_classes > 0
  seeded = network is not None and network.noise_seeded
  if seeded:
    key, seed_key = jax.random.split(key)
  if conditional:
    key, class_key = jax.random.split(key)
  if base is not None and not isinstance(base, OwnPrior):
    noise = base(key, n)
  elif network is not None:
    noise = network.latent_prior.sample(key, (n, dim))
  else:
    noise = jax.random.normal(key, (n, dim), jnp.float32)
  latents = noise
  if network is not None and network.prior is not None:
    latents = network.prior(params, noise)
  if conditional:
    classes = jnp.asarray(network.classes, jnp.float32)
    latents = jnp.concatenate(
        [latents, jax.random.choice(class_key, classes, (n, 1))], axis=-1)
  if seeded:
    seeds = jax.random.randint(seed_key, (n, 1), 0, NOISE_SEEDS)
    latents = jnp.concatenate([latents, seeds.astype(jnp.float32)], axis=-1)
  return latents.reshape(tuple(batch_shape) + (latents.shape[-1],))


def class_conditional(generate: Callable, direction_dim: int,
                      num_classes: int) -> Callable:
  """generate(params, latents) of a generate(params, z, y one-hot)."""
  def by_latents(params, latents):
    z, labels = split_latents(latents, direction_dim)
    return generate(params, z, jax.nn.one_hot(labels, num_classes,
                                              dtype=jnp.float32))
  return by_latents


def split_latents(latents: jax.Array, direction_dim: int
                  ) -> tuple[jax.Array, jax.Array]:
  """(direction part [..., d], class ids int32 [...]) of conditional latents."""
  return (latents[..., :direction_dim],
          jnp.round(latents[..., direction_dim]).astype(jnp.int32))


def noise_seeded(generate: Callable) -> Callable:
  """generate(params, latents) of a generate(params, rest, noise_key).

  The last latent coordinate is the noise seed s (`draw`); the wrapped
  function gets the other coordinates and one key per row,
  jax.random.key(s) [B], from which it draws that row's noise.
  """
  def by_latents(params, latents):
    rest, keys = split_noise_seeds(latents)
    return generate(params, rest, noise_key=keys)
  return by_latents


def split_noise_seeds(latents: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(latents less the last coordinate, keys jax.random.key(seed) [...])."""
  seeds = jnp.round(latents[..., -1]).astype(jnp.uint32)
  keys = jax.vmap(jax.random.key)(seeds.ravel()).reshape(seeds.shape)
  return latents[..., :-1], keys
