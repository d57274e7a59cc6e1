"""Kind 'biggan_imagenet': the class-conditional ImageNet BigGAN.

Sources (config.generator.source):
  'tfhub'   config.generator.handle: deepmind/biggan-{128,256,512}/2 (URL,
            folder or .tar.gz), verified against the module's own `default`
            signature (convert/biggan_tfhub.py; config.convert.use_ema,
            verify_batch); needs the `tf` extra
  'torch'   config.generator.checkpoint: a BigGAN-PyTorch `G*.pth` (ajbrock's
            networks or the TF-Hub ports; convert/biggan_torch.py), with
            config.generator.bn_eps / sn_eps (1e-4: the TF-Hub ports)
  'random'  fresh parameters from config.seed; the architecture from
            config.generator (resolution, z_dim, ch, shared_dim,
            attention_resolution, bn_eps, num_classes)
Latents: z (directions move z) and one class id per latent
(config.generator.classes). z is drawn as the TF-Hub modules and BigGAN-PyTorch
draw it: t * N(0, 1) truncated to [-2, 2], t = config.generator.truncation
(`truncated_prior`).
"""
from typing import Any, Callable

import jax.numpy as jnp
from jax.scipy import special
import ml_collections

from gansseg_jax.infra import errors
from gansseg_jax.convert import biggan_tfhub
from gansseg_jax.convert import biggan_torch
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.generators import readers
from gansseg_jax.models import imagenet_biggan


def truncated_prior(truncation: float) -> Callable:
  """prior(params, x) = t * Phi^-1(Phi(-2) + Phi(x) (Phi(2) - Phi(-2))).

  Maps x ~ N(0, 1) to t times N(0, 1) truncated to [-2, 2] (inverse-CDF
  sampling), so that every stage's N(0, I) draw becomes BigGAN's latent.
  """
  bound = imagenet_biggan.TRUNCATION_BOUND
  low, high = special.ndtr(-bound), special.ndtr(bound)

  def prior(params, noise):
    del params
    u = low + special.ndtr(noise) * (high - low)
    return truncation * jnp.clip(special.ndtri(u), -bound, bound)
  return prior


def _random_spec(config: ml_collections.ConfigDict
                 ) -> imagenet_biggan.ImageNetBigGANSpec:
  """The architecture of source 'random', from config.generator."""
  g = config.generator
  try:
    return imagenet_biggan.ImageNetBigGANSpec(
        resolution=g.resolution, z_dim=g.z_dim, ch=g.ch,
        shared_dim=g.shared_dim, n_classes=g.num_classes,
        attention_resolution=g.attention_resolution, bn_eps=g.bn_eps)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e


def build(spec: dict[str, Any], options: kinds.BuildOptions) -> latent.Network:
  spec = imagenet_biggan.ImageNetBigGANSpec.from_dict(spec)
  if not 0 < options.truncation <= 1:
    raise ValueError(f"truncation: {options.truncation} is not in (0, 1]")
  return latent.Network(
      generate=latent.class_conditional(
          imagenet_biggan.make_generate(spec, options.dtype,
                                        options.matmul_precision),
          spec.z_dim, spec.n_classes),
      abstract_params=imagenet_biggan.abstract_params(spec),
      resolution=spec.resolution, direction_dim=spec.z_dim,
      num_classes=spec.n_classes, classes=options.classes,
      prior=truncated_prior(options.truncation),
      latent_projection=imagenet_biggan.latent_projection)


KIND = kinds.GeneratorKind(
    name="biggan_imagenet", build=build, conditional=True,
    sources={
        "tfhub": kinds.Source(readers.tfhub(biggan_tfhub.convert_module),
                              "handle", "a deepmind/biggan-*/2 module",
                              kinds.TFHUB_MODULE),
        "torch": kinds.Source(
            readers.checkpoint(lambda g: biggan_torch.read_biggan_pytorch(
                g.checkpoint, bn_eps=g.bn_eps, sn_eps=g.sn_eps)),
            "checkpoint", "a BigGAN-PyTorch G_ema.pth / biggan-128.pth"),
        "random": kinds.Source(readers.random(_random_spec,
                                              imagenet_biggan.init_params))})
