"""PRNG keys of the stages: the root seed with a name folded in.

Every random draw of a run is a function of (config.seed, a name, a step
or index), so a stage, a resumed run or a hold-out set draws the same
numbers whatever ran before it.
"""
import zlib

import jax


def stage_key(seed: int, name: str, impl: str = "threefry2x32") -> jax.Array:
  """key(seed) with CRC-32(name) folded in (the top bit cleared)."""
  return jax.random.fold_in(jax.random.key(seed, impl=impl),
                            zlib.crc32(name.encode()) & 0x7FFFFFFF)
