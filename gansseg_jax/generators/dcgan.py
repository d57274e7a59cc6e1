"""Kind 'dcgan': a PyTorch DCGAN-tutorial generator (models/dcgan.py).

Source 'torch' only: config.generator.checkpoint is a torch.save file
(.pt, .pth, .tar, ...) or a wheel that holds one (e.g. the PyPI package
gan-face-generate's); its generator state dict, at the top level or nested
under any key, is found and read by convert/dcgan_torch.py with numpy only.
nz, widths, channels and resolution come from the tensors' shapes;
config.generator.output_activation says whether the last layer is followed
by 'tanh' (the tutorial's) or 'sigmoid' (no tensor tells).
Latents: z ~ N(0, I) of size nz (torch's z is [N, nz, 1, 1]), the
tutorial's prior, declared by `build` (config.generator.latent_prior
overrides it for a DCGAN trained on another); directions move z. SeFa reads
the first layer (models/dcgan.latent_projection).

Verification: the images of VERIFY_LATENTS latents must be finite. The
record also gives, per batch-norm layer, how far the stored running
statistics are from the statistics that layer's input has over those
latents (in units of the running standard deviation): a converged generator
converted the right way has them close (around 0.1 or below), so a large
value flags a checkpoint whose statistics or layer pattern differ from what
was assumed; it is logged, not refused (random weights have any statistics).
"""
import functools
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import dcgan_torch
from gansseg_jax.models import dcgan
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent

VERIFY_LATENTS = 64
VERIFY_SEED = 0


def _statistics_gap(spec: dcgan.DCGANSpec, params: dict[str, Any],
                    z: np.ndarray) -> tuple[list[float], bool]:
  """(per BN layer: mean over channels of |batch mean - running mean| /
  sqrt(running var + eps), images finite) over latents z."""
  out, norm_inputs = jax.jit(functools.partial(dcgan.forward, spec))(
      params, jnp.asarray(z))
  gaps = []
  for x, norm in zip(norm_inputs, (params["norms"][i]
                                   for i in range(len(spec.widths)))):
    mean = np.asarray(jnp.mean(x, axis=(0, 1, 2)))
    std = np.sqrt(norm["var"] + dcgan.BN_EPS)
    gaps.append(float(np.mean(np.abs(mean - norm["mean"]) / std)))
  return gaps, bool(jnp.all(jnp.isfinite(out)))


def convert(config: ml_collections.ConfigDict, workdir: str) -> kinds.Converted:
  """Source 'torch': config.generator.checkpoint, verified (module doc)."""
  del workdir
  g = config.generator
  if not g.checkpoint:
    raise errors.UserError(
        "config.generator.checkpoint: empty; the 'dcgan' kind reads a torch "
        "file (.pt, .pth, .tar) or a wheel holding one (docs/generators.md)")
  try:
    spec, params, where = dcgan_torch.read_dcgan(g.checkpoint,
                                                 g.output_activation)
  except ValueError as e:  # A bad output_activation (DCGANSpec).
    raise errors.UserError(f"config.generator.{e}") from e
  z = np.random.default_rng(VERIFY_SEED).standard_normal(
      (VERIFY_LATENTS, spec.z_dim)).astype(np.float32)
  gaps, finite = _statistics_gap(spec, params, z)
  if not finite:
    raise errors.UserError(f"{g.checkpoint}: {where}: the generator makes "
                           "non-finite images")
  logging.info("DCGAN %s: nz %d, widths %s, %d px, %d channels; running vs "
               "observed BN means (in running stds): %s", where, spec.z_dim,
               spec.widths, spec.resolution, spec.out_channels,
               ", ".join(f"{gap:.3f}" for gap in gaps))
  return kinds.Converted(spec.to_dict(), params, {
      "checkpoint": g.checkpoint, "state_dict": where,
      "verification": {"latents": VERIFY_LATENTS, "finite": True,
                       "bn_mean_gap": gaps}})


def build(spec: dict[str, Any], options: kinds.BuildOptions) -> latent.Network:
  spec = dcgan.DCGANSpec.from_dict(spec)
  return latent.Network(
      generate=dcgan.make_generate(spec, options.dtype,
                                   options.matmul_precision),
      abstract_params=dcgan.abstract_params(spec),
      resolution=spec.resolution, direction_dim=spec.z_dim,
      latent_projection=dcgan.latent_projection,
      latent_prior=latent.normal_prior())


KIND = kinds.GeneratorKind(
    name="dcgan", build=build,
    sources={"torch": kinds.Source(
        convert, "checkpoint", "a torch DCGAN generator .pt/.pth/.tar, or a "
        "wheel holding one")})
