"""PyTorch state dicts read with numpy only: the tool for generator plug-ins.

  from gansseg_jax.convert import read_torch_state_dict
  state = read_torch_state_dict("G.pth")                    # {name: array}
  state = read_torch_state_dict("ckpt.tar", key="netG_state_dict")

A file is a `torch.save` file (the zip format of torch >= 1.6 or the legacy
stream, any extension) or a zip archive such as a wheel that holds torch
files (`.pt`, `.pth`, `.tar`, `.ckpt`, `.bin` members). Nothing in it is
executed: convert/torch_pickle.py's restricted unpickler turns tensors into
numpy arrays and refuses every other global, so torch is not needed.

A *state dict* is a non-empty dict of str -> array (what
`module.state_dict()` returns). Checkpoints often nest one under a key
(`{"netG_state_dict": ..., "optimizerG_state_dict": ...}`); `state_dicts`
lists every one in a file with its key path, `read_torch_state_dict` returns
the one `key` names, or the only one there is.
"""
import io
import zipfile
from typing import Any, Iterator, Optional

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import torch_pickle

# Members of a zip archive (a wheel) read as torch files.
TORCH_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt", ".bin")
KEY_SEPARATOR = "/"  # Between the keys of a nested path: 'model/netG'.


def _is_torch_zip(archive: zipfile.ZipFile) -> bool:
  return any(name.count("/") == 1 and name.endswith("/data.pkl")
             for name in archive.namelist())


def read_torch_objects(path: str) -> list[tuple[str, Any]]:
  """[(where, object)] of the torch file `path`, or of each in a zip archive.

  `where` is `path`, or `path!member` for a member of an archive (a wheel).
  A member that is not a readable torch file is skipped; an archive with
  none is a UserError, as is an unreadable file.
  """
  data = torch_pickle.read_file(path)
  if zipfile.is_zipfile(io.BytesIO(data)):
    archive = zipfile.ZipFile(io.BytesIO(data))
    if not _is_torch_zip(archive):
      found, skipped = [], []
      for member in archive.namelist():
        if not member.endswith(TORCH_SUFFIXES):
          continue
        where = f"{path}!{member}"
        try:
          found.append((where, torch_pickle.load_torch_zip(
              where, archive.read(member))))
        except errors.UserError:
          skipped.append(member)
      if not found:
        raise errors.UserError(
            f"{path}: a zip archive with no readable torch file among its "
            f"{'/'.join(TORCH_SUFFIXES)} members (tried {skipped or 'none'})")
      return found
  return [(path, torch_pickle.load_torch_zip(path, data))]


def is_state_dict(value: Any) -> bool:
  return (isinstance(value, dict) and bool(value)
          and all(isinstance(k, str) and isinstance(v, np.ndarray)
                  for k, v in value.items()))


def state_dicts(obj: Any, prefix: str = "") -> Iterator[tuple[str, dict]]:
  """(key path, state dict) of `obj` and of every dict nested in it."""
  if is_state_dict(obj):
    yield prefix, obj
  elif isinstance(obj, dict):
    for key, value in obj.items():
      yield from state_dicts(
          value, f"{prefix}{KEY_SEPARATOR}{key}" if prefix else str(key))


def label(path: str, where: str, name: str) -> str:
  """How messages name the state dict at key path `name` of `where`."""
  name = name or "(top level)"
  return name if where == path else f"{where}:{name}"


def _copy(state: dict) -> dict[str, np.ndarray]:
  return {k: np.ascontiguousarray(v) for k, v in state.items()}


def read_torch_state_dict(path: str, key: Optional[str] = None
                          ) -> dict[str, np.ndarray]:
  """{name: numpy array} of a state dict in the torch file (or wheel) `path`.

  key: the state dict's key path in the saved object ('netG_state_dict', or
  'a/b' nested); None: the file's only state dict. Arrays keep their dtype
  (bfloat16 tensors come as float32). Every failure is one UserError
  naming `path`: unreadable, a global it refuses, no such key, or no single
  state dict (the message lists the key paths found).
  """
  found = [(where, name, state)
           for where, obj in read_torch_objects(path)
           for name, state in state_dicts(obj)]
  names = [label(path, where, name) for where, name, _ in found]
  if key is not None:
    hits = [state for _, name, state in found if name == key]
    if len(hits) != 1:
      raise errors.UserError(
          f"{path}: {'no' if not hits else 'more than one'} state dict under "
          f"key {key!r} (state dicts: {names or 'none'})")
    return _copy(hits[0])
  if len(found) != 1:
    raise errors.UserError(
        f"{path}: {len(found)} state dicts ({names or 'none'}); name one "
        "with key=")
  return _copy(found[0][2])
