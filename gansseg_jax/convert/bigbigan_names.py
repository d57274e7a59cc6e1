"""The BigBiGAN TF-Hub generator's variables: names, shapes, destinations.

The explicit mapping of deepmind/bigbigan-resnet50/1 (and -revnet50x4/1, same
generator) onto `gansseg_jax.models.biggan`. Names are relative to the
module's generator scope (`GenEncWrapper/Generator/...` in the module; the
prefix before `Generator/` is stripped by `tfhub.split_scopes`). Full-size
names and shapes are pinned in tests/bigbigan_generator_manifest.txt.

Where the names come from: the authors of the segmentation paper renamed
BigBiGAN's variables to BigGAN-128's to reuse BigGAN-PyTorch's converter
(GenZ -> G_Z, GBlock*/BatchNorm{,_1}/{offset,scale} -> HyperBN{,_1}/{beta,gamma},
GBlock*/BatchNorm{,_1}/accumulated_* -> CrossReplicaBN{,_1}/accumulated_*,
Generator/BatchNorm/{offset,scale} -> ScaledCrossReplicaBN/{beta,gamma},
Generator/BatchNorm/accumulated_* -> ScaledCrossReplicaBNbn/accumulated_*,
Generator/linear/w [1, 128] -> linear/w, ema_0.9999 -> ema_b999900), so:

  Generator/linear/w                      [1, shared]       class embedding
  Generator/GenZ/G_linear/{w,b,u0}        [chunk, 16*C0]    z chunk 0 -> 4x4xC0
  Generator/GBlock{,_1,..}/BatchNorm{,_1}/{offset,scale}/{w,u0}  [chunk+shared, C]
  Generator/GBlock{,_1,..}/BatchNorm{,_1}/accumulated_{mean,var}, accumulation_counter
  Generator/GBlock{,_1,..}/{conv0,conv1,conv_sc}/{w,b,u0}
  Generator/attention/{theta,phi,g,o_conv}/{w,u0}, Generator/attention/gamma
  Generator/BatchNorm/{offset,scale}, Generator/BatchNorm/accumulated_*
  Generator/conv_2d/{w,b,u0}
  every w, b, offset, scale, gamma also as <name>/ema_0.9999

Shapes are compared after dropping size-1 axes, so [C] and [1, 1, 1, C]
(or [] and [1]) are the same variable.
"""
import dataclasses
import re
from typing import Any, Mapping

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import spectral_norm
from gansseg_jax.models import biggan

EMA_SUFFIX = "ema_0.9999"
BN_STATS_MODES = ("raw", "divide")

# Variables that may be present and are deliberately not converted, with why.
UNUSED_PATTERNS = (
    (re.compile(r"(^|/)u1$"),
     "second stored power-iteration vector; inference starts from u0"),
)


@dataclasses.dataclass(frozen=True)
class SNWeight:
  """A spectrally normalised kernel `scope/w` (+ `scope/b`), with `scope/u0`."""
  scope: str
  dest: tuple[Any, ...]  # Flax path of the kernel leaf.
  shape: tuple[int, ...]  # TF layout: [k, k, in, out] or [in, out].
  bias: bool

  def bias_dest(self) -> tuple[Any, ...]:
    return self.dest[:-1] + ("bias",)


@dataclasses.dataclass(frozen=True)
class BNStats:
  """`scope/accumulated_mean`, `accumulated_var`, `accumulation_counter`."""
  scope: str
  dest: tuple[Any, ...]  # Flax path of the BN module (leaves mean, var).
  channels: int


@dataclasses.dataclass(frozen=True)
class Plain:
  """One variable (with an EMA copy) reshaped into `dest` (same size)."""
  name: str
  dest: tuple[Any, ...]
  shape: tuple[int, ...]  # TF shape.
  dest_shape: tuple[int, ...]


def block_scope(index: int) -> str:
  """TF scope of GBlock `index`: Generator/GBlock, Generator/GBlock_1, ..."""
  return "Generator/GBlock" + ("" if index == 0 else f"_{index}")


def block_convolutions(scope: str, index: int, cin: int,
                       cout: int) -> list[SNWeight]:
  """conv0, conv1 and the 1x1 shortcut of GBlock `index` (BigGAN's names)."""
  return [
      SNWeight(f"{scope}/conv0", ("blocks", index, "conv0", "kernel"),
               (3, 3, cin, cout), True),
      SNWeight(f"{scope}/conv1", ("blocks", index, "conv1", "kernel"),
               (3, 3, cout, cout), True),
      SNWeight(f"{scope}/conv_sc", ("blocks", index, "conv_sc", "kernel"),
               (1, 1, cin, cout), True),
  ]


def attention(channels: int) -> list[Any]:
  """The self-attention layer's 1x1 convolutions and gamma (BigGAN's names)."""
  c = channels
  entries: list[Any] = [
      SNWeight(f"Generator/attention/{name}", ("attention", name, "kernel"),
               (1, 1, cin, cout), False)
      for name, cin, cout in (("theta", c, c // 8), ("phi", c, c // 8),
                              ("g", c, c // 2), ("o_conv", c // 2, c))]
  entries.append(Plain("Generator/attention/gamma", ("attention", "gamma"),
                       (), ()))
  return entries


def layout(spec: biggan.BigGANSpec) -> list[Any]:
  """Every TF layer of the generator with its Flax destination."""
  first = spec.block_channels[0][0]
  entries: list[Any] = [
      Plain("Generator/linear/w", ("embedding",), (1, spec.shared_dim),
            (spec.shared_dim,)),
      SNWeight("Generator/GenZ/G_linear", ("z_linear", "kernel"),
               (spec.chunk_size, biggan.BOTTOM_WIDTH ** 2 * first), True),
  ]
  for i, (cin, cout) in enumerate(spec.block_channels):
    scope = block_scope(i)
    for bn_name, dest, channels in (("BatchNorm", "bn0", cin),
                                    ("BatchNorm_1", "bn1", cout)):
      entries += [
          SNWeight(f"{scope}/{bn_name}/scale", ("blocks", i, dest,
                                                "gamma_kernel"),
                   (spec.cond_dim, channels), False),
          SNWeight(f"{scope}/{bn_name}/offset", ("blocks", i, dest,
                                                 "beta_kernel"),
                   (spec.cond_dim, channels), False),
          BNStats(f"{scope}/{bn_name}", ("blocks", i, dest), channels),
      ]
    entries += block_convolutions(scope, i, cin, cout)
  if spec.attention_block >= 0:
    entries += attention(spec.attention_channels)
  last = spec.block_channels[-1][1]
  entries += [
      Plain("Generator/BatchNorm/scale", ("out_bn", "scale"), (last,),
            (last,)),
      Plain("Generator/BatchNorm/offset", ("out_bn", "offset"), (last,),
            (last,)),
      BNStats("Generator/BatchNorm", ("out_bn",), last),
      SNWeight("Generator/conv_2d", ("out_conv", "kernel"), (3, 3, last, 3),
               True),
  ]
  return entries


def _with_ema(name: str, shape, use_ema: bool,
              suffix: str) -> tuple[dict, dict]:
  """({used name: shape}, {alternative copy: reason})."""
  ema = f"{name}/{suffix}"
  if use_ema:
    return {ema: shape}, {name: "raw weight; its EMA copy is used "
                                "(config.convert.use_ema)"}
  return {name: shape}, {ema: "EMA copy; the raw weight is used "
                              "(config.convert.use_ema)"}


def variables_of(entries: list[Any], use_ema: bool,
                 ema_suffix: str = EMA_SUFFIX
                 ) -> tuple[dict[str, tuple], dict[str, str]]:
  """(required {name: shape}, known optional {name: reason it is unused}).

  The TF variables behind `entries` (a `layout`): an SN weight is w, u0 and
  optionally b; BN statistics are mean, var and counter; weights and plain
  variables come with an EMA copy (`name/ema_suffix`), of which `use_ema`
  picks one.
  """
  required: dict[str, tuple] = {}
  optional: dict[str, str] = {}

  def add(name, shape, ema):
    if ema:
      used, alt = _with_ema(name, tuple(shape), use_ema, ema_suffix)
      required.update(used)
      optional.update(alt)
    else:
      required[name] = tuple(shape)

  for entry in entries:
    if isinstance(entry, SNWeight):
      add(f"{entry.scope}/w", entry.shape, True)
      add(f"{entry.scope}/u0", (1, entry.shape[-1]), False)
      if entry.bias:
        add(f"{entry.scope}/b", (entry.shape[-1],), True)
    elif isinstance(entry, BNStats):
      add(f"{entry.scope}/accumulated_mean", (entry.channels,), False)
      add(f"{entry.scope}/accumulated_var", (entry.channels,), False)
      add(f"{entry.scope}/accumulation_counter", (), False)
    else:
      add(entry.name, entry.shape, True)
  return required, optional


def expected_variables(spec: biggan.BigGANSpec, use_ema: bool
                       ) -> tuple[dict[str, tuple], dict[str, str]]:
  """(required {name: shape}, known optional {name: reason it is unused})."""
  return variables_of(layout(spec), use_ema)


def manifest_lines(spec: biggan.BigGANSpec) -> list[str]:
  """'name shape' for every variable the mapping knows (raw and EMA copies)."""
  raw, _ = expected_variables(spec, use_ema=False)
  ema, _ = expected_variables(spec, use_ema=True)
  shapes = {**raw, **ema}
  return [f"{name} {list(shapes[name])}" for name in sorted(shapes)]


def same_shape(actual, expected) -> bool:
  """Equal after dropping size-1 axes."""
  def squeeze(shape):
    return tuple(d for d in shape if d != 1)
  return squeeze(tuple(actual)) == squeeze(tuple(expected))


def check(spec: biggan.BigGANSpec, shapes: Mapping[str, tuple], use_ema: bool,
          where: str) -> dict[str, str]:
  """Raises UserError on a missing, misshapen or unmapped variable.

  `shapes` holds every generator variable (generator-relative names); returns
  {unused name: reason} for those deliberately not converted.
  """
  required, optional = expected_variables(spec, use_ema)
  for name, shape in required.items():
    if name not in shapes:
      raise errors.UserError(f"{where}: variable {name} is missing (expected "
                             f"shape {list(shape)} for {spec})")
    if not same_shape(shapes[name], shape):
      raise errors.UserError(
          f"{where}: variable {name} has shape {list(shapes[name])}, expected "
          f"{list(shape)} (check config.generator for {spec})")
  unused = {}
  for name in shapes:
    if name in required:
      continue
    if name in optional:
      unused[name] = optional[name]
      continue
    reason = next((r for p, r in UNUSED_PATTERNS if p.search(name)), None)
    if reason is None:
      raise errors.UserError(f"{where}: variable {name} "
                             f"{list(shapes[name])} is not mapped to the "
                             "generator and not on the unused list")
    unused[name] = reason
  return unused


def counters(spec: biggan.BigGANSpec,
             values: Mapping[str, np.ndarray]) -> dict[str, float]:
  """{BN scope: accumulation_counter}."""
  return {e.scope: float(np.asarray(values[
      f"{e.scope}/accumulation_counter"]).reshape(()))
          for e in layout(spec) if isinstance(e, BNStats)}


def put(tree: dict, path: tuple, value: np.ndarray) -> None:
  """tree[path[0]][path[1]].. = value, making the dicts on the way."""
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def weight_leaves(entry: Any, values: Mapping[str, np.ndarray], *,
                  use_ema: bool, ema_suffix: str, sn_eps: float, sn_mode: str
                  ) -> list[tuple[tuple[Any, ...], np.ndarray]]:
  """[(Flax path, value)] of an SNWeight (W / sigma, and its bias) or a Plain
  entry; the EMA copy (`name/ema_suffix`) of a weight when `use_ema`."""

  def read(name, ema):
    return np.asarray(values[f"{name}/{ema_suffix}" if ema and use_ema
                             else name], np.float32)

  if isinstance(entry, SNWeight):
    w = read(f"{entry.scope}/w", True).reshape(entry.shape)
    u0 = read(f"{entry.scope}/u0", False)
    leaves = [(entry.dest,
               spectral_norm.spectral_normalize(w, u0, sn_eps, sn_mode))]
    if entry.bias:
      leaves.append((entry.bias_dest(),
                     read(f"{entry.scope}/b", True).reshape(entry.shape[-1])))
    return leaves
  return [(entry.dest, read(entry.name, True).reshape(entry.dest_shape))]


def assemble(spec: biggan.BigGANSpec, values: Mapping[str, np.ndarray], *,
             use_ema: bool, bn_stats: str, sn_mode: str,
             sn_eps: float) -> dict[str, Any]:
  """The Flax params of `spec` from checked TF variables (generator-relative).

  SN weights become W / sigma (spectral_norm.py); BN statistics are the
  accumulated values, divided by the accumulation counter for 'divide'.
  """
  if bn_stats not in BN_STATS_MODES:
    raise ValueError(f"bn_stats {bn_stats!r} not in {BN_STATS_MODES}")

  def read(name, ema):
    return np.asarray(values[f"{name}/{EMA_SUFFIX}" if ema and use_ema
                             else name], np.float32)

  params: dict[str, Any] = {}
  for entry in layout(spec):
    if isinstance(entry, BNStats):
      mean = read(f"{entry.scope}/accumulated_mean", False).reshape(-1)
      var = read(f"{entry.scope}/accumulated_var", False).reshape(-1)
      if bn_stats == "divide":
        count = float(read(f"{entry.scope}/accumulation_counter",
                           False).reshape(()))
        if count <= 0:
          raise errors.UserError(
              f"config.convert.bn_stats: 'divide' but {entry.scope}/"
              f"accumulation_counter is {count}; use 'raw'")
        mean, var = mean / count, var / count
      put(params, entry.dest + ("mean",), mean)
      put(params, entry.dest + ("var",), var)
    else:
      for path, leaf in weight_leaves(entry, values, use_ema=use_ema,
                                      ema_suffix=EMA_SUFFIX, sn_eps=sn_eps,
                                      sn_mode=sn_mode):
        put(params, path, leaf)
  return params
