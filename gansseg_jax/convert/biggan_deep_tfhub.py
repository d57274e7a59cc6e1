"""TF-Hub deepmind/biggan-deep-{128,256,512}/1 -> BigGAN-deep Flax params.

The variables by name (those pytorch-pretrained-biggan 0.1.1's
convert_tf_to_pytorch.py reads; a `module/` prefix, which hub.Module adds and
hub.load does not, is dropped):

  linear/w                          [n_classes, z]  class embedding
  Generator/GenZ/G_linear/{w,b,u0}  [2 z, 16 C0]    -> 4x4xC0
  Generator/GBlock{,_1,..}/BatchNorm{,_1,_2,_3}/{scale,offset}/{w,u0}
                                    [2 z, C]        conditional gain, bias
  Generator/GBlock{,_1,..}/conv{0,1,2,3}/{w,b,u0}   1x1, 3x3, 3x3, 1x1
  Generator/attention/{theta,phi,g,o_conv}/{w,u0}, Generator/attention/gamma
  Generator/BatchNorm/{scale,offset}  [C]           output BN
  Generator/conv_to_rgb/{w,b,u0}    [3, 3, C, C]    first 3 outputs kept
  every w, b, scale, offset, gamma also as <name>/ema_0.9999

The batch-norm statistics are not variables. The module keeps them for its
n_stats = 51 truncation grid points as constant tensors of its graph,
`stack_<n>` for n = 1, 3, 6, 8, 11, 13, 16, 18, ... (four of every ten), each
[n_stats, C]: the mean then the variance of every BN in layer order (each
GBlock's BatchNorm .. BatchNorm_3, then the output BN). pytorch-pretrained-
biggan's converter fetches them by these names; `read_statistics` does the
same on the loaded module (`prune`, no inputs fed).

Spectral norm is one power iteration from u0 (spectral_norm.py), applied once
here; its normalize form is not fixed by the names, so `convert_module` tries
each and keeps the one whose images match the module's own `default`
signature (inputs z, y, truncation) at every truncation of
VERIFY_TRUNCATIONS.
"""
import dataclasses
from typing import Any, Mapping, Optional

import jax
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import optional
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import biggan_tfhub
from gansseg_jax.convert import spectral_norm
from gansseg_jax.convert import tfhub
from gansseg_jax.models import biggan
from gansseg_jax.models import biggan_deep

# Grid points (exact in the package's float64 arithmetic) at which the
# conversion is checked against the module: two rows of every statistic.
VERIFY_TRUNCATIONS = (0.5, 1.0)
_STACK_OFFSETS = (1, 3, 6, 8)  # Of every ten graph stacks, these are stats.

SNWeight = bigbigan_names.SNWeight
Plain = bigbigan_names.Plain


def bn_scope(block: int, k: int) -> str:
  """TF scope of BN `k` of GBlock `block`: .../BatchNorm, BatchNorm_1, .."""
  return (f"{bigbigan_names.block_scope(block)}/BatchNorm"
          + ("" if k == 0 else f"_{k}"))


def block_widths(cin: int, cout: int) -> tuple[tuple[int, int, int], ...]:
  """(in, out, kernel side) of conv0..conv3 of a bottleneck block."""
  mid = cin // biggan_deep.BOTTLENECK
  return ((cin, mid, 1), (mid, mid, 3), (mid, mid, 3), (mid, cout, 1))


def layout(spec: biggan_deep.BigGANDeepSpec) -> list[Any]:
  """Every TF weight of the module with its Flax destination."""
  first = spec.block_layout[0][0]
  entries: list[Any] = [
      Plain("linear/w", ("embedding",), (spec.n_classes, spec.z_dim),
            (spec.n_classes, spec.z_dim)),
      SNWeight("Generator/GenZ/G_linear", ("z_linear", "kernel"),
               (spec.cond_dim, biggan.BOTTOM_WIDTH ** 2 * first), True),
  ]
  for i, (cin, cout, _) in enumerate(spec.block_layout):
    for k, (a, b, side) in enumerate(block_widths(cin, cout)):
      entries += [
          SNWeight(f"{bn_scope(i, k)}/scale",
                   ("blocks", i, f"bn{k}", "gamma_kernel"),
                   (spec.cond_dim, a), False),
          SNWeight(f"{bn_scope(i, k)}/offset",
                   ("blocks", i, f"bn{k}", "beta_kernel"),
                   (spec.cond_dim, a), False),
          SNWeight(f"{bigbigan_names.block_scope(i)}/conv{k}",
                   ("blocks", i, f"conv{k}", "kernel"), (side, side, a, b),
                   True),
      ]
  if spec.attention_position >= 0:
    entries += bigbigan_names.attention(spec.attention_channels)
  last = spec.block_layout[-1][1]
  entries += [
      Plain("Generator/BatchNorm/scale", ("out_bn", "scale"), (last,),
            (last,)),
      Plain("Generator/BatchNorm/offset", ("out_bn", "offset"), (last,),
            (last,)),
      SNWeight("Generator/conv_to_rgb", ("out_conv", "kernel"),
               (3, 3, last, last), True),
  ]
  return entries


def statistics_layout(spec: biggan_deep.BigGANDeepSpec
                      ) -> list[tuple[tuple[Any, ...], int]]:
  """(Flax path of the BN, channels) in the module's order of statistics."""
  order = []
  for i, (cin, cout, _) in enumerate(spec.block_layout):
    order += [(("blocks", i, f"bn{k}"), a)
              for k, (a, _, _) in enumerate(block_widths(cin, cout))]
  return order + [(("out_bn",), spec.block_layout[-1][1])]


def statistics_tensors(count: int) -> list[str]:
  """Names of the first `count` statistics tensors (module docstring)."""
  names = []
  for group in range((count + len(_STACK_OFFSETS) - 1)
                     // len(_STACK_OFFSETS)):
    names += [f"stack_{10 * group + o}:0" for o in _STACK_OFFSETS]
  return names[:count]


def expected_variables(spec: biggan_deep.BigGANDeepSpec, use_ema: bool
                       ) -> tuple[dict[str, tuple], dict[str, str]]:
  """(required {name: shape}, {known alternative copy: why it is unused})."""
  return bigbigan_names.variables_of(layout(spec), use_ema,
                                     bigbigan_names.EMA_SUFFIX)


def check(spec: biggan_deep.BigGANDeepSpec, shapes: Mapping[str, tuple],
          use_ema: bool, where: str) -> dict[str, str]:
  """UserError on a missing, misshapen or unknown variable; {unused: why}."""
  required, alternatives = expected_variables(spec, use_ema)
  return biggan_tfhub.check_against(required, alternatives,
                                     biggan_tfhub.UNUSED_VARIABLES, shapes,
                                     where, f"BigGAN-deep {spec}")


def spec_from_shapes(shapes: Mapping[str, tuple], where: str,
                     attention_resolution: Optional[int] = None
                     ) -> biggan_deep.BigGANDeepSpec:
  """The architecture the variables' shapes describe (eps 1e-4, 51 stats).

  The attention scope names no block: its side is the one whose first
  block's input width matches its kernels, the published 64 where several
  do, or `attention_resolution` when given.
  """
  try:
    n_classes, z_dim = shapes["linear/w"]
    cond_dim, linear_out = shapes["Generator/GenZ/G_linear/w"]
  except (KeyError, ValueError) as e:
    raise errors.UserError(f"{where}: not a BigGAN-deep module (needs linear/w "
                           "and Generator/GenZ/G_linear/w)") from e
  if cond_dim != 2 * z_dim:
    raise errors.UserError(f"{where}: Generator/GenZ/G_linear/w takes "
                           f"{cond_dim} inputs, not 2 x {z_dim} (z and the "
                           "class embedding)")
  num_blocks = len({n.split("/")[1] for n in shapes
                    if n.startswith("Generator/GBlock")})
  sizes = {2 * (len(m) - 1): r
           for r, m in biggan_deep.CHANNEL_MULTIPLIERS.items()}
  if num_blocks not in sizes:
    raise errors.UserError(f"{where}: {num_blocks} GBlocks is not a "
                           f"BigGAN-deep size ({sorted(sizes)} blocks)")
  resolution = sizes[num_blocks]
  ch = linear_out // (biggan.BOTTOM_WIDTH ** 2
                      * biggan_deep.CHANNEL_MULTIPLIERS[resolution][0])

  def spec_at(attention):
    try:
      return biggan_deep.BigGANDeepSpec(
          resolution=resolution, z_dim=z_dim, ch=ch, n_classes=n_classes,
          attention_resolution=attention, eps=biggan_tfhub.TFHUB_EPS)
    except ValueError as e:
      raise errors.UserError(f"{where}: {e}") from e

  if attention_resolution is not None:
    return spec_at(attention_resolution)
  if "Generator/attention/theta/w" not in shapes:
    return spec_at(0)
  channels = shapes["Generator/attention/theta/w"][-2]
  plain = spec_at(0)
  sides = [biggan.BOTTOM_WIDTH * 2 ** (i // 2)
           for i, (cin, _, _) in enumerate(plain.block_layout)
           if i % 2 == 0 and cin == channels]
  published = biggan_deep.BigGANDeepSpec.attention_resolution
  if published not in sides and len(sides) != 1:
    raise errors.UserError(f"{where}: attention with {channels} channels "
                           f"could precede blocks of sides {sides}; give "
                           "attention_resolution")
  return spec_at(published if published in sides else sides[0])


def read_statistics(module: Any, spec: biggan_deep.BigGANDeepSpec,
                    where: str) -> dict[tuple[Any, ...], dict[str, np.ndarray]]:
  """{BN path: {'mean', 'var'} [n_stats, C]} from the module's graph."""
  slots = statistics_layout(spec)
  names = statistics_tensors(2 * len(slots))
  tf = optional.load("tensorflow", f"reading {where}", optional.TF_EXTRA)
  try:
    fetch = module.prune(feeds=[], fetches=names)
  except (KeyError, ValueError) as e:
    raise errors.UserError(
        f"{where}: the module's graph lacks the batch-norm statistics tensors "
        f"{names[0]} .. {names[-1]} of a BigGAN-deep module ({e})") from e
  try:
    values = [np.asarray(t, np.float32) for t in fetch()]
  except tf.errors.OpError as e:
    raise errors.UserError(f"{where}: cannot evaluate the batch-norm "
                           f"statistics ({type(e).__name__})") from e
  n_stats = values[0].shape[0] if values[0].ndim == 2 else 0
  stats = {}
  for index, (path, channels) in enumerate(slots):
    for j, key in enumerate(("mean", "var")):
      value = values[2 * index + j]
      if value.shape != (n_stats, channels):
        raise errors.UserError(
            f"{where}: statistics tensor {names[2 * index + j]} has shape "
            f"{list(value.shape)}, expected [{n_stats or 'n_stats'}, "
            f"{channels}] for {'/'.join(map(str, path))}")
      stats.setdefault(path, {})[key] = value
  return stats


def assemble(spec: biggan_deep.BigGANDeepSpec,
             values: Mapping[str, np.ndarray],
             stats: Mapping[tuple[Any, ...], Mapping[str, np.ndarray]], *,
             use_ema: bool, sn_mode: str,
             sn_eps: float = biggan_tfhub.TFHUB_EPS
             ) -> dict[str, Any]:
  """Flax params: W / sigma of every SN weight, statistics as read; the
  output convolution cut to its first 3 outputs after normalisation."""
  params: dict[str, Any] = {}
  for entry in layout(spec):
    for path, leaf in bigbigan_names.weight_leaves(
        entry, values, use_ema=use_ema,
        ema_suffix=bigbigan_names.EMA_SUFFIX, sn_eps=sn_eps,
        sn_mode=sn_mode):
      bigbigan_names.put(params, path, leaf)
  for path, pair in stats.items():
    for key, value in pair.items():
      bigbigan_names.put(params, path + (key,), value)
  out = params["out_conv"]
  out["kernel"], out["bias"] = out["kernel"][..., :3], out["bias"][:3]
  return params


def convert_module(handle: str, use_ema: bool = True, verify_batch: int = 2,
                   attention_resolution: Optional[int] = None
                   ) -> tuple[biggan_deep.BigGANDeepSpec, dict[str, Any],
                              dict[str, Any]]:
  """(spec, params, record): the reading verified against the module's
  `default` signature (module doc); record = the reading, its max |diff|
  and {unused variable: why}."""
  with tfhub.opened(handle) as module:
    values = tfhub.unprefixed_variables(module)
    shapes = {name: np.shape(value) for name, value in values.items()}
    spec = spec_from_shapes(shapes, handle, attention_resolution)
    unused = check(spec, shapes, use_ema, handle)
    stats = read_statistics(module, spec, handle)
    n_stats = next(iter(stats.values()))["mean"].shape[0]
    spec = dataclasses.replace(spec, n_stats=n_stats)
    cases = []
    for t in VERIFY_TRUNCATIONS:
      z, y = biggan_tfhub.verification_inputs(spec, verify_batch, t)
      cases.append((t, z, y, tfhub.default_images(module, handle, z, y, t)))
  forward = jax.jit(biggan_deep.make_forward(spec))  # One compile, every t.
  tried = []
  for sn_mode in spectral_norm.NORMALIZE_MODES:
    params = assemble(spec, values, stats, use_ema=use_ema, sn_mode=sn_mode)
    diff = max(float(np.abs(np.asarray(forward(
        params, z, y, biggan_deep.statistics_weights(t, spec.n_stats)))
                            - reference).max())
               for t, z, y, reference in cases)
    tried.append(f"sn_normalize={sn_mode}: {diff:.3g}")
    if diff <= biggan_tfhub.VERIFY_TOLERANCE:
      return spec, params, {"sn_normalize": sn_mode, "max_abs_diff": diff,
                            "truncations": list(VERIFY_TRUNCATIONS),
                            "unused": unused}
  raise errors.UserError(f"{handle}: no reading of the variables reproduces "
                         f"the module's images (max |diff| {tried})")
