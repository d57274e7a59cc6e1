"""NVlabs' TensorFlow StyleGAN2 pickles (dnnlib.tflib) -> StyleGAN2 params.

The original StyleGAN2 networks (stylegan2-{ffhq,car,cat,church,horse}-
config-f.pkl, the paper's LSUN-Church among them) are pickles of a
(G, D, Gs) tuple of `dnnlib.tflib.network.Network` states: static_kwargs
(the constructor arguments), variables [(name, numpy array)] and
sub-networks 'mapping' and 'synthesis'. `torch_pickle` reads them with the
same restricted unpickler (the pickled build_module_src is never run); Gs
(the moving average the authors sample from) is converted here with the
name mapping and gains of NVlabs stylegan2-ada-pytorch's legacy.py
(convert_tf_generator), to the effective weights of models/stylegan2.py:

  mapping/Dense{i}/{weight [in, out], bias}  kernel * lrmul/sqrt(in), b * lrmul
  dlatent_avg                                 -> w_avg
  synthesis/4x4/Const/const [1, C, 4, 4]      -> const (HWC)
  synthesis/{r}x{r}/{Conv, Conv0_up, Conv1}/  weight [3, 3, I, O] (HWIO; the
      Conv0_up kernel is flipped: TF's transposed conv), bias,
      noise_strength, mod_weight [w, I] / sqrt(w) -> affine, mod_bias + 1
  synthesis/noise{k} [1, 1, r, r]             -> layers[k].noise_const
  synthesis/{r}x{r}/ToRGB/                    weight [1, 1, I, 3], bias; the
      styles' 1/sqrt(I) gain folded into the affine as for PyTorch pickles
"""
import math
from typing import Any

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import torch_pickle
from gansseg_jax.models import stylegan2

GS_INDEX = 2  # (G, D, Gs): the generator the authors sample from.
_DEFAULTS = {"latent_size": 512, "dlatent_size": 512, "resolution": 1024,
             "mapping_layers": 8, "fmap_base": 16384, "fmap_max": 512,
             "mapping_lrmul": 0.01, "label_size": 0, "num_channels": 3,
             "architecture": "skip", "resample_kernel": [1, 3, 3, 1],
             "mapping_nonlinearity": "lrelu", "nonlinearity": "lrelu",
             "mapping_fmaps": None, "use_noise": True}


def is_tf_pickle(obj: Any) -> bool:
  return (isinstance(obj, tuple) and len(obj) == 3
          and all(isinstance(n, torch_pickle.TFNetwork) for n in obj))


def _variables(net: torch_pickle.TFNetwork, prefix: str = ""
               ) -> dict[str, np.ndarray]:
  out = {prefix + name: np.asarray(value)
         for name, value in getattr(net, "variables", [])}
  for name, component in (getattr(net, "components", None) or {}).items():
    out.update(_variables(component, f"{prefix}{name}/"))
  return out


def _spec(path: str, kwargs: dict) -> tuple[stylegan2.StyleGAN2Spec, float]:
  values = {**_DEFAULTS, **{k: v for k, v in kwargs.items() if v is not None}}
  for key, supported in (("label_size", 0), ("num_channels", 3),
                         ("architecture", "skip"),
                         ("resample_kernel", [1, 3, 3, 1]),
                         ("mapping_nonlinearity", "lrelu"),
                         ("nonlinearity", "lrelu"), ("use_noise", True)):
    if values[key] != supported:
      raise errors.UserError(f"{path}: TensorFlow generator {key} "
                             f"{values[key]!r}, only {supported!r}")
  if values["mapping_fmaps"] not in (None, values["dlatent_size"]):
    raise errors.UserError(f"{path}: mapping_fmaps {values['mapping_fmaps']} "
                           "differs from dlatent_size")
  try:
    spec = stylegan2.StyleGAN2Spec(
        resolution=int(values["resolution"]),
        z_dim=int(values["latent_size"]), w_dim=int(values["dlatent_size"]),
        mapping_layers=int(values["mapping_layers"]),
        channel_base=2 * int(values["fmap_base"]),
        channel_max=int(values["fmap_max"]), conv_clamp=None)
  except ValueError as e:
    raise errors.UserError(f"{path}: unsupported generator ({e})") from e
  return spec, float(values["mapping_lrmul"])


def _tf_names(spec: stylegan2.StyleGAN2Spec) -> list[str]:
  names = ["synthesis/4x4/Conv"]
  for side in spec.block_resolutions[1:]:
    names += [f"synthesis/{side}x{side}/Conv0_up",
              f"synthesis/{side}x{side}/Conv1"]
  return names


def expected_shapes(spec: stylegan2.StyleGAN2Spec) -> dict[str, tuple]:
  """{Gs variable name: shape} that the conversion reads."""
  w = spec.w_dim
  shapes = {"dlatent_avg": (w,),
            "synthesis/4x4/Const/const": (1, spec.channels(4), 4, 4)}
  widths = [spec.z_dim] + [w] * spec.mapping_layers
  for i, (a, b) in enumerate(zip(widths, widths[1:])):
    shapes.update({f"mapping/Dense{i}/weight": (a, b),
                   f"mapping/Dense{i}/bias": (b,)})
  for k, (name, (cin, cout, side, _)) in enumerate(
      zip(_tf_names(spec), spec.layer_shapes())):
    shapes.update({f"{name}/weight": (3, 3, cin, cout), f"{name}/bias": (cout,),
                   f"{name}/noise_strength": (), f"{name}/mod_weight": (w, cin),
                   f"{name}/mod_bias": (cin,),
                   f"synthesis/noise{k}": (1, 1, side, side)})
  for side in spec.block_resolutions:
    c, name = spec.channels(side), f"synthesis/{side}x{side}/ToRGB"
    shapes.update({f"{name}/weight": (1, 1, c, 3), f"{name}/bias": (3,),
                   f"{name}/mod_weight": (w, c), f"{name}/mod_bias": (c,)})
  return shapes


def convert(path: str, networks: tuple) -> tuple[stylegan2.StyleGAN2Spec,
                                                 dict[str, Any]]:
  """(spec, params) of Gs; UserError names a missing or misshapen variable."""
  gs = networks[GS_INDEX]
  spec, lrmul = _spec(path, dict(getattr(gs, "static_kwargs", None) or {}))
  variables = _variables(gs)
  for key, shape in expected_shapes(spec).items():
    if key not in variables:
      raise errors.UserError(f"{path}: Gs has no variable {key} (expected "
                             f"shape {list(shape)} for {spec})")
    if tuple(variables[key].shape) != shape:
      raise errors.UserError(f"{path}: Gs variable {key} has shape "
                             f"{list(variables[key].shape)}, expected "
                             f"{list(shape)}")

  def v(key):
    return variables[key].astype(np.float64)

  def affine(name, gain=1.0):
    return {"kernel": (v(f"{name}/mod_weight") * gain
                       / math.sqrt(spec.w_dim)).astype(np.float32),
            "bias": ((v(f"{name}/mod_bias") + 1) * gain).astype(np.float32)}

  mapping = {}
  for i in range(spec.mapping_layers):
    weight = v(f"mapping/Dense{i}/weight")
    mapping[i] = {
        "kernel": (weight * lrmul / math.sqrt(weight.shape[0])).astype(
            np.float32),
        "bias": (v(f"mapping/Dense{i}/bias") * lrmul).astype(np.float32)}
  layers = {}
  for k, name in enumerate(_tf_names(spec)):
    weight = v(f"{name}/weight")
    if name.endswith("Conv0_up"):
      weight = weight[::-1, ::-1]
    layers[k] = {
        "affine": affine(name), "weight": weight.astype(np.float32),
        "bias": v(f"{name}/bias").astype(np.float32),
        "noise_strength": v(f"{name}/noise_strength").astype(np.float32),
        "noise_const": v(f"synthesis/noise{k}")[0, 0].astype(np.float32)}
  torgbs = {}
  for j, side in enumerate(spec.block_resolutions):
    name = f"synthesis/{side}x{side}/ToRGB"
    c = spec.channels(side)
    torgbs[j] = {"affine": affine(name, 1 / math.sqrt(c)),
                 "weight": v(f"{name}/weight")[0, 0].astype(np.float32),
                 "bias": v(f"{name}/bias").astype(np.float32)}
  return spec, {
      "mapping": {"layers": mapping},
      "w_avg": v("dlatent_avg").astype(np.float32),
      "const": v("synthesis/4x4/Const/const")[0].transpose(1, 2, 0).astype(
          np.float32),
      "layers": layers,
      "torgbs": torgbs,
  }
