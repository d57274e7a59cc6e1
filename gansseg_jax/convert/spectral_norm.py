"""Spectral normalisation as the TF-Hub module computes it at inference.

docs/method.md section 1: W is read as a matrix [fan_in, out]
(a conv kernel [k, k, in, out] becomes [k*k*in, out]); one power iteration
from the stored u0 [1, out]:

  v = normalize(u0 W^T),  u = normalize(v W),  sigma = v W u^T,  W_sn = W / sigma

The converter applies this once, so the Flax forward pass has no SN cost.
`normalize` is x / max(||x||, eps) ('max', PyTorch's F.normalize, used by
BigGAN-PyTorch) or x / (||x|| + eps) ('add'); the two differ by ~eps/||x||,
which matters at a 1e-4 tolerance, so the converter can test both against the
module's own outputs.
"""
import numpy as np

NORMALIZE_MODES = ("max", "add")


def l2_normalize(x: np.ndarray, eps: float, mode: str) -> np.ndarray:
  """x / max(||x||, eps) for 'max', x / (||x|| + eps) for 'add'."""
  norm = np.sqrt(np.sum(np.square(x)))
  if mode == "max":
    return x / max(norm, eps)
  if mode == "add":
    return x / (norm + eps)
  raise ValueError(f"normalize mode {mode!r} is not one of {NORMALIZE_MODES}")


def singular_value(w: np.ndarray, u0: np.ndarray, eps: float,
                   mode: str) -> float:
  """sigma of W (TF layout, last axis = out) after one iteration from u0."""
  mat = np.asarray(w, np.float64).reshape(-1, w.shape[-1])
  u = np.asarray(u0, np.float64).reshape(1, mat.shape[1])
  v = l2_normalize(u @ mat.T, eps, mode)
  u = l2_normalize(v @ mat, eps, mode)
  return float((v @ mat @ u.T)[0, 0])


def spectral_normalize(w: np.ndarray, u0: np.ndarray, eps: float,
                       mode: str) -> np.ndarray:
  """W / sigma as float32 (see module docstring)."""
  sigma = singular_value(w, u0, eps, mode)
  return (np.asarray(w, np.float64) / sigma).astype(np.float32)
