"""A PyTorch DCGAN-tutorial generator's state dict -> models/dcgan.py params.

The file (config.generator.checkpoint) is read by torch_state_dict.py: a
torch.save file of any extension, or a wheel (zip) holding one; the state
dict may be the saved object itself or nested under any key
(`netG_state_dict`, `generator`, ...). Of all the state dicts in the file,
the one that parses as a DCGAN generator is used; none or several is an
error.

Layers are matched by order and shape, not by name: the keys are grouped
into modules by their prefix (`main.3` of `main.3.weight`, `bn1` of
`bn1.running_mean`), in the order of the state dict (torch's module order,
i.e. the forward order of an `nn.Sequential` or of layers declared in the
order they run). The modules must alternate

  ConvTranspose2d  weight [in, out, 4, 4] (optional bias [out])
  BatchNorm2d      running_mean, running_var [out] (optional weight, bias
                   [out]; num_batches_tracked is ignored)

starting and ending with a ConvTranspose2d: the first reads the latent
(in = nz), each reads what the one before made, the last makes 3 (RGB) or 1
(gray) channels. ReLU and tanh have no tensors; the kernel side must be 4,
and the strides and paddings, which no state dict stores, are the
tutorial's (1, 0) for the first layer and (2, 1) for the others
(models/dcgan.py). Anything else is refused with the first tensor that does
not fit. Kernels are stored flipped and in HWIO order (models/dcgan.py).
"""
from typing import Any, Optional

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import torch_state_dict
from gansseg_jax.models import dcgan

_CONV = ("weight", "bias")
_NORM = ("weight", "bias", "running_mean", "running_var",
         "num_batches_tracked")


class NotDCGAN(ValueError):
  """A state dict that is not a DCGAN generator; the message names a key."""


def _modules(state: dict[str, np.ndarray]) -> list[tuple[str, dict]]:
  """[(prefix, {parameter name: key})] in the order of first appearance."""
  modules: dict[str, dict[str, str]] = {}
  for key in state:
    prefix, _, name = key.rpartition(".")
    modules.setdefault(prefix, {})[name] = key
  return list(modules.items())


def _shape(state, key) -> list[int]:
  return list(np.shape(state[key]))


def _conv(state, names: dict, index: int, cin: Optional[int]) -> tuple:
  """(weight key, bias key or None) of a ConvTranspose2d that reads cin."""
  weight = names.get("weight")
  for name, key in names.items():
    if name not in _CONV:
      raise NotDCGAN(f"{key} is not a ConvTranspose2d weight or bias "
                     f"(DCGAN layer {index + 1})")
  if weight is None:
    raise NotDCGAN(f"{names['bias']} has no ConvTranspose2d weight beside "
                   f"it (DCGAN layer {index + 1})")
  shape = _shape(state, weight)
  k = dcgan.KERNEL
  want = f"[{'nz' if cin is None else cin}, out, {k}, {k}]"
  if (len(shape) != 4 or shape[2:] != [dcgan.KERNEL] * 2
      or (cin is not None and shape[0] != cin) or min(shape) < 1):
    raise NotDCGAN(f"{weight} has shape {shape}; DCGAN layer {index + 1} "
                   f"is a ConvTranspose2d weight {want}")
  bias = names.get("bias")
  if bias is not None and _shape(state, bias) != [shape[1]]:
    raise NotDCGAN(f"{bias} has shape {_shape(state, bias)}, not "
                   f"[{shape[1]}] (bias of {weight})")
  return weight, bias


def _norm(state, names: dict, channels: int, after: str) -> dict[str, str]:
  """{parameter name: key} of a BatchNorm2d over `channels`."""
  for name, key in names.items():
    if name not in _NORM:
      raise NotDCGAN(f"{key} is not a BatchNorm2d tensor (expected the "
                     f"BatchNorm2d of {channels} channels after {after})")
  for name in ("running_mean", "running_var"):
    if name not in names:
      some = next(iter(names.values()))
      raise NotDCGAN(f"{some}: no {name} beside it; expected the "
                     f"BatchNorm2d of {channels} channels after {after} "
                     "(with running statistics)")
  for name, key in names.items():
    if name != "num_batches_tracked" and _shape(state, key) != [channels]:
      raise NotDCGAN(f"{key} has shape {_shape(state, key)}; expected "
                     f"[{channels}] (BatchNorm2d after {after})")
  if np.any(np.asarray(state[names["running_var"]]) < 0):
    raise NotDCGAN(f"{names['running_var']} has negative variances")
  return names


def parse(state: dict[str, np.ndarray], output: str = "tanh"
          ) -> tuple[dcgan.DCGANSpec, dict[str, Any]]:
  """(spec, params) of a DCGAN generator state dict; NotDCGAN names the key.

  output: the output nonlinearity (config.generator.output_activation).
  """
  for key, value in state.items():
    if not np.all(np.isfinite(value)):
      raise NotDCGAN(f"{key} holds values that are not finite")
  modules = _modules(state)
  convs: list[tuple[str, Optional[str]]] = []
  norms: list[dict[str, str]] = []
  cin = None
  for position, (_, names) in enumerate(modules):
    if position % 2 == 0:
      convs.append(_conv(state, names, len(convs), cin))
      cin = _shape(state, convs[-1][0])[1]
    else:
      norms.append(_norm(state, names, cin, convs[-1][0]))
  if not convs:
    raise NotDCGAN("no tensors")
  if len(convs) == len(norms):
    last = next(iter(modules[-1][1].values()))
    raise NotDCGAN(f"{last}: the state dict ends with a BatchNorm2d; a DCGAN "
                   "generator ends with a ConvTranspose2d to 3 or 1 channels")
  if len(convs) < 2 or cin not in dcgan.OUT_CHANNELS:
    raise NotDCGAN(f"{convs[-1][0]} has shape {_shape(state, convs[-1][0])}; "
                   "the last ConvTranspose2d of a DCGAN generator (at least "
                   f"two) makes {' or '.join(map(str, dcgan.OUT_CHANNELS))} "
                   "channels")
  nz = _shape(state, convs[0][0])[0]
  widths = tuple(_shape(state, w)[1] for w, _ in convs[:-1])
  spec = dcgan.DCGANSpec(z_dim=nz, widths=widths, out_channels=cin,
                         output=output)
  as32 = lambda key: np.asarray(state[key], np.float32)
  params: dict[str, Any] = {"convs": {}, "norms": {}}
  for i, (weight, bias) in enumerate(convs):
    kernel = as32(weight)  # [in, out, kh, kw]
    params["convs"][i] = {
        "kernel": np.ascontiguousarray(
            kernel.transpose(2, 3, 0, 1)[::-1, ::-1]),
        "bias": (as32(bias) if bias is not None
                 else np.zeros(kernel.shape[1], np.float32))}
  for i, names in enumerate(norms):
    channels = widths[i]
    params["norms"][i] = {
        "scale": (as32(names["weight"]) if "weight" in names
                  else np.ones(channels, np.float32)),
        "offset": (as32(names["bias"]) if "bias" in names
                   else np.zeros(channels, np.float32)),
        "mean": as32(names["running_mean"]),
        "var": as32(names["running_var"])}
  return spec, params


def read_dcgan(path: str, output: str = "tanh"
               ) -> tuple[dcgan.DCGANSpec, dict[str, Any], str]:
  """(spec, params, where) of the one DCGAN generator in the file `path`.

  where: the state dict's place ('netG_state_dict', 'file.whl!w.tar:netG').
  UserError when none or several state dicts parse (the message names, for
  a state dict that does not, the first tensor that does not fit).
  """
  found = []
  for where, obj in torch_state_dict.read_torch_objects(path):
    for name, state in torch_state_dict.state_dicts(obj):
      label = torch_state_dict.label(path, where, name)
      try:
        found.append((label, *parse(state, output)))
      except NotDCGAN as e:
        found.append((label, e))
  hits = [entry for entry in found if len(entry) == 3]
  if len(hits) == 1:
    label, spec, params = hits[0]
    return spec, params, label
  if hits:
    raise errors.UserError(
        f"{path}: several state dicts are DCGAN generators "
        f"({', '.join(label for label, *_ in hits)}); keep one in the file")
  if not found:
    raise errors.UserError(f"{path}: holds no state dict (a dict of tensors)")
  reasons = "; ".join(f"{label}: {e}" if label != "(top level)" else str(e)
                      for label, e in found)
  raise errors.UserError(f"{path}: not a DCGAN generator ({reasons})")
