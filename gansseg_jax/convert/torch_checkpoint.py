"""The authors' PyTorch generator (BigBiGAN_x1.pth) -> Flax params.

BigBiGAN_x1.pth is the state dict of BigGAN-PyTorch's `Generator` (G_ch 96,
shared_dim 128, hier, G_shared, attention at 64, BN/SN eps 1e-4), which the
authors filled from the TF-Hub module (their tf_tools/). Its keys:

  shared.weight                        [n_classes, shared]  class embeddings
  linear.{weight,bias,u0,sv0}          weight [16*C0, chunk], out in C,H,W order
  blocks.{i}.0.bn{1,2}.{gain,bias}.{weight,u0,sv0}  weight [C, shared+chunk]
  blocks.{i}.0.bn{1,2}.stored_{mean,var}
  blocks.{i}.0.{conv1,conv2,conv_sc}.{weight,bias,u0,sv0}  weight [out, in, k, k]
  blocks.{a}.1.{theta,phi,g,o}.{weight,u0,sv0}, blocks.{a}.1.gamma
  output_layer.0.{gain,bias,stored_mean,stored_var}
  output_layer.2.{weight,bias,u0,sv0}

Differences from the TF layout, undone here: weights are [out, in(, k, k)];
the HyperBN input is [class embedding, z chunk] (TF: [z, class]); the first
linear layer's outputs are reshaped NCHW (TF: NHWC). Spectral normalisation
is BigGAN-PyTorch's eval-mode computation: one power iteration from u0 with
F.normalize (the 'max' form in spectral_norm.py); `sv0` is a training log.
The authors' wrapper (UnconditionalBigGAN) always feeds class 0.
"""
from typing import Any, Mapping

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import spectral_norm
from gansseg_jax.convert import torch_state_dict
from gansseg_jax.models import biggan

UNCONDITIONAL_CLASS = 0  # Row of shared.weight the authors' wrapper uses.
_SN_MODE = "max"  # BigGAN-PyTorch normalises with F.normalize.


def read_state_dict(path: str, field: str) -> dict[str, np.ndarray]:
  """{key: float32 array} of a torch state dict file, read with numpy.

  convert/torch_state_dict.py's reader: nothing in the file runs and torch
  is not needed. `field` is the config field that named `path`; every
  failure is one UserError naming both.
  """
  try:
    state = torch_state_dict.read_torch_state_dict(path)
  except errors.UserError as e:
    raise errors.UserError(f"{field}: {e}") from e
  return {k: np.asarray(v, np.float32) for k, v in state.items()}


def _sn_keys(prefix: str, weight_shape: tuple, bias: bool) -> dict:
  keys = {f"{prefix}.weight": weight_shape,
          f"{prefix}.u0": (1, weight_shape[0])}
  if bias:
    keys[f"{prefix}.bias"] = (weight_shape[0],)
  return keys


def expected_keys(spec: biggan.BigGANSpec) -> dict[str, tuple]:
  """{key: shape} the checkpoint must hold (except shared.weight's rows)."""
  first = spec.block_channels[0][0]
  keys = _sn_keys("linear", (biggan.BOTTOM_WIDTH ** 2 * first,
                             spec.chunk_size), True)
  cond = spec.shared_dim + spec.chunk_size
  for i, (cin, cout) in enumerate(spec.block_channels):
    p = f"blocks.{i}.0"
    for bn, channels in (("bn1", cin), ("bn2", cout)):
      keys.update(_sn_keys(f"{p}.{bn}.gain", (channels, cond), False))
      keys.update(_sn_keys(f"{p}.{bn}.bias", (channels, cond), False))
      keys[f"{p}.{bn}.stored_mean"] = (channels,)
      keys[f"{p}.{bn}.stored_var"] = (channels,)
    keys.update(_sn_keys(f"{p}.conv1", (cout, cin, 3, 3), True))
    keys.update(_sn_keys(f"{p}.conv2", (cout, cout, 3, 3), True))
    keys.update(_sn_keys(f"{p}.conv_sc", (cout, cin, 1, 1), True))
  if spec.attention_block >= 0:
    c, p = spec.attention_channels, f"blocks.{spec.attention_block}.1"
    for name, cout, cin in (("theta", c // 8, c), ("phi", c // 8, c),
                            ("g", c // 2, c), ("o", c, c // 2)):
      keys.update(_sn_keys(f"{p}.{name}", (cout, cin, 1, 1), False))
    keys[f"{p}.gamma"] = ()
  last = spec.block_channels[-1][1]
  for name in ("gain", "bias", "stored_mean", "stored_var"):
    keys[f"output_layer.0.{name}"] = (last,)
  keys.update(_sn_keys("output_layer.2", (3, last, 3, 3), True))
  return keys


def _sn_tf_layout(state, prefix: str, eps: float) -> np.ndarray:
  """W / sigma moved to TF layout ([k, k, in, out] or [in, out])."""
  w = state[f"{prefix}.weight"]
  w_tf = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T
  return spectral_norm.spectral_normalize(w_tf, state[f"{prefix}.u0"], eps,
                                          _SN_MODE)


def convert(spec: biggan.BigGANSpec, state: Mapping[str, np.ndarray],
            sn_eps: float, where: str) -> tuple[dict[str, Any], dict[str, str]]:
  """(Flax params, {unused key: reason}); UserError names a bad key."""
  expected = expected_keys(spec)
  shared = state.get("shared.weight")
  if shared is None or shared.ndim != 2 or shared.shape[1] != spec.shared_dim:
    found = None if shared is None else list(shared.shape)
    raise errors.UserError(f"{where}: key shared.weight missing or not "
                           f"[n_classes, {spec.shared_dim}] ({found})")
  for key, shape in expected.items():
    if key not in state:
      raise errors.UserError(f"{where}: key {key} is missing (expected "
                             f"shape {list(shape)} for {spec})")
    if not bigbigan_names.same_shape(state[key].shape, shape):
      raise errors.UserError(
          f"{where}: key {key} has shape {list(state[key].shape)}, "
          f"expected {list(shape)}")
  unused = {}
  for key in state:
    if key in expected or key == "shared.weight":
      continue
    if key.endswith(".sv0"):
      unused[key] = "singular value logged in training"
      continue
    raise errors.UserError(f"{where}: key {key} is not mapped to the "
                           "generator and not on the unused list")

  first = spec.block_channels[0][0]
  side = biggan.BOTTOM_WIDTH
  kernel = _sn_tf_layout(state, "linear", sn_eps)  # [chunk, C0*H*W]
  kernel = kernel.reshape(spec.chunk_size, first, side, side).transpose(
      0, 2, 3, 1).reshape(spec.chunk_size, -1)
  bias = state["linear.bias"].reshape(first, side, side).transpose(
      1, 2, 0).reshape(-1)
  params: dict[str, Any] = {
      "embedding": shared[UNCONDITIONAL_CLASS].astype(np.float32),
      "z_linear": {"kernel": kernel, "bias": bias},
      "blocks": {},
  }

  def z_first(w):  # [shared + chunk, C] -> [chunk + shared, C]
    return np.concatenate([w[spec.shared_dim:], w[:spec.shared_dim]], axis=0)

  for i in range(spec.num_blocks):
    p = f"blocks.{i}.0"
    block = {}
    for bn, dest in (("bn1", "bn0"), ("bn2", "bn1")):
      block[dest] = {
          "gamma_kernel": z_first(_sn_tf_layout(state, f"{p}.{bn}.gain",
                                                sn_eps)),
          "beta_kernel": z_first(_sn_tf_layout(state, f"{p}.{bn}.bias",
                                               sn_eps)),
          "mean": state[f"{p}.{bn}.stored_mean"].reshape(-1),
          "var": state[f"{p}.{bn}.stored_var"].reshape(-1),
      }
    for conv, dest in (("conv1", "conv0"), ("conv2", "conv1"),
                       ("conv_sc", "conv_sc")):
      block[dest] = {"kernel": _sn_tf_layout(state, f"{p}.{conv}", sn_eps),
                     "bias": state[f"{p}.{conv}.bias"].reshape(-1)}
    params["blocks"][i] = block
  if spec.attention_block >= 0:
    p = f"blocks.{spec.attention_block}.1"
    params["attention"] = {
        name: {"kernel": _sn_tf_layout(state, f"{p}.{key}", sn_eps)}
        for name, key in (("theta", "theta"), ("phi", "phi"), ("g", "g"),
                          ("o_conv", "o"))}
    params["attention"]["gamma"] = state[f"{p}.gamma"].reshape(())
  params["out_bn"] = {
      "scale": state["output_layer.0.gain"].reshape(-1),
      "offset": state["output_layer.0.bias"].reshape(-1),
      "mean": state["output_layer.0.stored_mean"].reshape(-1),
      "var": state["output_layer.0.stored_var"].reshape(-1),
  }
  params["out_conv"] = {
      "kernel": _sn_tf_layout(state, "output_layer.2", sn_eps),
      "bias": state["output_layer.2.bias"].reshape(-1)}
  return params, unused
