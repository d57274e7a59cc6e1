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
from gansseg_jax.models import generator_api as api


def _random_spec(g: ml_collections.ConfigDict) -> biggan_deep.BigGANDeepSpec:
  try:
    return biggan_deep.BigGANDeepSpec(
        resolution=g.resolution, z_dim=g.z_dim, ch=g.ch,
        n_classes=g.num_classes, attention_resolution=g.attention_resolution,
        eps=g.bn_eps)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e


def convert(config: ml_collections.ConfigDict, workdir: str) -> api.Converted:
  del workdir
  g = config.generator
  if g.source == "tfhub":
    spec, params, record = biggan_deep_tfhub.convert_module(
        g.handle, config.convert.use_ema, config.convert.verify_batch)
    return api.Converted(spec.to_dict(), params,
                         {"handle": g.handle, **record})
  if g.source == "torch":
    spec, params = biggan_torch.read_pretrained_biggan(g.checkpoint)
    return api.Converted(spec.to_dict(), params,
                         {"checkpoint": g.checkpoint, "verification": None})
  spec = _random_spec(g)
  return api.Converted(spec.to_dict(),
                       biggan_deep.init_params(spec, config.seed),
                       {"seed": config.seed})


def build(spec: dict[str, Any], options: api.BuildOptions) -> api.Network:
  spec = biggan_deep.BigGANDeepSpec.from_dict(spec)
  return api.Network(
      generate=api.class_conditional(
          biggan_deep.make_generate(spec, options.dtype, options.truncation,
                                    options.matmul_precision),
          spec.z_dim, spec.n_classes),
      abstract_params=biggan_deep.abstract_params(spec),
      resolution=spec.resolution, direction_dim=spec.z_dim,
      num_classes=spec.n_classes, classes=options.classes,
      prior=imagenet_kind.truncated_prior(options.truncation),
      latent_projection=biggan_deep.latent_projection)


KIND = api.GeneratorKind(
    name="biggan_deep", sources=("tfhub", "torch", "random"),
    convert=convert, build=build, conditional=True,
    files={"torch": api.SourceFile(
        "checkpoint", "a pytorch-pretrained-biggan folder of pytorch_model.bin "
        "+ config.json, or its .bin", folder=True)})
