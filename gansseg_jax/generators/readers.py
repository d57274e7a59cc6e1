"""Source readers the built-in kinds share (generator_interface/kinds.Source).

Each returns read(config, workdir) -> Converted for a kind's source table:
  checkpoint(read)     config.generator.checkpoint read by read(g) ->
                       (spec, params); nothing to verify against
  tfhub(convert_module)  config.generator.handle, verified against the
                       module by convert_module(handle, use_ema, verify_batch)
                       -> (spec, params, record)
  random(spec_of, init_params)  fresh weights from config.seed for the spec
                       spec_of(config) describes
Each spec has to_dict(); W/generator/spec.json holds it.
"""
from typing import Any, Callable

import ml_collections

from gansseg_jax.generator_interface import kinds

Reader = Callable[[ml_collections.ConfigDict, str], kinds.Converted]


def checkpoint(read: Callable[[ml_collections.ConfigDict], tuple[Any, Any]]
               ) -> Reader:
  """The reader of a checkpoint file whose reader returns (spec, params)."""
  def convert(config: ml_collections.ConfigDict, workdir: str
              ) -> kinds.Converted:
    del workdir
    g = config.generator
    spec, params = read(g)
    return kinds.Converted(spec.to_dict(), params,
                           {"checkpoint": g.checkpoint, "verification": None})
  return convert


def tfhub(convert_module: Callable[[str, bool, int], tuple[Any, Any, dict]]
          ) -> Reader:
  """The reader of a TF-Hub module verified by `convert_module`."""
  def convert(config: ml_collections.ConfigDict, workdir: str
              ) -> kinds.Converted:
    del workdir
    handle = config.generator.handle
    spec, params, record = convert_module(
        handle, config.convert.use_ema, config.convert.verify_batch)
    return kinds.Converted(spec.to_dict(), params,
                           {"handle": handle, **record})
  return convert


def random(spec_of: Callable[[ml_collections.ConfigDict], Any],
           init_params: Callable[[Any, int], Any]) -> Reader:
  """Fresh weights init_params(spec, config.seed) of spec_of(config)."""
  def convert(config: ml_collections.ConfigDict, workdir: str
              ) -> kinds.Converted:
    del workdir
    spec = spec_of(config)
    return kinds.Converted(spec.to_dict(), init_params(spec, config.seed),
                           {"seed": config.seed})
  return convert
