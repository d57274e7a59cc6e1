"""Reading a direction file: the authors' bg_direction.pth or a .npy.

`config.directions.source = 'file'`: the file holds one direction ([z_dim]
or [1, z_dim]) or several ([K, z_dim]); the result is always [K, z_dim]
float32. A .pth (or .pt) may hold a tensor or a dict with exactly one
tensor; it is read with numpy (convert/torch_state_dict.py), torch is not
needed.
"""
import os

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import torch_state_dict


def _load_pth(path: str) -> np.ndarray:
  """The one tensor of a torch file (bare, or the only one in a dict)."""
  try:
    (where, value), = torch_state_dict.read_torch_objects(path)
  except errors.UserError as e:
    raise errors.UserError(f"config.directions.file: {e}") from e
  except ValueError as e:  # A zip archive of several torch files.
    raise errors.UserError(
        f"config.directions.file: {path} holds several torch files; "
        "expected one direction tensor") from e
  if isinstance(value, dict):
    tensors = [v for v in value.values() if isinstance(v, np.ndarray)]
    if len(tensors) != 1:
      raise errors.UserError(
          f"config.directions.file: {where} holds a dict with {len(tensors)} "
          "tensors; expected one direction tensor")
    value = tensors[0]
  if not isinstance(value, np.ndarray):
    raise errors.UserError(
        f"config.directions.file: {where} holds a {type(value).__name__}, "
        "not a tensor")
  return value.astype(np.float32)


def load_directions(path: str, z_dim: int) -> np.ndarray:
  """Directions [K, z_dim] float32 from a .pth or .npy file (else UserError)."""
  if not path:
    raise errors.UserError(
        "config.directions.file: empty; source='file' needs a .pth or .npy "
        "path")
  if not os.path.isfile(path):
    raise errors.UserError(f"config.directions.file: {path}: no such file")
  if path.endswith(".pth") or path.endswith(".pt"):
    value = _load_pth(path)
  elif path.endswith(".npy"):
    try:
      value = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
      raise errors.UserError(
          f"config.directions.file: {path} is not a readable .npy array "
          f"({e})") from e
  else:
    raise errors.UserError(
        f"config.directions.file: {path} must end in .pth, .pt or .npy")
  value = np.asarray(value)
  if value.ndim == 1:
    value = value[None]
  if value.ndim != 2 or value.shape[1] != z_dim:
    raise errors.UserError(
        f"config.directions.file: {path} has shape {list(value.shape)}; "
        f"expected [{z_dim}] or [K, {z_dim}] (config.generator.z_dim)")
  value = value.astype(np.float32)
  norms = np.linalg.norm(value, axis=1)
  if not np.all(np.isfinite(norms)) or np.any(norms == 0):
    raise errors.UserError(
        f"config.directions.file: {path} holds a zero or non-finite direction")
  return value
