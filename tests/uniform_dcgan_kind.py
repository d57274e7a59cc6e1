"""A plug-in generator kind for the tests: a DCGAN whose latent is U(-1, 1)^d.

  --config.generator.arch=uniform_dcgan_kind:KIND --config.generator.source=random

The network is models/dcgan.py's (the PyTorch DCGAN tutorial's layers) with
random weights: kernels N(0, 1 / C_in) (about unit-variance activations
through batch norms with running mean 0 and variance 1; the tutorial's
0.02 would make flat images), batch norms with scale 1 and offset 0. The kind declares its own latent prior,
U(-1, 1) per coordinate, so every stage draws z from it and measures shift
lengths in its spread 1 / sqrt(3) (generator_interface/latent.py).
"""
import dataclasses

import numpy as np

from gansseg_jax.generators import dcgan as dcgan_kind
from gansseg_jax.models import dcgan
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent

PRIOR = latent.uniform_prior(1.0)


def random_params(spec: dcgan.DCGANSpec, seed: int) -> dict:
  """float32 weights of `spec`: kernels N(0, 1 / C_in), identity batch
  norms."""
  rng = np.random.default_rng(seed)
  shapes = dcgan.abstract_params(spec)
  convs = {i: {"kernel": rng.standard_normal(c["kernel"].shape)
                         / np.sqrt(c["kernel"].shape[2]),
               "bias": np.zeros(c["bias"].shape)}
           for i, c in shapes["convs"].items()}
  norms = {i: {"scale": np.ones(n["scale"].shape),
               "offset": np.zeros(n["offset"].shape),
               "mean": np.zeros(n["mean"].shape),
               "var": np.ones(n["var"].shape)}
           for i, n in shapes["norms"].items()}
  params = {"convs": convs, "norms": norms}
  return {k: {i: {n: a.astype(np.float32) for n, a in layer.items()}
              for i, layer in v.items()} for k, v in params.items()}


def convert(config, workdir: str) -> kinds.Converted:
  del workdir
  g = config.generator
  layers = int(np.log2(g.resolution // dcgan.BOTTOM))
  spec = dcgan.DCGANSpec(z_dim=g.z_dim,
                         widths=tuple(g.ch * 2 ** i
                                      for i in reversed(range(layers))))
  return kinds.Converted(spec.to_dict(), random_params(spec, config.seed),
                         {"source": "random", "seed": config.seed})


def build(spec: dict, options: kinds.BuildOptions) -> latent.Network:
  """The `dcgan` kind's network, declaring this kind's prior."""
  return dataclasses.replace(dcgan_kind.build(spec, options),
                             latent_prior=PRIOR)


KIND = kinds.GeneratorKind(name="uniform_dcgan", build=build,
                           sources={"random": kinds.Source(convert)})
