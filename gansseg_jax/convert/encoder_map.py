"""Maps the encoder's TF variables onto `models.encoder` by structure.

The BigBiGAN encoder's variable names are not published, so nothing here
depends on them beyond a variable's role, read from its last name component:

  4-D `w|kernel|weights` -> conv kernel;  2-D -> dense kernel (+ `b|bias|biases`)
  1-D `*mean*`, `*var*` (+ `scale|gamma`, `offset|beta`, `*count*`) -> BatchNorm
  `u0` -> the layer is spectrally normalised (one power iteration, as in G)

Layers are grouped by their scope (the name without its last component). The
architecture follows from the shapes: the 7x7x3 conv gives the width; the
number of [3, 3, m, m] kernels per group width m gives the units per group;
the BatchNorm count tells v1 from v2; the dense chain from 2 * features gives
the head. Each layer is then assigned within its (kind, shape) class: the
module's layers sorted by natural name order, ours in graph order
(`models.encoder.layer_slots`), except that a layer whose last scope
component names its role (`_HINTS`: 'pre...' for the pre-activation BN,
'short|proj|skip' for the shortcut, 'final|post', 'feat|crelu') goes to that
role first. Nothing guarantees that two layers of one class are paired right,
which is why the stage verifies the result against the module's `encode`
signature before writing it.
"""
import collections
import dataclasses
import re
from typing import Any, Mapping

import numpy as np

from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import spectral_norm
from gansseg_jax.models import encoder

_ROLES = (
    ("kernel", re.compile(r"^(w|kernel|weights)$")),
    ("bias", re.compile(r"^(b|bias|biases)$")),
    ("u0", re.compile(r"^u0$")),
    ("counter", re.compile(r"count", re.IGNORECASE)),
    ("mean", re.compile(r"mean", re.IGNORECASE)),
    ("var", re.compile(r"var", re.IGNORECASE)),
    ("scale", re.compile(r"^(scale|gamma)$")),
    ("offset", re.compile(r"^(offset|beta)$")),
)
_IGNORED = re.compile(r"^u1$")  # Power-iteration leftover, as in the generator.
# Layers of one shape class that names can tell apart (last scope component).
_HINTS = {
    "preact_bn": re.compile(r"pre", re.IGNORECASE),
    "shortcut": re.compile(r"short|proj|skip", re.IGNORECASE),
    "shortcut_bn": re.compile(r"short|proj|skip", re.IGNORECASE),
    "final_bn": re.compile(r"final|post", re.IGNORECASE),
    "feature_bn": re.compile(r"feat|crelu", re.IGNORECASE),
}


class MappingError(Exception):
  """The module's encoder does not fit `models.encoder`; says why."""


@dataclasses.dataclass
class Layer:
  scope: str
  kind: str  # 'conv', 'dense' or 'bn'.
  arrays: dict[str, np.ndarray]

  @property
  def shape(self) -> tuple[int, ...]:
    if self.kind == "bn":
      return (self.arrays["mean"].size,)
    return tuple(self.arrays["kernel"].shape)


def natural_key(text: str) -> list[Any]:
  """'block_10' after 'block_9'."""
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def group_layers(values: Mapping[str, np.ndarray], use_ema: bool
                 ) -> list[Layer]:
  """Encoder variables (scope-relative names) -> layers; MappingError if odd."""
  ema = "/" + bigbigan_names.EMA_SUFFIX
  chosen = {}
  for name, value in values.items():
    is_ema = name.endswith(ema)
    base = name[:-len(ema)] if is_ema else name
    other_copy = base if is_ema else base + ema
    if is_ema == use_ema or other_copy not in values:
      chosen[base] = value
  scopes: dict[str, dict[str, np.ndarray]] = collections.defaultdict(dict)
  for name, value in chosen.items():
    scope, _, leaf = name.rpartition("/")
    if _IGNORED.match(leaf):
      continue
    role = next((r for r, pattern in _ROLES if pattern.search(leaf)), None)
    if role is None or role in scopes[scope]:
      raise MappingError(f"variable {name}: role unknown or repeated")
    scopes[scope][role] = np.asarray(value, np.float32)
  layers = []
  for scope, arrays in scopes.items():
    kernel = arrays.get("kernel")
    if kernel is not None and kernel.ndim == 4:
      kind = "conv"
    elif kernel is not None and kernel.ndim == 2:
      kind = "dense"
    elif "mean" in arrays and "var" in arrays:
      kind = "bn"
    else:
      raise MappingError(f"scope {scope}: neither conv, dense nor BatchNorm "
                         f"({sorted(arrays)})")
    layers.append(Layer(scope, kind, arrays))
  return sorted(layers, key=lambda layer: natural_key(layer.scope))


def _shape_classes(items) -> collections.Counter:
  return collections.Counter((kind, tuple(shape)) for kind, shape in items)


def infer_spec(layers: list[Layer], bn_eps: float) -> encoder.EncoderSpec:
  """The EncoderSpec whose layers have exactly the module's shapes."""
  convs = [l.shape for l in layers if l.kind == "conv"]
  stems = [s for s in convs if s[:3] == (7, 7, 3)]
  if len(stems) != 1:
    raise MappingError(f"expected one 7x7x3 stem conv, found {len(stems)}")
  width = stems[0][3]
  blocks = []
  while True:
    mid = width * 2 ** len(blocks)
    count = convs.count((3, 3, mid, mid))
    if not count:
      break
    blocks.append(count)
  if not blocks:
    raise MappingError(f"no 3x3 bottleneck convs of width {width}")
  dense = {l.shape for l in layers if l.kind == "dense"}
  head, features = [], 4 * width * 2 ** (len(blocks) - 1)
  current = 2 * features
  while True:
    nxt = [s for s in dense if s[0] == current]
    if len(nxt) != 1:
      break
    head.append(nxt[0][1])
    dense.remove(nxt[0])
    current = nxt[0][1]
  if not head or dense:
    raise MappingError(f"dense layers do not chain from {2 * features}: "
                       f"head {head}, left {sorted(dense)}")
  found = _shape_classes((l.kind, l.shape) for l in layers)
  for version in encoder.VERSIONS:
    try:
      spec = encoder.EncoderSpec(version, width, tuple(blocks), tuple(head),
                                 bn_eps)
    except ValueError as e:
      raise MappingError(str(e)) from e
    slots = encoder.layer_slots(spec)
    if _shape_classes((kind, shape) for _, kind, shape in slots) == found:
      return spec
  raise MappingError(f"layer shapes fit neither a v1 nor a v2 ResNet of width "
                     f"{width}, blocks {blocks}, head {head}")


def _hinted(layer: Layer) -> bool:
  leaf = layer.scope.rpartition("/")[2]
  return any(hint.search(leaf) for hint in _HINTS.values())


def _pick(queue: list[Layer], slot: str) -> Layer:
  """The first layer named like `slot`'s hint, else the first unhinted one."""
  hint = _HINTS.get(slot)
  candidates = [l for l in queue
                if hint.search(l.scope.rpartition("/")[2])] if hint else []
  if not candidates:
    candidates = [l for l in queue if not _hinted(l)] or queue
  queue.remove(candidates[0])
  return candidates[0]


def _set(tree: dict, path: tuple, value) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def assign(layers: list[Layer], spec: encoder.EncoderSpec, *, bn_stats: str,
           sn_mode: str, sn_eps: float) -> dict[str, Any]:
  """Flax params of `spec`; pairs layers within each (kind, shape) class."""
  queues = collections.defaultdict(list)
  for layer in layers:
    queues[(layer.kind, layer.shape)].append(layer)
  params: dict[str, Any] = {}
  for path, kind, shape in encoder.layer_slots(spec):
    layer = _pick(queues[(kind, tuple(shape))], path[-1])
    a = layer.arrays
    if kind == "bn":
      mean, var = a["mean"].reshape(-1), a["var"].reshape(-1)
      if bn_stats == "divide" and "counter" in a:
        count = float(a["counter"].reshape(()))
        if count <= 0:
          raise MappingError(f"{layer.scope}: accumulation counter {count}")
        mean, var = mean / count, var / count
      channels = mean.size
      _set(params, path + ("mean",), mean)
      _set(params, path + ("var",), var)
      _set(params, path + ("scale",),
           a.get("scale", np.ones(channels, np.float32)).reshape(-1))
      _set(params, path + ("offset",),
           a.get("offset", np.zeros(channels, np.float32)).reshape(-1))
      continue
    kernel = a["kernel"]
    if "u0" in a:
      kernel = spectral_norm.spectral_normalize(kernel, a["u0"], sn_eps,
                                                sn_mode)
    _set(params, path + ("kernel",), kernel)
    if kind == "dense":
      _set(params, path + ("bias",),
           a.get("bias", np.zeros(shape[1], np.float32)).reshape(-1))
    elif "bias" in a:
      raise MappingError(f"{layer.scope}: conv with a bias, which "
                         "models.encoder does not have")
  return params


def convert(values: Mapping[str, np.ndarray], *, use_ema: bool, bn_eps: float,
            bn_stats: str, sn_mode: str, sn_eps: float
            ) -> tuple[encoder.EncoderSpec, dict[str, Any]]:
  """(spec, params) from the encoder's variables, or MappingError."""
  layers = group_layers(values, use_ema)
  spec = infer_spec(layers, bn_eps)
  return spec, assign(layers, spec, bn_stats=bn_stats, sn_mode=sn_mode,
                      sn_eps=sn_eps)


def has_counters(values: Mapping[str, np.ndarray]) -> bool:
  """Whether any BatchNorm carries an accumulation counter."""
  return any(re.search("count", n.rpartition("/")[2], re.IGNORECASE)
             for n in values)
