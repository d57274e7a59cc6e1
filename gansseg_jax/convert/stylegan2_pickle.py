"""NVlabs stylegan2-ada-pytorch / stylegan3 network pickles -> StyleGAN2 params.

The `.pkl` files NVlabs publishes (FFHQ, AFHQ, MetFaces, LSUN church / cat /
horse / car, ...) and training snapshots are plain pickles of
{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}, the networks being
instances of the authors' persistent classes. They are read with
`torch_pickle.load_pickle` (numpy only, no code from the file runs) and
G_ema's parameters and buffers are mapped here (names as in the authors'
training/networks.py, which stylegan3's networks_stylegan2.py keeps):

  mapping.fc{i}.{weight [out, in], bias}  -> mapping.layers[i], gains folded:
      kernel = (weight * weight_gain).T, bias * bias_gain (lr_mul 0.01 inside)
  mapping.w_avg                          -> w_avg
  synthesis.b4.const [C, 4, 4]           -> const (HWC)
  synthesis.b{r}.conv{0,1}.{weight [O, I, 3, 3], bias, noise_const,
      noise_strength, affine.{weight, bias}} -> layers[l] (b4.conv1 is l = 0,
      then conv0, conv1 of each block), weight as HWIO
  synthesis.b{r}.torgb.{weight [3, I, 1, 1], bias, affine.*} -> torgbs[j];
      ToRGBLayer's weight_gain 1/sqrt(I) scales the styles: folded into the
      affine kernel and bias.

NVlabs' original TensorFlow StyleGAN2 pickles are read too (stylegan2_tf).
Only the StyleGAN2 generator is implemented: a real StyleGAN3 (config T or
R: alias-free synthesis with a Fourier-feature input) is refused with a
UserError naming it; stylegan3's repository also trains and ships
'stylegan2'-config networks, which read here like stylegan2-ada's.
Conditional generators (c_dim > 0), other architectures than 'skip' and
other resampling filters than [1,3,3,1] are refused the same way.
"""
from typing import Any

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import stylegan2_tf
from gansseg_jax.convert import torch_pickle
from gansseg_jax.models import stylegan2

NETWORK_KEY = "G_ema"  # The generator the authors sample from.
_DEFAULT_CHANNEL_BASE = 32768  # NVlabs SynthesisNetwork's defaults.
_DEFAULT_CHANNEL_MAX = 512
_STYLEGAN3_MARKERS = ("SynthesisInput", "input")


def _float(value: Any) -> np.float64:
  return np.float64(np.asarray(value, np.float64))


def _attribute(obj: torch_pickle.PersistentObject, name: str, where: str):
  if name not in obj.state:
    raise errors.UserError(f"{where}: {obj.class_name} has no attribute "
                           f"{name}")
  return obj.state[name]


def _network(path: str, snapshot: Any) -> torch_pickle.PersistentObject:
  if not isinstance(snapshot, dict) or NETWORK_KEY not in snapshot:
    keys = sorted(snapshot) if isinstance(snapshot, dict) else type(
        snapshot).__name__
    raise errors.UserError(f"{path}: no '{NETWORK_KEY}' network in the pickle "
                           f"(found {keys})")
  g = snapshot[NETWORK_KEY]
  if not isinstance(g, torch_pickle.PersistentObject):
    raise errors.UserError(f"{path}: '{NETWORK_KEY}' is not a network")
  synthesis = g.modules.get("synthesis")
  if not isinstance(synthesis, torch_pickle.PersistentObject):
    raise errors.UserError(f"{path}: '{NETWORK_KEY}' has no synthesis network")
  if ("input" in synthesis.modules or any(
      getattr(m, "class_name", "") in _STYLEGAN3_MARKERS
      for m in synthesis.modules.values())):
    raise errors.UserError(
        f"{path}: a StyleGAN3 (alias-free, config T/R) generator; only "
        "StyleGAN2 networks are supported (stylegan2-ada-pytorch pickles and "
        "stylegan3's --cfg=stylegan2 pickles)")
  return g


def spec_from_network(path: str, g: torch_pickle.PersistentObject
                      ) -> stylegan2.StyleGAN2Spec:
  """The spec from G_ema's attributes and init kwargs; UserError if unusable.

  The synthesis and mapping networks' own constructor arguments are read:
  stylegan2-ada's Generator takes `synthesis_kwargs={...}`, stylegan3's
  networks_stylegan2 Generator `**synthesis_kwargs`, both pass them on.
  """
  def init_kwargs(name: str) -> dict:
    module = g.modules.get(name)
    if not isinstance(module, torch_pickle.PersistentObject):
      raise errors.UserError(f"{path}: '{NETWORK_KEY}' has no {name} network")
    return dict(module.state.get("_init_kwargs") or {})

  mapping_kwargs = init_kwargs("mapping")
  synthesis_kwargs = init_kwargs("synthesis")
  if int(_attribute(g, "c_dim", path)):
    raise errors.UserError(f"{path}: a conditional generator (c_dim "
                           f"{g.state['c_dim']}); only unconditional ones "
                           "are supported")
  if int(_attribute(g, "img_channels", path)) != 3:
    raise errors.UserError(f"{path}: img_channels {g.state['img_channels']}, "
                           "only RGB (3) is supported")
  architecture = synthesis_kwargs.get("architecture", stylegan2.ARCHITECTURE)
  if architecture != stylegan2.ARCHITECTURE:
    raise errors.UserError(f"{path}: synthesis architecture {architecture!r}, "
                           f"only {stylegan2.ARCHITECTURE!r} (config F)")
  if list(synthesis_kwargs.get("resample_filter", [1, 3, 3, 1])) != [1, 3, 3,
                                                                    1]:
    raise errors.UserError(f"{path}: resample_filter "
                           f"{synthesis_kwargs['resample_filter']}, only "
                           "[1, 3, 3, 1]")
  mapping = g.modules.get("mapping")
  num_layers = int(_attribute(mapping, "num_layers", path)) if isinstance(
      mapping, torch_pickle.PersistentObject) else 0
  clamp = synthesis_kwargs.get("conv_clamp")
  try:
    return stylegan2.StyleGAN2Spec(
        resolution=int(_attribute(g, "img_resolution", path)),
        z_dim=int(_attribute(g, "z_dim", path)),
        w_dim=int(_attribute(g, "w_dim", path)),
        mapping_layers=num_layers,
        channel_base=int(synthesis_kwargs.get("channel_base",
                                              _DEFAULT_CHANNEL_BASE)),
        channel_max=int(synthesis_kwargs.get("channel_max",
                                             _DEFAULT_CHANNEL_MAX)),
        conv_clamp=None if clamp is None else float(clamp))
  except ValueError as e:
    raise errors.UserError(f"{path}: unsupported generator ({e})") from e


def expected_shapes(spec: stylegan2.StyleGAN2Spec) -> dict[str, tuple]:
  """{G_ema tensor name: shape} that the conversion reads."""
  shapes = {"mapping.w_avg": (spec.w_dim,)}
  widths = [spec.z_dim] + [spec.w_dim] * spec.mapping_layers
  for i, (a, b) in enumerate(zip(widths, widths[1:])):
    shapes[f"mapping.fc{i}.weight"] = (b, a)
    shapes[f"mapping.fc{i}.bias"] = (b,)
  shapes["synthesis.b4.const"] = (spec.channels(4), 4, 4)
  for name, (cin, cout, side, _) in zip(_layer_names(spec),
                                        spec.layer_shapes()):
    shapes.update({
        f"{name}.weight": (cout, cin, 3, 3), f"{name}.bias": (cout,),
        f"{name}.noise_const": (side, side), f"{name}.noise_strength": (),
        f"{name}.affine.weight": (cin, spec.w_dim),
        f"{name}.affine.bias": (cin,),
        f"{name}.resample_filter": (4, 4)})
  for side in spec.block_resolutions:
    c, name = spec.channels(side), f"synthesis.b{side}.torgb"
    shapes.update({f"{name}.weight": (3, c, 1, 1), f"{name}.bias": (3,),
                   f"{name}.affine.weight": (c, spec.w_dim),
                   f"{name}.affine.bias": (c,)})
  return shapes


def _layer_names(spec: stylegan2.StyleGAN2Spec) -> list[str]:
  names = ["synthesis.b4.conv1"]
  for side in spec.block_resolutions[1:]:
    names += [f"synthesis.b{side}.conv0", f"synthesis.b{side}.conv1"]
  return names


def _module(g: torch_pickle.PersistentObject, dotted: str
            ) -> torch_pickle.PersistentObject:
  for part in dotted.split("."):
    g = g.modules[part]
  return g


def _dense(g, name: str, extra_gain: float = 1.0) -> dict[str, np.ndarray]:
  """Effective (kernel [in, out], bias) of a FullyConnectedLayer."""
  layer = _module(g, name)
  tensors = layer.tensors()
  w_gain = _float(layer.state.get("weight_gain", 1.0)) * extra_gain
  b_gain = _float(layer.state.get("bias_gain", 1.0)) * extra_gain
  return {"kernel": (tensors["weight"].astype(np.float64) * w_gain).T.astype(
      np.float32), "bias": (tensors["bias"].astype(np.float64) * b_gain
                            ).astype(np.float32)}


def convert(path: str, g: torch_pickle.PersistentObject,
            spec: stylegan2.StyleGAN2Spec) -> dict[str, Any]:
  """G_ema -> Flax params; UserError names a missing or misshapen tensor."""
  tensors = g.tensors()
  for key, shape in expected_shapes(spec).items():
    if key not in tensors:
      raise errors.UserError(f"{path}: {NETWORK_KEY} has no tensor {key} "
                             f"(expected shape {list(shape)} for {spec})")
    if tuple(tensors[key].shape) != shape:
      raise errors.UserError(f"{path}: {NETWORK_KEY}.{key} has shape "
                             f"{list(tensors[key].shape)}, expected "
                             f"{list(shape)} for {spec}")
  f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
  for key in (k for k in tensors if k.endswith("resample_filter")):
    if tensors[key].shape != (4, 4) or not np.allclose(tensors[key], f):
      raise errors.UserError(f"{path}: {key} is not the [1,3,3,1] filter")
  for i in range(spec.mapping_layers):
    activation = _module(g, f"mapping.fc{i}").state.get("activation")
    if activation != "lrelu":
      raise errors.UserError(f"{path}: mapping.fc{i} activation "
                             f"{activation!r}, only 'lrelu'")

  def f32(key):
    return np.asarray(tensors[key], np.float32)

  layers = {}
  for index, name in enumerate(_layer_names(spec)):
    module_name = name[len("synthesis."):]
    layers[index] = {
        "affine": _dense(g.modules["synthesis"], f"{module_name}.affine"),
        "weight": f32(f"{name}.weight").transpose(2, 3, 1, 0),
        "bias": f32(f"{name}.bias"),
        "noise_strength": f32(f"{name}.noise_strength"),
        "noise_const": f32(f"{name}.noise_const"),
    }
  torgbs = {}
  for index, side in enumerate(spec.block_resolutions):
    torgb = _module(g, f"synthesis.b{side}.torgb")
    gain = _float(_attribute(torgb, "weight_gain", path))
    torgbs[index] = {
        "affine": _dense(torgb, "affine", gain),
        "weight": f32(f"synthesis.b{side}.torgb.weight")[:, :, 0, 0].T,
        "bias": f32(f"synthesis.b{side}.torgb.bias"),
    }
  return {
      "mapping": {"layers": {i: _dense(g, f"mapping.fc{i}")
                             for i in range(spec.mapping_layers)}},
      "w_avg": f32("mapping.w_avg"),
      "const": f32("synthesis.b4.const").transpose(1, 2, 0),
      "layers": layers,
      "torgbs": torgbs,
  }


def read_stylegan2_pickle(path: str
                          ) -> tuple[stylegan2.StyleGAN2Spec, dict[str, Any]]:
  """(spec, params) of the G_ema in an NVlabs .pkl; UserError on a bad file.

  NVlabs' TensorFlow pickles ((G, D, Gs) of dnnlib.tflib Networks) are
  recognised and converted by `stylegan2_tf` (their Gs).
  """
  snapshot = torch_pickle.load_pickle(path, torch_pickle.read_file(path))
  if stylegan2_tf.is_tf_pickle(snapshot):
    return stylegan2_tf.convert(path, snapshot)
  g = _network(path, snapshot)
  spec = spec_from_network(path, g)
  return spec, convert(path, g, spec)
