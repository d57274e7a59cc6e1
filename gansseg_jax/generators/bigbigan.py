"""Kind 'biggan': BigBiGAN's generator (BigGAN-128 with hierarchical z).

Sources (config.generator.source):
  'tfhub'   hub.load(handle, tags=[]); every generator variable mapped by the
            explicit table in convert/bigbigan_names.py or on its unused list;
            the interpretation of BN statistics (raw or / accumulation_counter)
            and of SN's normalize ('max' or 'add') is the one whose output
            matches the module's `generate` within config.convert.tolerance
            ('auto'), or the configured one. Also writes W/encoder when
            config.convert.encoder and the encoder verifies against the
            module's `encode` (removed when a re-run cannot verify it).
  'torch'   the authors' BigBiGAN_x1.pth (BigGAN-PyTorch keys), read with numpy
  'random'  fresh parameters from config.seed (tests, tiny configs)
The architecture comes from config.generator (resolution, z_dim, ch, ...);
the network is unconditional, in z space, with SeFa's projection
models/biggan.latent_projection.
"""
import itertools
import os
import shutil
from typing import Any, Optional

from absl import logging
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import encoder_map
from gansseg_jax.convert import load
from gansseg_jax.convert import spectral_norm
from gansseg_jax.convert import tfhub
from gansseg_jax.convert import torch_checkpoint
from gansseg_jax.models import biggan
from gansseg_jax.models import encoder
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.generators import readers

# Outputs of the module's `encode` compared with the converted encoder's.
ENCODER_OUTPUTS = ("avepool_feat", "z_mean", "z_stdev")
# The config.generator field of source 'torch': the authors' checkpoint, read
# with numpy (no torch needed).
TORCH_FIELD = "torch_checkpoint"


def generator_spec(config: ml_collections.ConfigDict) -> biggan.BigGANSpec:
  """BigGANSpec from config.generator; UserError names a bad field."""
  g = config.generator
  try:
    return biggan.BigGANSpec(
        resolution=g.resolution, z_dim=g.z_dim, ch=g.ch,
        shared_dim=g.shared_dim, attention_resolution=g.attention_resolution,
        bn_eps=g.bn_eps)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e


def _choices(config: ml_collections.ConfigDict, field: str,
             modes: tuple[str, ...]) -> list[str]:
  value = config.convert[field]
  if value == "auto":
    return list(modes)
  if value not in modes:
    raise errors.UserError(f"config.convert.{field}: {value!r} is not one of "
                           f"{modes + ('auto',)}")
  return [value]


def _verify_batch(config) -> int:
  if config.convert.verify_batch < 1:
    raise errors.UserError("config.convert.verify_batch: must be >= 1")
  return config.convert.verify_batch


def _reference_images(module, z: np.ndarray) -> np.ndarray:
  if not tfhub.has_signature(module, "generate"):
    raise errors.UserError(
        "config.convert.verify: the module has no 'generate' signature; set "
        "config.convert.verify=False and choose config.convert.bn_stats and "
        "config.convert.sn_normalize explicitly")
  outputs = tfhub.run_signature(module, "generate", z)
  return outputs["default"] if "default" in outputs else next(
      iter(outputs.values()))


def _generator_from_tfhub(config, module, values: dict[str, np.ndarray],
                          spec: biggan.BigGANSpec) -> tuple[Any, dict]:
  """(params, record) of the generator; verified when config says so."""
  use_ema = config.convert.use_ema
  counts = bigbigan_names.counters(spec, values)
  logging.info("BN accumulation_counter over %d layers: min %g, max %g",
               len(counts), min(counts.values()), max(counts.values()))
  bn_modes = _choices(config, "bn_stats", bigbigan_names.BN_STATS_MODES)
  if min(counts.values()) <= 0 and "divide" in bn_modes and len(bn_modes) > 1:
    bn_modes.remove("divide")
  if set(counts.values()) == {1.0} and len(bn_modes) > 1:
    bn_modes = ["raw"]  # Dividing by 1 changes nothing.
  sn_modes = _choices(config, "sn_normalize", spectral_norm.NORMALIZE_MODES)
  candidates = list(itertools.product(bn_modes, sn_modes))

  def assemble(bn_mode, sn_mode):
    return bigbigan_names.assemble(spec, values, use_ema=use_ema,
                                   bn_stats=bn_mode, sn_mode=sn_mode,
                                   sn_eps=config.generator.sn_eps)

  record = {"use_ema": use_ema, "counters": {"min": min(counts.values()),
                                             "max": max(counts.values())}}
  if not config.convert.verify:
    if len(candidates) > 1:
      raise errors.UserError(
          "config.convert.bn_stats / sn_normalize: 'auto' picks by comparing "
          "with the module's `generate`, which config.convert.verify=False "
          "turns off; choose them explicitly")
    (bn_mode, sn_mode), = candidates
    logging.warning("Generator not verified (config.convert.verify=False)")
    return assemble(bn_mode, sn_mode), {**record, "bn_stats": bn_mode,
                                        "sn_normalize": sn_mode,
                                        "verification": None}

  rng = np.random.default_rng(config.seed)
  z = rng.standard_normal((_verify_batch(config), spec.z_dim)).astype(
      np.float32)
  reference = _reference_images(module, z)
  generate = jax.jit(biggan.make_generate(spec, "float32"))
  tried = []
  for bn_mode, sn_mode in candidates:
    params = assemble(bn_mode, sn_mode)
    diff = float(np.max(np.abs(np.asarray(generate(params, z)) - reference)))
    logging.info("generate vs module (bn_stats=%s, sn_normalize=%s): max "
                 "|diff| = %.3g", bn_mode, sn_mode, diff)
    tried.append({"bn_stats": bn_mode, "sn_normalize": sn_mode,
                  "max_abs_diff": diff})
    if diff <= config.convert.tolerance:
      return params, {**record, "bn_stats": bn_mode, "sn_normalize": sn_mode,
                      "verification": tried}
  best = min(tried, key=lambda t: t["max_abs_diff"])
  raise errors.UserError(
      f"config.convert.tolerance: the converted generator differs from "
      f"{config.generator.handle}'s `generate` by {best['max_abs_diff']:.3g} "
      f"> {config.convert.tolerance} at best (tried {tried}); nothing written")


def _encoder_from_tfhub(config, module, values: dict[str, np.ndarray],
                        sn_mode: str) -> tuple[Optional[tuple], str]:
  """((spec, params) or None, what happened); never raises for a misfit."""
  if not values:
    return None, "the module has no encoder variables"
  if not config.convert.verify:
    return None, ("not converted: config.convert.verify=False, and the "
                  "encoder is only written once verified")
  if not tfhub.has_signature(module, "encode"):
    return None, "not converted: the module has no 'encode' signature"
  bn_modes = (_choices(config, "bn_stats", bigbigan_names.BN_STATS_MODES)
              if encoder_map.has_counters(values) else ["raw"])
  size = config.embed.image_size
  rng = np.random.default_rng(config.seed + 1)
  images = rng.uniform(-1, 1, (_verify_batch(config), size, size, 3)).astype(
      np.float32)
  reference = tfhub.run_signature(module, "encode", images)
  notes = []
  for bn_mode in bn_modes:
    try:
      spec, params = encoder_map.convert(
          values, use_ema=config.convert.use_ema,
          bn_eps=config.convert.encoder_bn_eps, bn_stats=bn_mode,
          sn_mode=sn_mode, sn_eps=config.generator.sn_eps)
    except encoder_map.MappingError as e:
      return None, f"not converted: cannot map by structure ({e})"
    outputs = jax.jit(encoder.make_encode(spec))(params, images)
    compared = [k for k in ENCODER_OUTPUTS if k in reference]
    if not compared:
      return None, ("not converted: `encode` has none of the outputs "
                    f"{ENCODER_OUTPUTS}")
    diffs = {k: float(np.max(np.abs(np.asarray(outputs[k]) - reference[k])))
             for k in compared}
    logging.info("encode vs module (%s, bn_stats=%s): %s", spec, bn_mode,
                 diffs)
    notes.append(f"bn_stats={bn_mode}: max |diff| {diffs}")
    if max(diffs.values()) <= config.convert.tolerance:
      return (spec, params), f"verified: {notes[-1]}"
  return None, ("not converted: mapped by structure but outputs differ from "
                f"`encode` ({'; '.join(notes)})")


def _from_tfhub(config, workdir: str) -> kinds.Converted:
  spec = generator_spec(config)
  handle = config.generator.handle
  where = f"config.generator.handle ({handle})"
  with tfhub.opened(handle) as module:
    values = tfhub.read_variables(module)
    generator_names, encoder_names, unused = tfhub.split_scopes(values, where)
    generator_values = {rel: values[full]
                        for rel, full in generator_names.items()}
    unused.update({generator_names[rel]: reason
                   for rel, reason in bigbigan_names.check(
                       spec, {k: v.shape for k, v in generator_values.items()},
                       config.convert.use_ema, where).items()})
    params, record = _generator_from_tfhub(config, module, generator_values,
                                           spec)
    encoder_values = {rel: values[full] for rel, full in encoder_names.items()}
    if config.convert.encoder:
      converted, note = _encoder_from_tfhub(config, module, encoder_values,
                                            record["sn_normalize"])
    else:
      converted, note = None, "not converted: config.convert.encoder=False"
      unused.update({full: "encoder (config.convert.encoder=False)"
                     for full in encoder_names.values()})
  logging.info("Encoder: %s", note)
  logging.info("Unused module variables: %d (%s)", len(unused),
               "; ".join(f"{k}: {v}" for k, v in sorted(unused.items())[:5]))
  encoder_path = os.path.join(workdir, load.ENCODER_DIR)
  if converted is not None:
    encoder_spec, encoder_params = converted
    load.save(encoder_path, {"arch": "bigbigan_encoder",
                             "spec": encoder_spec.to_dict(),
                             "source": "tfhub", "handle": handle,
                             "verification": note}, encoder_params)
  elif os.path.exists(encoder_path):
    logging.warning("Removing %s: this conversion did not verify an encoder",
                    encoder_path)
    shutil.rmtree(encoder_path)
  record.update({"handle": handle, "encoder": note, "unused": unused})
  return kinds.Converted(spec.to_dict(), params, record)


def _from_torch(config, workdir: str) -> kinds.Converted:
  del workdir
  spec = generator_spec(config)
  path = config.generator[TORCH_FIELD]
  field = f"config.generator.{TORCH_FIELD}"
  where = f"{field} ({path})"
  state = torch_checkpoint.read_state_dict(path, field)
  params, unused = torch_checkpoint.convert(spec, state,
                                            config.generator.sn_eps, where)
  logging.warning("Generator from %s: no reference forward pass to verify "
                  "against (config.convert.verify does not apply)", path)
  return kinds.Converted(spec.to_dict(), params,
                         {"checkpoint": path, "unused": unused,
                          "verification": None})


def build(spec: dict[str, Any], options: kinds.BuildOptions) -> latent.Network:
  biggan_spec = biggan.BigGANSpec.from_dict(spec)
  return latent.Network(
      generate=biggan.make_generate(biggan_spec, options.dtype,
                                    options.matmul_precision),
      abstract_params=biggan.abstract_params(biggan_spec),
      resolution=biggan_spec.resolution, direction_dim=biggan_spec.z_dim,
      latent_projection=biggan.latent_projection)


KIND = kinds.GeneratorKind(
    name="biggan", build=build,
    sources={"tfhub": kinds.Source(_from_tfhub, "handle", "a BigBiGAN module",
                                   kinds.TFHUB_MODULE),
             "torch": kinds.Source(_from_torch, TORCH_FIELD,
                                   "the authors' BigBiGAN_x1.pth"),
             "random": kinds.Source(readers.random(generator_spec,
                                                   biggan.init_params))})
