"""A generator kind of your own: the worked example of docs/generators.md.

  python -m gansseg_jax.main --config=configs/test.py --workdir=runs/tiny \
    --config.generator.arch=examples.tiny_generator:KIND \
    --config.generator.source=random

A small class-conditional generator with a StyleGAN-like mapping network:
  w = leaky_relu(z W_map + b_map)                    (mapping, z -> w)
  x = reshape(w W_in + b_in + E[class], 4x4xC)       (E: class embedding)
  x = bilinear resize to R x R, then per-pixel RGB   (tanh -> [-1, 1])
Sources: 'random' (weights from config.seed, the architecture from
config.generator.z_dim, .resolution, .ch) and 'npz' (config.generator.
checkpoint: an .npz of ARRAYS and "resolution", the widths read from their
shapes). Latent spaces: 'z' (directions move z) and 'w' (directions move w;
latents are sampled as w = mapping(z)).
"""
import jax
import jax.numpy as jnp
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent

NUM_CLASSES = 4  # Of the 'random' source.
ARRAYS = ("map_kernel", "map_bias", "in_kernel", "in_bias", "class_embedding",
          "rgb_kernel", "rgb_bias")


def init_params(spec: dict, seed: int) -> dict:
  """Random float32 weights (fan-in scaled) for `spec`."""
  rng = np.random.default_rng(seed)
  z, c, k = spec["z_dim"], spec["channels"], spec["num_classes"]

  def normal(*shape):
    return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
  return {"map_kernel": normal(z, z), "map_bias": np.zeros(z, np.float32),
          "in_kernel": normal(z, 16 * c),
          "in_bias": np.zeros(16 * c, np.float32),
          "class_embedding": normal(k, 16 * c),
          "rgb_kernel": normal(c, 3), "rgb_bias": np.zeros(3, np.float32)}


def mapping(params: dict, z: jax.Array) -> jax.Array:
  """w = leaky_relu(z W_map + b_map), [B, z_dim] -> [B, z_dim]."""
  return jax.nn.leaky_relu(z @ params["map_kernel"] + params["map_bias"], 0.2)


def make_generate(spec: dict, latent_space: str):
  """generate(params, latents [B, z_dim + 1]) -> images [B, R, R, 3]."""
  side, width = spec["resolution"], spec["channels"]

  def generate(params, latents):
    codes, labels = latent.split_latents(latents, spec["z_dim"])
    w = mapping(params, codes) if latent_space == "z" else codes
    x = (w @ params["in_kernel"] + params["in_bias"]
         + params["class_embedding"][labels])
    x = jax.nn.relu(x.reshape(-1, 4, 4, width))
    x = jax.image.resize(x, (x.shape[0], side, side, width), "bilinear")
    return jnp.tanh(x @ params["rgb_kernel"] + params["rgb_bias"])
  return generate


def read_npz(config, workdir: str) -> kinds.Converted:
  """Source 'npz': config.generator.checkpoint (the stage has checked that
  the file exists); UserError names what is wrong with it."""
  del workdir  # Writes nothing besides W/generator (the stage does that).
  path = config.generator.checkpoint
  try:
    with np.load(path, allow_pickle=False) as f:
      params = {name: np.asarray(f[name], np.float32) for name in ARRAYS}
      side = int(f["resolution"])
  except (KeyError, ValueError, OSError) as e:
    raise errors.UserError(f"{path}: not a tiny generator checkpoint "
                           f"({e})") from e
  z_dim, in_width = params["in_kernel"].shape
  spec = {"z_dim": z_dim, "channels": in_width // 16, "resolution": side,
          "num_classes": params["class_embedding"].shape[0]}
  return kinds.Converted(spec, params, {"checkpoint": path})


def random_weights(config, workdir: str) -> kinds.Converted:
  """Source 'random': the architecture from config.generator."""
  del workdir
  g = config.generator
  spec = {"z_dim": g.z_dim, "channels": g.ch, "resolution": g.resolution,
          "num_classes": NUM_CLASSES}
  return kinds.Converted(spec, init_params(spec, config.seed),
                         {"seed": config.seed})


def build(spec: dict, options: kinds.BuildOptions) -> latent.Network:
  if options.dtype != "float32":
    raise ValueError(f"dtype: {options.dtype!r}; this generator has float32 "
                     "only")
  like = jax.eval_shape(lambda: init_params(spec, 0))
  in_space = options.latent_space == "w"
  return latent.Network(
      generate=make_generate(spec, options.latent_space),
      abstract_params=like, resolution=spec["resolution"],
      direction_dim=spec["z_dim"], num_classes=spec["num_classes"],
      classes=options.classes,
      prior=mapping if in_space else None,
      # SeFa: the first linear map that reads the directions' space.
      latent_projection=lambda params: np.asarray(
          params["in_kernel" if in_space else "map_kernel"]).T)


KIND = kinds.GeneratorKind(
    name="tiny_generator", build=build, latent_spaces=("z", "w"),
    conditional=True,
    sources={"random": kinds.Source(random_weights),
             "npz": kinds.Source(read_npz, "checkpoint",
                                 "an .npz of the tiny generator's weights")})
