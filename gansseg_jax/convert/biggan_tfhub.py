"""TF-Hub deepmind/biggan-{128,256,512}/2 -> ImageNet BigGAN Flax params.

The variables by name (as BigGAN-PyTorch's TFHub/converter.py reads them; a
`module/` prefix, which hub.Module adds and hub.load does not, is dropped):

  linear/w                                  [n_classes, shared]  class embedding
  Generator/G_Z/G_linear/{w,b,u0}           [chunk, 16 C0]  z chunk 0 -> 4x4xC0
  Generator/GBlock{,_1,..}/HyperBN{,_1}/{gamma,beta}/{w,u0}  [chunk+shared, C]
  Generator/GBlock{,_1,..}/CrossReplicaBN{,_1}/accumulated_{mean,var},
      accumulation_counter
  Generator/GBlock{,_1,..}/{conv0,conv1,conv_sc}/{w,b,u0}
  Generator/attention/{theta,phi,g,o_conv}/{w,u0}, Generator/attention/gamma
  Generator/ScaledCrossReplicaBN/{gamma,beta}
  Generator/ScaledCrossReplicaBNbn/accumulated_{mean,var}, accumulation_counter
  Generator/conv_2d/{w,b,u0}
  every w, b, gamma, beta also as <name>/ema_b999900; u1 unused

The HyperBN input is [z chunk, class embedding] and the first layer's output
is NHWC, as in the Flax module. Two readings are not fixed by the names (the
same two as BigBiGAN's, see gansseg_jax/convert/bigbigan_names.py): the SN
normalize form and whether the accumulated statistics are divided by the
counter. `read_tfhub_biggan` tries each and keeps the one whose images match
the module's own `default` signature (inputs z, y, truncation).
"""
import itertools
from typing import Any, Mapping, Optional

from absl import logging
import jax
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import spectral_norm
from gansseg_jax.convert import tfhub
from gansseg_jax.models import biggan
from gansseg_jax.models import imagenet_biggan

EMA_SUFFIX = "ema_b999900"
# Shared by the TF-Hub BigGAN modules (biggan-*/2) and BigGAN-deep modules
# (biggan-deep-*/1, convert/biggan_deep_tfhub.py).
TFHUB_EPS = 1e-4  # Batch-norm and spectral-norm epsilon of the modules.
VERIFY_TOLERANCE = 1e-4  # Max abs image difference to accept a reading.
UNUSED_VARIABLES = (
    (lambda n: n.endswith("/u1"),
     "second stored power-iteration vector; inference starts from u0"),
    (lambda n: n == "global_step", "training bookkeeping"))

SNWeight = bigbigan_names.SNWeight
BNStats = bigbigan_names.BNStats
Plain = bigbigan_names.Plain


def layout(spec: imagenet_biggan.ImageNetBigGANSpec) -> list[Any]:
  """Every TF layer of the module with its Flax destination."""
  b = spec.backbone
  first = b.block_channels[0][0]
  entries: list[Any] = [
      Plain("linear/w", ("shared",), (spec.n_classes, spec.shared_dim),
            (spec.n_classes, spec.shared_dim)),
      SNWeight("Generator/G_Z/G_linear", ("z_linear", "kernel"),
               (b.chunk_size, biggan.BOTTOM_WIDTH ** 2 * first), True),
  ]
  for i, (cin, cout) in enumerate(b.block_channels):
    scope = bigbigan_names.block_scope(i)
    for suffix, dest, channels in (("", "bn0", cin), ("_1", "bn1", cout)):
      entries += [
          SNWeight(f"{scope}/HyperBN{suffix}/gamma",
                   ("blocks", i, dest, "gamma_kernel"),
                   (b.cond_dim, channels), False),
          SNWeight(f"{scope}/HyperBN{suffix}/beta",
                   ("blocks", i, dest, "beta_kernel"),
                   (b.cond_dim, channels), False),
          BNStats(f"{scope}/CrossReplicaBN{suffix}", ("blocks", i, dest),
                  channels),
      ]
    entries += bigbigan_names.block_convolutions(scope, i, cin, cout)
  if b.attention_block >= 0:
    entries += bigbigan_names.attention(b.attention_channels)
  last = b.block_channels[-1][1]
  entries += [
      Plain("Generator/ScaledCrossReplicaBN/gamma", ("out_bn", "scale"),
            (last,), (last,)),
      Plain("Generator/ScaledCrossReplicaBN/beta", ("out_bn", "offset"),
            (last,), (last,)),
      BNStats("Generator/ScaledCrossReplicaBNbn", ("out_bn",), last),
      SNWeight("Generator/conv_2d", ("out_conv", "kernel"), (3, 3, last, 3),
               True),
  ]
  return entries


def expected_variables(spec: imagenet_biggan.ImageNetBigGANSpec,
                       use_ema: bool) -> tuple[dict[str, tuple],
                                               dict[str, str]]:
  """(required {name: shape}, {known alternative copy: why it is unused})."""
  return bigbigan_names.variables_of(layout(spec), use_ema, EMA_SUFFIX)


def check(spec: imagenet_biggan.ImageNetBigGANSpec,
          shapes: Mapping[str, tuple], use_ema: bool, where: str
          ) -> dict[str, str]:
  """UserError on a missing, misshapen or unknown variable; {unused: why}."""
  required, alternatives = expected_variables(spec, use_ema)
  return check_against(required, alternatives, UNUSED_VARIABLES, shapes, where,
                       str(spec))


def check_against(required: Mapping[str, tuple],
                  alternatives: Mapping[str, str], unused_rules,
                  shapes: Mapping[str, tuple], where: str, what: str
                  ) -> dict[str, str]:
  """UserError naming the first missing, misshapen or unknown variable of a
  module (`what` is the architecture in messages); {unused name: why}: the
  known alternatives and the names an (is_unused, why) rule accepts."""
  for name, shape in required.items():
    if name not in shapes:
      raise errors.UserError(f"{where}: variable {name} is missing (expected "
                             f"shape {list(shape)} for {what})")
    if not bigbigan_names.same_shape(shapes[name], shape):
      raise errors.UserError(f"{where}: variable {name} has shape "
                             f"{list(shapes[name])}, expected {list(shape)}")
  unused = {}
  for name in shapes:
    if name in required:
      continue
    reason = alternatives.get(name) or next(
        (why for match, why in unused_rules if match(name)), None)
    if reason is None:
      raise errors.UserError(f"{where}: variable {name} is not part of the "
                             "generator and not on the unused list")
    unused[name] = reason
  return unused


def assemble(spec: imagenet_biggan.ImageNetBigGANSpec,
             values: Mapping[str, np.ndarray], *, use_ema: bool,
             bn_stats: str, sn_mode: str, sn_eps: float = TFHUB_EPS
             ) -> dict[str, Any]:
  """Flax params from checked variables: W / sigma, BN statistics raw or
  divided by the accumulation counter ('divide')."""

  def read(name):
    return np.asarray(values[name], np.float32)

  params: dict[str, Any] = {}
  for entry in layout(spec):
    if isinstance(entry, BNStats):
      mean = read(f"{entry.scope}/accumulated_mean").reshape(-1)
      var = read(f"{entry.scope}/accumulated_var").reshape(-1)
      if bn_stats == "divide":
        count = float(read(f"{entry.scope}/accumulation_counter"))
        if count <= 0:
          return {}  # This reading cannot be the module's.
        mean, var = mean / count, var / count
      bigbigan_names.put(params, entry.dest + ("mean",), mean)
      bigbigan_names.put(params, entry.dest + ("var",), var)
    else:
      for path, leaf in bigbigan_names.weight_leaves(
          entry, values, use_ema=use_ema, ema_suffix=EMA_SUFFIX,
          sn_eps=sn_eps, sn_mode=sn_mode):
        bigbigan_names.put(params, path, leaf)
  return params


def spec_from_shapes(shapes: Mapping[str, tuple], where: str,
                     attention_resolution: Optional[int] = None
                     ) -> imagenet_biggan.ImageNetBigGANSpec:
  """The architecture the variables' shapes describe (eps 1e-4).

  The attention scope names no block: its side is the block output side
  whose width matches its kernels, the published one where several do, or
  `attention_resolution` when given.
  """
  try:
    n_classes, shared_dim = shapes["linear/w"]
    chunk, linear_out = shapes["Generator/G_Z/G_linear/w"]
  except (KeyError, ValueError) as e:
    raise errors.UserError(f"{where}: not a BigGAN module (needs linear/w and "
                           "Generator/G_Z/G_linear/w)") from e
  num_blocks = len({n.split("/")[1] for n in shapes
                    if n.startswith("Generator/GBlock")})
  resolution = biggan.BOTTOM_WIDTH * 2 ** num_blocks
  if resolution not in biggan.CHANNEL_MULTIPLIERS:
    raise errors.UserError(f"{where}: {num_blocks} GBlocks make {resolution} "
                           "px, not a BigGAN size")
  first_mult = biggan.CHANNEL_MULTIPLIERS[resolution][0][0]
  ch = linear_out // (biggan.BOTTOM_WIDTH ** 2 * first_mult)
  attention = attention_resolution or 0
  if attention_resolution is None and "Generator/attention/theta/w" in shapes:
    channels = shapes["Generator/attention/theta/w"][-2]
    outs = [ch * m for m in biggan.CHANNEL_MULTIPLIERS[resolution][1]]
    sides = [biggan.BOTTOM_WIDTH * 2 ** (i + 1)
             for i, c in enumerate(outs) if c == channels]
    published = imagenet_biggan.PUBLISHED.get(resolution, (0, 0))[1]
    if published in sides or len(sides) == 1:
      attention = published if published in sides else sides[0]
    else:
      raise errors.UserError(f"{where}: attention with {channels} channels "
                             f"could follow blocks of sides {sides}; give "
                             "attention_resolution")
  try:
    return imagenet_biggan.ImageNetBigGANSpec(
        resolution=resolution, z_dim=chunk * (num_blocks + 1), ch=ch,
        shared_dim=shared_dim, n_classes=n_classes,
        attention_resolution=attention, bn_eps=TFHUB_EPS,
        output_bn_eps=TFHUB_EPS)
  except ValueError as e:
    raise errors.UserError(f"{where}: {e}") from e


def verification_inputs(spec, batch: int, truncation: float = 0.5
                        ) -> tuple[np.ndarray, np.ndarray]:
  """(z, y): truncated z and one-hot classes spread over the range, for any
  spec with z_dim and n_classes (BigGAN's and BigGAN-deep's)."""
  z = np.asarray(imagenet_biggan.truncated_z(
      jax.random.key(0), batch, spec.z_dim, truncation))
  classes = (np.arange(batch) * 997 + 1) % spec.n_classes
  return z, np.asarray(imagenet_biggan.one_hot(classes, spec.n_classes))


def pick_reading(spec: imagenet_biggan.ImageNetBigGANSpec,
                 values: Mapping[str, np.ndarray], reference: np.ndarray,
                 z: np.ndarray, y: np.ndarray, use_ema: bool, where: str
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
  """(params, record) of the reading whose images match `reference`."""
  generate = jax.jit(imagenet_biggan.make_generate(spec))
  tried = []
  for bn_stats, sn_mode in itertools.product(
      bigbigan_names.BN_STATS_MODES, spectral_norm.NORMALIZE_MODES):
    params = assemble(spec, values, use_ema=use_ema, bn_stats=bn_stats,
                      sn_mode=sn_mode)
    if not params:
      continue
    diff = float(np.abs(np.asarray(generate(params, z, y))
                        - reference).max())
    tried.append(f"bn_stats={bn_stats}, sn_normalize={sn_mode}: {diff:.3g}")
    if diff <= VERIFY_TOLERANCE:
      return params, {"bn_stats": bn_stats, "sn_normalize": sn_mode,
                      "max_abs_diff": diff}
  raise errors.UserError(f"{where}: no reading of the variables reproduces "
                         f"the module's images (max |diff| {tried})")


def read_tfhub_biggan(handle: str, use_ema: bool = True, verify_batch: int = 2,
                      attention_resolution: Optional[int] = None
                      ) -> tuple[imagenet_biggan.ImageNetBigGANSpec,
                                 dict[str, Any]]:
  """(spec, params) of a biggan-*/2 module (URL, folder or .tar.gz)."""
  spec, params, record = convert_module(handle, use_ema, verify_batch,
                                        attention_resolution)
  logging.info("%s: converted with bn_stats=%s, sn_normalize=%s (max |diff| "
               "%.3g to the module); %d variables unused", handle,
               record["bn_stats"], record["sn_normalize"],
               record["max_abs_diff"], len(record["unused"]))
  return spec, params


def convert_module(handle: str, use_ema: bool = True, verify_batch: int = 2,
                   attention_resolution: Optional[int] = None
                   ) -> tuple[imagenet_biggan.ImageNetBigGANSpec,
                              dict[str, Any], dict[str, Any]]:
  """(spec, params, record): the reading verified against the module's
  `default` signature (module doc); record = the reading, its max |diff|
  and {unused variable: why}."""
  with tfhub.opened(handle) as module:
    values = tfhub.unprefixed_variables(module)
    shapes = {name: np.shape(value) for name, value in values.items()}
    spec = spec_from_shapes(shapes, handle, attention_resolution)
    unused = check(spec, shapes, use_ema, handle)
    z, y = verification_inputs(spec, verify_batch)
    reference = tfhub.default_images(module, handle, z, y, 0.5)
  params, record = pick_reading(spec, values, reference, z, y, use_ema,
                                handle)
  return spec, params, {**record, "unused": unused}
