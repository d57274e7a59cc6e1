"""Kind 'stylegan2': StyleGAN2 config F (models/stylegan2.py).

Sources (config.generator.source), the file in config.generator.checkpoint:
  'pkl'         an NVlabs stylegan2-ada-pytorch / stylegan3 (StyleGAN2 config)
                network pickle, read by a restricted unpickler that runs no
                code from it (convert/stylegan2_pickle.py)
  'rosinality'  a rosinality stylegan2-pytorch .pt (convert/
                stylegan2_rosinality.py)
  'random'      fresh weights from config.seed: config.generator.resolution,
                z_dim (= w_dim), 8 mapping layers, ch channels at full
                resolution doubling per halving up to 4 ch (tests)
Latent spaces (config.generator.latent_space):
  'z'   directions move z; the network maps z -> w and truncates with
        psi = config.generator.truncation; SeFa reads the first mapping layer
  'w'   directions move w (one w for every layer, the paper's StyleGAN2
        space); latents are sampled as w = w_avg + psi (mapping(z) - w_avg);
        SeFa reads the style affine maps, as SeFa does for StyleGAN
  'w+'  directions move every layer's w separately ([num_ws * w_dim];
        config.generator.z_dim must be that); sampled as the same w repeated
Noise inputs (config.generator.noise_mode, NVlabs' noise_mode):
  'const'   the network's stored buffers (default), the same for every image;
  'random'  fresh N(0, 1) maps per image: the latent carries a trailing noise
            seed s (latent.draw), row maps drawn from jax.random.key(s)
            (models/stylegan2.make_generate with per-row keys); `shift` never
            moves s, so G(w) and G(w + h) share their noise;
  'none'    no noise.
In each, G(w) and G(w + h) differ by the shift only. StyleGAN2 has no output
tanh; make_generate clips images to [-1, 1] (as NVlabs' scripts clamp to 8
bits).
The 'pkl' reader also takes NVlabs' original TensorFlow StyleGAN2 pickles
(e.g. stylegan2-church-config-f.pkl), recognised by their content.
"""
import functools
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import stylegan2_pickle
from gansseg_jax.convert import stylegan2_rosinality
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.generators import readers
from gansseg_jax.models import stylegan2

MAPPING_LAYERS = 8  # Config F; of the 'random' source.


def _random_spec(config: ml_collections.ConfigDict) -> stylegan2.StyleGAN2Spec:
  g = config.generator
  try:
    return stylegan2.StyleGAN2Spec(
        resolution=g.resolution, z_dim=g.z_dim, w_dim=g.z_dim,
        mapping_layers=MAPPING_LAYERS, channel_base=g.ch * g.resolution,
        channel_max=4 * g.ch)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e


def w_prior(spec: stylegan2.StyleGAN2Spec, psi: float, latent_space: str,
            dtype: str = "float32", precision: str = "highest"):
  """prior(params, noise) = w_avg + psi (mapping(z) - w_avg), z = noise[:, :z_dim].

  In 'w+' that w is repeated for every layer and flattened [n, num_ws w_dim].
  dtype, precision: the generator's (stylegan2.make_mapping).
  """
  mapping = stylegan2.make_mapping(spec, dtype, precision)

  def prior(params, noise):
    w_avg = jnp.asarray(params["w_avg"])
    w = w_avg + psi * (mapping(params, noise[:, :spec.z_dim]) - w_avg)
    return w if latent_space == "w" else jnp.tile(w, (1, spec.num_ws))
  return prior


def w_plus_projection(spec: stylegan2.StyleGAN2Spec, params) -> np.ndarray:
  """SeFa's W in w+: each layer's style affine rows in its own w's columns.

  The block-diagonal counterpart of models/stylegan2.latent_projection:
  modulated layer i reads w_i, the last toRGB reads the last w.
  """
  rows = []
  layers, torgbs = params["layers"], params["torgbs"]
  reads = [(i, layers[i]) for i in sorted(layers)]
  reads.append((spec.num_ws - 1, torgbs[max(torgbs)]))
  for index, layer in reads:
    kernel = np.asarray(layer["affine"]["kernel"]).T  # [n_out, w_dim]
    block = np.zeros((kernel.shape[0], spec.num_ws * spec.w_dim), np.float32)
    block[:, index * spec.w_dim:(index + 1) * spec.w_dim] = kernel
    rows.append(block)
  return np.concatenate(rows)


def z_projection(params) -> np.ndarray:
  """The first mapping layer's kernel as rows [w_dim, z_dim] (SeFa in z)."""
  return np.asarray(params["mapping"]["layers"][0]["kernel"]).T


def build(spec: dict[str, Any], options: kinds.BuildOptions) -> latent.Network:
  spec = stylegan2.StyleGAN2Spec.from_dict(spec)
  if spec.latent_dim(options.latent_space) < spec.z_dim:
    raise ValueError(f"latent_space: {options.latent_space!r} is narrower "
                     f"than z ({spec.z_dim}); w_dim {spec.w_dim} < z_dim")
  generate = stylegan2.make_generate(spec, options.dtype, options.latent_space,
                                     truncation_psi=options.truncation,
                                     noise_mode=options.noise_mode,
                                     precision=options.matmul_precision)
  seeded = options.noise_mode == "random"
  return latent.Network(
      generate=latent.noise_seeded(generate) if seeded else generate,
      abstract_params=stylegan2.abstract_params(spec),
      resolution=spec.resolution,
      direction_dim=spec.latent_dim(options.latent_space),
      noise_seeded=seeded,
      prior=(None if options.latent_space == "z"
             else w_prior(spec, options.truncation, options.latent_space,
                          options.dtype, options.matmul_precision)),
      latent_projection={"z": z_projection, "w": stylegan2.latent_projection,
                         "w+": functools.partial(w_plus_projection, spec)}[
                             options.latent_space])


KIND = kinds.GeneratorKind(
    name="stylegan2", build=build, latent_spaces=("z", "w", "w+"),
    noise_modes=stylegan2.NOISE_MODES,
    sources={
        "pkl": kinds.Source(
            readers.checkpoint(lambda g: stylegan2_pickle.read_stylegan2_pickle(
                g.checkpoint)),
            "checkpoint", "an NVlabs network .pkl"),
        "rosinality": kinds.Source(
            readers.checkpoint(
                lambda g: stylegan2_rosinality.read_stylegan2_rosinality(
                    g.checkpoint)),
            "checkpoint", "a rosinality .pt"),
        "random": kinds.Source(readers.random(_random_spec,
                                              stylegan2.init_params))})
