"""Kind 'builtin' (also 'demo'): the demo DCGAN shipped in the package.

Source 'builtin' only: the weights and info.json of
gansseg_jax/assets/demo_generator (models/demo_gan.load_builtin). The spec is
that info.json; its "model" has z_dim, resolution and the layer widths. The
network is unconditional, in z space, with SeFa's projection
models/demo_gan.latent_projection. Its activations are float32 whatever
config.generator.dtype says (it is small).
"""
import importlib
from typing import Any

import jax
import ml_collections

from gansseg_jax.infra import errors
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent

MODULE = "gansseg_jax.models.demo_gan"


def import_demo_gan():
  """gansseg_jax.models.demo_gan, or a UserError when it is not installed."""
  try:
    return importlib.import_module(MODULE)
  except ModuleNotFoundError as e:
    if e.name != MODULE:
      raise
    raise errors.UserError(
        "config.generator.source: 'builtin' needs the demo generator "
        f"({MODULE}), which this install does not have") from e


def convert(config: ml_collections.ConfigDict, workdir: str) -> kinds.Converted:
  """Source 'builtin': the shipped weights."""
  del config, workdir  # The shipped weights need nothing else.
  _, params, info = import_demo_gan().load_builtin()
  if not isinstance(info, dict):
    raise RuntimeError("demo_gan.load_builtin() must return an info dict")
  return kinds.Converted(info, params, {})


def build(spec: dict[str, Any], options: kinds.BuildOptions) -> latent.Network:
  del options  # float32 only, z only.
  demo_gan = import_demo_gan()
  model = spec["model"]
  graphdef, template = demo_gan.abstract_generator(model)
  return latent.Network(
      generate=demo_gan.make_generate(graphdef),
      abstract_params=jax.eval_shape(lambda tree: tree, template),
      resolution=model["resolution"], direction_dim=model["z_dim"],
      latent_projection=demo_gan.latent_projection)


KIND = kinds.GeneratorKind(name="builtin", build=build,
                           sources={"builtin": kinds.Source(convert)})
