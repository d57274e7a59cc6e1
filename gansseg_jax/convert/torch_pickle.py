"""Reading PyTorch pickles with numpy only, executing nothing from the file.

(NVlabs' TensorFlow network pickles, dnnlib.tflib Networks holding numpy
variables, read with the same restrictions.)

Two containers hold the checkpoints the converters read:
- a plain pickle (NVlabs stylegan2-ada-pytorch / stylegan3 `.pkl`): modules
  of the authors' `torch_utils.persistence` classes, each pickled as
  `_reconstruct_persistent_obj(meta)` with meta = {class_name, module_src,
  state = the module's __dict__}; every torch storage inside is pickled as
  `torch.storage._load_from_bytes(b)` with b a legacy `torch.save` stream;
- a `torch.save` zip (rosinality `.pt`): `<dir>/data.pkl` whose storages are
  persistent ids ('storage', <dtype>Storage, key, location, numel) naming
  the raw little-endian bytes in `<dir>/data/<key>`.
A legacy `torch.save` stream (torch < 1.6 files and the storages above) is
five pickles in a row: magic number, protocol version, system info, the
object (persistent ids ('storage', type, key, location, numel, view)), the
list of storage keys; then per key an int64 element count and the raw bytes.

`RestrictedUnpickler.find_class` resolves only the names in `_ALLOWED`, each
to an inert stand-in (a persistent module becomes a `PersistentObject`
holding its class name and state, the pickled source code is never run;
tensors become numpy arrays); any other global — os.system, builtins.eval,
the authors' own functions — raises `RefusedGlobal`. `load_pickle` and
`load_torch_zip` turn every failure into `errors.UserError` naming the file.
"""
import collections
import io
import pickle
import struct
import zipfile
from typing import Any, Callable

import numpy as np

from gansseg_jax.infra import errors

# torch storage class name -> numpy dtype of its elements.
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64,
    "HalfStorage": np.float16, "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch.serialization.MAGIC_NUMBER


class RefusedGlobal(pickle.UnpicklingError):
  """The pickle names a global that is not on the allow list."""


class PersistentObject:
  """An instance of an NVlabs persistent class: its name and its __dict__."""

  def __init__(self, class_name: str, state: dict):
    self.class_name = class_name
    self.state = state

  @property
  def modules(self) -> dict:
    return dict(self.state.get("_modules") or {})

  def tensors(self, prefix: str = "") -> dict[str, np.ndarray]:
    """{dotted name: array} of every parameter and buffer, like state_dict."""
    out = {}
    for group in ("_parameters", "_buffers"):
      for name, value in (self.state.get(group) or {}).items():
        if value is not None:
          out[prefix + name] = value
    for name, module in self.modules.items():
      if isinstance(module, PersistentObject):
        out.update(module.tensors(f"{prefix}{name}."))
    return out


class TFNetwork:
  """Stand-in for dnnlib.tflib.network.Network (NVlabs' TensorFlow pickles):
  its state {version, name, static_kwargs, components, variables [(name,
  array)], build_module_src (never run), ...} lands in __dict__."""


class Namespace:
  """Stand-in for argparse.Namespace (its attributes only)."""


class StandInDict(dict):
  """Stand-in for dnnlib.EasyDict (a dict with attribute access)."""


class StorageType:
  """Stand-in for a torch <dtype>Storage class named in a persistent id."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = STORAGE_DTYPES[name]


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
  if not isinstance(meta, dict) or meta.get("type") != "class":
    raise pickle.UnpicklingError("persistent object metadata is not a class")
  return PersistentObject(str(meta.get("class_name")),
                          dict(meta.get("state") or {}))


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride,
                    *unused) -> np.ndarray:
  """The strided view of `storage` that torch's _rebuild_tensor_v2 makes."""
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  if len(size) != len(stride) or min(size + stride + (offset,), default=0) < 0:
    raise pickle.UnpicklingError(f"bad tensor layout {size} {stride}")
  if 0 in size:
    return np.zeros(size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= storage.size:
    raise pickle.UnpicklingError(
        f"tensor {size} at offset {offset} overruns its storage "
        f"({storage.size} elements)")
  return np.lib.stride_tricks.as_strided(
      storage[offset:], size, tuple(s * storage.itemsize for s in stride))


def _rebuild_parameter(data, *unused) -> np.ndarray:
  return data


def _numpy_scalar(dtype: np.dtype, data: bytes):
  if not isinstance(dtype, np.dtype) or dtype.hasobject:
    raise pickle.UnpicklingError("numpy scalar of an object dtype")
  return np.frombuffer(data, dtype)[0]


def _numpy_reconstruct(subtype, shape, dtype):
  if subtype is not np.ndarray:
    raise RefusedGlobal("numpy _reconstruct of a type other than ndarray")
  return np.ndarray.__new__(np.ndarray, shape, dtype)


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
  """How protocol-2 pickles store bytes: _codecs.encode(str, 'latin1')."""
  if encoding != "latin1" or not isinstance(text, str):
    raise RefusedGlobal(f"_codecs.encode with encoding {encoding!r}")
  return text.encode("latin1")


def _refuse_load_from_bytes(data: bytes) -> Any:
  raise RefusedGlobal("torch.storage._load_from_bytes outside a plain pickle")


_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("argparse", "Namespace"): Namespace,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): StandInDict,
    ("dnnlib", "EasyDict"): StandInDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"):
        _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    **{(m, "scalar"): _numpy_scalar for m in _NUMPY_MODULES},
    **{(m, "_reconstruct"): _numpy_reconstruct for m in _NUMPY_MODULES},
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}


def _storage_array(data: bytes, storage_type: StorageType) -> np.ndarray:
  if storage_type.dtype == "bfloat16":  # Upper half of a float32.
    halves = np.frombuffer(data, "<u2").astype(np.uint32)
    return (halves << 16).view(np.float32)
  return np.frombuffer(data, np.dtype(storage_type.dtype).newbyteorder("<"))


class RestrictedUnpickler(pickle.Unpickler):
  """Resolves only `_ALLOWED` globals; storages come from `load_storage`.

  `load_storage(storage_type, key, numel)` returns the flat numpy array of a
  persistent id ('storage', type, key, location, numel[, view]). With
  `nested_storages`, `torch.storage._load_from_bytes` reads a legacy
  torch.save stream with the same restrictions (NVlabs pickles).
  """

  def __init__(self, file, load_storage: Callable[..., np.ndarray],
               nested_storages: bool = False):
    super().__init__(file)
    self._load_storage = load_storage
    self._nested = nested_storages

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ("torch.storage", "_load_from_bytes"):
      return read_legacy_stream if self._nested else _refuse_load_from_bytes
    try:
      return _ALLOWED[(module, name)]
    except KeyError:
      raise RefusedGlobal(f"refuses to load the global {module}.{name} "
                          "(not a tensor, module state or container)") from None

  def persistent_load(self, pid: Any) -> np.ndarray:
    if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage"
        or not isinstance(pid[1], StorageType)):
      raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
    return self._load_storage(pid[1], str(pid[2]), int(pid[4]))


def read_legacy_stream(data: bytes) -> Any:
  """The object of a legacy (non-zip) torch.save stream, storages as numpy.

  Tensors are views of their storage, so the storage bytes, which follow the
  object, are copied into arrays allocated when the object first names them.
  """
  f = io.BytesIO(data)
  storages: dict[str, tuple[np.ndarray, StorageType]] = {}

  def allocate(storage_type: StorageType, key: str, numel: int) -> np.ndarray:
    if key not in storages:
      dtype = (np.float32 if storage_type.dtype == "bfloat16"
               else storage_type.dtype)
      storages[key] = (np.zeros(numel, dtype), storage_type)
    return storages[key][0]

  header = [RestrictedUnpickler(f, allocate).load() for _ in range(3)]
  if header[0] != _LEGACY_MAGIC:
    raise pickle.UnpicklingError("not a torch.save stream (bad magic number)")
  if isinstance(header[2], dict) and not header[2].get("little_endian", True):
    raise pickle.UnpicklingError("big-endian torch.save streams are not read")
  obj = RestrictedUnpickler(f, allocate, nested_storages=True).load()
  keys = RestrictedUnpickler(f, allocate).load()
  for key in keys:
    if str(key) not in storages:
      raise pickle.UnpicklingError(f"storage {key} was never referenced")
    array, storage_type = storages[str(key)]
    (count,) = struct.unpack("<q", f.read(8))
    itemsize = 2 if storage_type.dtype == "bfloat16" else array.itemsize
    raw = f.read(count * itemsize)
    if count != array.size or len(raw) != count * itemsize:
      raise pickle.UnpicklingError(f"storage {key} is truncated")
    array[:] = _storage_array(raw, storage_type)
  return obj


def _describe(e: Exception) -> str:
  return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def load_pickle(path: str, data: bytes) -> Any:
  """A plain pickle (NVlabs .pkl) -> its object; UserError naming `path`."""
  try:
    return RestrictedUnpickler(io.BytesIO(data), _no_storage,
                               nested_storages=True).load()
  except RefusedGlobal as e:
    raise errors.UserError(f"{path}: {e}; not a network pickle this reader "
                           "trusts") from e
  except Exception as e:  # pylint: disable=broad-except
    raise errors.UserError(f"{path}: not a readable network pickle, truncated "
                           f"or corrupt ({_describe(e)})") from e


def load_torch_zip(path: str, data: bytes) -> Any:
  """A torch.save file (zip, or legacy stream) -> its object, tensors numpy."""
  try:
    if not zipfile.is_zipfile(io.BytesIO(data)):
      return read_legacy_stream(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(names) != 1:
      raise pickle.UnpicklingError("no single <dir>/data.pkl in the zip")
    prefix = names[0][:-len("data.pkl")]
    byteorder = prefix + "byteorder"
    if (byteorder in archive.namelist()
        and archive.read(byteorder).strip() != b"little"):
      raise pickle.UnpicklingError("big-endian checkpoints are not read")
    cache: dict[str, np.ndarray] = {}

    def load_storage(storage_type, key, numel):
      if key not in cache:
        cache[key] = _storage_array(archive.read(f"{prefix}data/{key}"),
                                    storage_type)
        if cache[key].size < numel:
          raise pickle.UnpicklingError(f"storage {key} is truncated")
      return cache[key]

    return RestrictedUnpickler(io.BytesIO(archive.read(names[0])),
                               load_storage).load()
  except RefusedGlobal as e:
    raise errors.UserError(f"{path}: {e}; not a checkpoint this reader "
                           "trusts") from e
  except Exception as e:  # pylint: disable=broad-except
    raise errors.UserError(f"{path}: not a readable torch checkpoint, "
                           f"truncated or corrupt ({_describe(e)})") from e


def _no_storage(*unused) -> np.ndarray:
  raise pickle.UnpicklingError("a plain pickle names a storage by id")


def read_file(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise errors.UserError(f"{path}: cannot read ({e.strerror})") from e
