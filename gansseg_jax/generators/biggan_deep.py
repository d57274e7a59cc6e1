"""Kind 'biggan_deep': BigGAN-deep (class-conditional, ImageNet).

Sources (config.generator.source):
  'tfhub'   config.generator.handle: deepmind/biggan-deep-{128,256,512}/1
            (URL, folder or .tar.gz), its BN statistics read from the module's
            graph and the result verified against its own `default` signature
            (convert/biggan_deep_tfhub.py; config.convert.use_ema,
            verify_batch); needs the `tf` extra
  'torch'   config.generator.checkpoint: a pytorch-pretrained-biggan model
            (the folder of pytorch_model.bin + config.json, or the .bin with
            config.json beside it; convert/biggan_torch.py)
  'random'  fresh parameters from config.seed; the architecture from
            config.generator (resolution, z_dim, ch, attention_resolution,
            bn_eps, num_classes)
Latents: z (directions move z) and one class id per latent
(config.generator.classes); z = t * N(0, 1) truncated to [-2, 2] with
t = config.generator.truncation, which also picks the BN statistics.
"""
from typing import Any

import ml_collections

from gansseg_jax.infra import errors
from gansseg_jax.convert import biggan_deep_tfhub
from gansseg_jax.convert import biggan_torch
from gansseg_jax.generators import imagenet_biggan as imagenet_kind
from gansseg_jax.models import biggan_deep
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.generators import readers


def _random_spec(config: ml_collections.ConfigDict
                 ) -> biggan_deep.BigGANDeepSpec:
  """The architecture of source 'random', from config.generator."""
  g = config.generator
  try:
    return biggan_deep.BigGANDeepSpec(
        resolution=g.resolution, z_dim=g.z_dim, ch=g.ch,
        n_classes=g.num_classes, attention_resolution=g.attention_resolution,
        eps=g.bn_eps)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e


def build(spec: dict[str, Any], options: kinds.BuildOptions) -> latent.Network:
  spec = biggan_deep.BigGANDeepSpec.from_dict(spec)
  return latent.Network(
      generate=latent.class_conditional(
          biggan_deep.make_generate(spec, options.dtype, options.truncation,
                                    options.matmul_precision),
          spec.z_dim, spec.n_classes),
      abstract_params=biggan_deep.abstract_params(spec),
      resolution=spec.resolution, direction_dim=spec.z_dim,
      num_classes=spec.n_classes, classes=options.classes,
      prior=imagenet_kind.truncated_prior(options.truncation),
      latent_projection=biggan_deep.latent_projection)


KIND = kinds.GeneratorKind(
    name="biggan_deep", build=build, conditional=True,
    sources={
        "tfhub": kinds.Source(readers.tfhub(biggan_deep_tfhub.convert_module),
                              "handle", "a deepmind/biggan-deep-*/1 module",
                              kinds.TFHUB_MODULE),
        "torch": kinds.Source(
            readers.checkpoint(lambda g: biggan_torch.read_pretrained_biggan(
                g.checkpoint)),
            "checkpoint", "a pytorch-pretrained-biggan folder of "
            "pytorch_model.bin + config.json, or its .bin",
            kinds.FILE_OR_FOLDER),
        "random": kinds.Source(readers.random(_random_spec,
                                              biggan_deep.init_params))})
