"""rosinality/stylegan2-pytorch `.pt` checkpoints -> StyleGAN2 params.

Its train.py saves {'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args', ...}
and its convert_weight.py (the official TF weights) {'g_ema', 'latent_avg'},
both with torch.save. The file is read with numpy and zipfile only
(`torch_pickle.load_torch_zip`: a restricted unpickler, no code from the file
runs, torch not needed). The 'g_ema' state dict (model.py Generator):

  style.{1..n}.{weight [w, w], bias}    EqualLinear, lr_mul LR_MLP (0.01,
      Generator's lr_mlp, not stored): kernel = (weight * lr_mul/sqrt(in)).T,
      bias * lr_mul
  input.input [1, C, 4, 4]              -> const
  conv1.*, convs.{k}.*                  -> layers[0], layers[k + 1]
      conv.weight [1, O, I, 3, 3] * 1/sqrt(I 9) -> weight (HWIO)
      conv.modulation.{weight [I, w], bias} * 1/sqrt(w) -> affine
      noise.weight [1] -> noise_strength; activate.bias -> bias
  noises.noise_{l} [1, 1, r, r]         -> layers[l].noise_const
  to_rgb1.*, to_rgbs.{j}.*              -> torgbs[0], torgbs[j + 1]
      conv.weight [1, 3, I, 1, 1] * 1/sqrt(I) -> weight [I, 3]; bias [1,3,1,1]

Widths follow rosinality's table (512 up to 32 px, then 256 m, 128 m, ... for
channel_multiplier m), i.e. min(16384 m / side, 512); the converter reads
them from the weight shapes and finds channel_base / channel_max.
w_avg: the checkpoint's 'latent_avg' when present (convert_weight.py), else
the mean of the mapping over W_AVG_SAMPLES N(0, I) draws (seed W_AVG_SEED),
as its generate.py computes `mean_latent(4096)`.
"""
import math
import re
from typing import Any

import jax
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import torch_pickle
from gansseg_jax.models import stylegan2

NETWORK_KEY = "g_ema"
LR_MLP = 0.01  # Generator(lr_mlp=0.01): the mapping's learning-rate multiplier.
W_AVG_SAMPLES = 4096
W_AVG_SEED = 0
_FILTER = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0


def _state_dict(path: str, checkpoint: Any) -> dict[str, np.ndarray]:
  if not isinstance(checkpoint, dict) or not isinstance(
      checkpoint.get(NETWORK_KEY), dict):
    keys = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else (
        type(checkpoint).__name__)
    raise errors.UserError(f"{path}: no '{NETWORK_KEY}' state dict in the "
                           f"checkpoint (found {keys})")
  state = checkpoint[NETWORK_KEY]
  for key, value in state.items():
    if not isinstance(value, np.ndarray):
      raise errors.UserError(f"{path}: {NETWORK_KEY}.{key} is not a tensor")
  return state


def infer_spec(path: str, state: dict[str, np.ndarray]
               ) -> stylegan2.StyleGAN2Spec:
  """The spec from the state dict's names and shapes; UserError if unusable."""
  for key in ("style.1.weight", "input.input", "conv1.conv.weight"):
    if key not in state:
      raise errors.UserError(f"{path}: {NETWORK_KEY} has no {key}; not a "
                             "rosinality stylegan2-pytorch generator")
  mapping_layers = len([k for k in state
                        if re.fullmatch(r"style\.\d+\.weight", k)])
  to_rgbs = len([k for k in state if re.fullmatch(r"to_rgbs\.\d+\.bias", k)])
  resolution = 4 * 2 ** to_rgbs
  widths = {4: state["input.input"].shape[1]}
  for j in range(to_rgbs):
    key = f"convs.{2 * j}.conv.weight"
    if key not in state or state[key].ndim != 5:
      raise errors.UserError(f"{path}: {NETWORK_KEY}.{key} missing or not "
                             "[1, out, in, 3, 3]")
    widths[8 * 2 ** j] = state[key].shape[1]
  channel_max = max(widths.values())
  below = [side * c for side, c in widths.items() if c < channel_max]
  channel_base = min(below) if below else channel_max * resolution
  if any(min(channel_base // s, channel_max) != c for s, c in widths.items()):
    raise errors.UserError(f"{path}: widths {widths} do not follow "
                           "min(channel_base / side, channel_max)")
  w_dim = state["style.1.weight"].shape[1]
  try:
    return stylegan2.StyleGAN2Spec(
        resolution=resolution, z_dim=w_dim, w_dim=w_dim,
        mapping_layers=mapping_layers, channel_base=channel_base,
        channel_max=channel_max, conv_clamp=None)
  except ValueError as e:
    raise errors.UserError(f"{path}: unsupported generator ({e})") from e


def _names(spec: stylegan2.StyleGAN2Spec) -> tuple[list[str], list[str]]:
  layers = ["conv1"] + [f"convs.{k}" for k in range(spec.num_layers - 1)]
  torgbs = ["to_rgb1"] + [f"to_rgbs.{j}"
                          for j in range(len(spec.block_resolutions) - 1)]
  return layers, torgbs


def expected_shapes(spec: stylegan2.StyleGAN2Spec) -> dict[str, tuple]:
  """{g_ema key: shape} that the conversion reads."""
  w = spec.w_dim
  shapes = {"input.input": (1, spec.channels(4), 4, 4)}
  for i in range(1, spec.mapping_layers + 1):
    shapes.update({f"style.{i}.weight": (w, w), f"style.{i}.bias": (w,)})
  layer_names, torgb_names = _names(spec)
  for index, (name, (cin, cout, side, up)) in enumerate(
      zip(layer_names, spec.layer_shapes())):
    shapes.update({
        f"{name}.conv.weight": (1, cout, cin, 3, 3),
        f"{name}.conv.modulation.weight": (cin, w),
        f"{name}.conv.modulation.bias": (cin,),
        f"{name}.noise.weight": (1,), f"{name}.activate.bias": (cout,),
        f"noises.noise_{index}": (1, 1, side, side)})
    if up:
      shapes[f"{name}.conv.blur.kernel"] = (4, 4)
  for index, (name, side) in enumerate(zip(torgb_names,
                                           spec.block_resolutions)):
    c = spec.channels(side)
    shapes.update({f"{name}.conv.weight": (1, 3, c, 1, 1),
                   f"{name}.conv.modulation.weight": (c, w),
                   f"{name}.conv.modulation.bias": (c,),
                   f"{name}.bias": (1, 3, 1, 1)})
    if index:
      shapes[f"{name}.upsample.kernel"] = (4, 4)
  return shapes


def _check(path: str, state: dict, spec: stylegan2.StyleGAN2Spec) -> None:
  expected = expected_shapes(spec)
  for key, shape in expected.items():
    if key not in state:
      raise errors.UserError(f"{path}: {NETWORK_KEY} has no {key} (expected "
                             f"shape {list(shape)} for {spec})")
    if tuple(state[key].shape) != shape:
      raise errors.UserError(f"{path}: {NETWORK_KEY}.{key} has shape "
                             f"{list(state[key].shape)}, expected "
                             f"{list(shape)}")
  for key in state:
    if key not in expected:
      raise errors.UserError(f"{path}: {NETWORK_KEY}.{key} is not a tensor of "
                             f"the generator {spec}")
  for key in (k for k in expected if k.endswith(".kernel")):
    gain = 4.0 if "upsample" in key or "blur" in key else 1.0
    if not np.allclose(state[key], _FILTER * gain):
      raise errors.UserError(f"{path}: {NETWORK_KEY}.{key} is not the "
                             "[1,3,3,1] filter")


def _equal_linear(state: dict, name: str, lr_mul: float = 1.0
                  ) -> dict[str, np.ndarray]:
  weight = state[f"{name}.weight"].astype(np.float64)
  scale = lr_mul / math.sqrt(weight.shape[1])
  return {"kernel": (weight * scale).T.astype(np.float32),
          "bias": (state[f"{name}.bias"] * lr_mul).astype(np.float32)}


def convert(path: str, state: dict[str, np.ndarray],
            spec: stylegan2.StyleGAN2Spec) -> dict[str, Any]:
  """g_ema state dict -> Flax params (w_avg zero: `read_*` fills it)."""
  _check(path, state, spec)
  layer_names, torgb_names = _names(spec)
  layers = {}
  for index, name in enumerate(layer_names):
    weight = state[f"{name}.conv.weight"][0].astype(np.float64)
    layers[index] = {
        "affine": _equal_linear(state, f"{name}.conv.modulation"),
        "weight": (weight / math.sqrt(weight[0].size)).transpose(
            2, 3, 1, 0).astype(np.float32),
        "bias": state[f"{name}.activate.bias"].astype(np.float32),
        "noise_strength": state[f"{name}.noise.weight"].reshape(()).astype(
            np.float32),
        "noise_const": state[f"noises.noise_{index}"][0, 0].astype(np.float32),
    }
  torgbs = {}
  for index, name in enumerate(torgb_names):
    weight = state[f"{name}.conv.weight"][0, :, :, 0, 0].astype(np.float64)
    torgbs[index] = {
        "affine": _equal_linear(state, f"{name}.conv.modulation"),
        "weight": (weight / math.sqrt(weight.shape[1])).T.astype(np.float32),
        "bias": state[f"{name}.bias"].reshape(3).astype(np.float32),
    }
  return {
      "mapping": {"layers": {
          i: _equal_linear(state, f"style.{i + 1}", LR_MLP)
          for i in range(spec.mapping_layers)}},
      "w_avg": np.zeros(spec.w_dim, np.float32),
      "const": state["input.input"][0].transpose(1, 2, 0).astype(np.float32),
      "layers": layers,
      "torgbs": torgbs,
  }


def _w_avg(path: str, checkpoint: dict, spec: stylegan2.StyleGAN2Spec,
           params: dict[str, Any]) -> np.ndarray:
  latent_avg = checkpoint.get("latent_avg")
  if latent_avg is not None:
    if not isinstance(latent_avg, np.ndarray) or latent_avg.size != spec.w_dim:
      raise errors.UserError(f"{path}: latent_avg is not a [{spec.w_dim}] "
                             "tensor")
    return latent_avg.reshape(spec.w_dim).astype(np.float32)
  z = np.random.default_rng(W_AVG_SEED).standard_normal(
      (W_AVG_SAMPLES, spec.z_dim)).astype(np.float32)
  w = jax.jit(stylegan2.make_mapping(spec))(params, z)
  return np.asarray(w).mean(axis=0)


def read_stylegan2_rosinality(path: str
                              ) -> tuple[stylegan2.StyleGAN2Spec,
                                         dict[str, Any]]:
  """(spec, params) of the g_ema in a rosinality .pt; UserError if bad."""
  checkpoint = torch_pickle.load_torch_zip(path, torch_pickle.read_file(path))
  state = _state_dict(path, checkpoint)
  spec = infer_spec(path, state)
  params = convert(path, state, spec)
  params["w_avg"] = _w_avg(path, checkpoint, spec, params)
  return spec, params
