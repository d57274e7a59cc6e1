"""Importing an optional dependency, with an error that says what went wrong.

`load(module, needed_by, install)` imports `module` (tensorflow_hub,
tensorflow_datasets, ...) or raises a UserError that tells the three failures
apart, because their fixes differ:
- the module is not installed: `install` says how to get it;
- it is installed, but a module it imports is absent: the error names that
  module and the installed package whose import asked for it, with its
  version (e.g. tensorflow-hub 0.16.1 imports pkg_resources, which setuptools
  82 and newer no longer ship);
- its import failed otherwise: the importing package and the exception.
`failure` gives the same text for callers that carry on without the module.
"""
import importlib
import importlib.metadata
import traceback
import types

from gansseg_jax.infra import errors

TF_EXTRA = "pip install -e '.[tf]'"
EXPORT_EXTRA = "pip install -e '.[export]'"
# setup.py's JAX2ONNX pin: its metadata asks for orbax-checkpoint<0.11.37,
# against the project's pin, though it never imports orbax; so it is
# installed without its dependencies, after the `export` extra.
JAX2ONNX_PIN = "jax2onnx==0.17.1"
JAX2ONNX_INSTALL = f"{EXPORT_EXTRA} && pip install --no-deps {JAX2ONNX_PIN}"

# Where a module that an installed package imports comes from, when
# reinstalling that package would not bring it.
_PROVIDERS = {
    "pkg_resources": (
        "setuptools 82 and newer no longer ship it: pip install "
        "'setuptools<82' (the `tf` extra pins setuptools==80.9.0)"),
    "tensorflow": f"the `tf` extra brings it ({TF_EXTRA})",
    "tensorboard": f"the `tf` extra brings it ({TF_EXTRA})",
}


def is_absent(module: str, error: ImportError) -> bool:
  """Whether `error` says that `module` (or a parent) is not installed."""
  name = error.name or ""
  return bool(name) and (module == name or module.startswith(name + "."))


def _importer(error: ImportError) -> str:
  """'module (distribution version)' whose code raised `error`, or ''."""
  frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)
            if not frame.f_code.co_filename.startswith("<frozen")]
  if not frames:
    return ""
  module = frames[-1].f_globals.get("__name__", "")
  if not module or module == __name__:
    return ""
  top = module.split(".")[0]
  try:
    distributions = importlib.metadata.packages_distributions().get(top, [])
  except Exception:  # pylint: disable=broad-except
    distributions = []  # Broken metadata must not hide the import error.
  for distribution in distributions:
    try:
      return (f"{module} ({distribution} "
              f"{importlib.metadata.version(distribution)})")
    except importlib.metadata.PackageNotFoundError:
      continue
  return module


def failure(module: str, error: ImportError, install: str) -> str:
  """Why `import module` raised `error`, as a clause after 'which is'."""
  if is_absent(module, error):
    return f"not installed ({install})"
  importer = _importer(error)
  if isinstance(error, ModuleNotFoundError) and error.name:
    provider = _PROVIDERS.get(error.name.split(".")[0],
                              f"reinstalling with {install} may bring it back")
    return (f"installed but fails to import: {importer or 'it'} imports "
            f"{error.name}, which is not installed; {provider}")
  first_line = str(error).splitlines()[0] if str(error) else ""
  return ("installed but fails to import: "
          + (f"in {importer}, " if importer else "")
          + f"{type(error).__name__}: {first_line}")


def load(module: str, needed_by: str, install: str) -> types.ModuleType:
  """`import module`, or a UserError '<needed_by> needs <module>, which is ...'.

  `needed_by` names the config field (and value) that asked for the module.
  """
  try:
    return importlib.import_module(module)
  except ImportError as e:
    raise errors.UserError(
        f"{needed_by} needs {module}, which is {failure(module, e, install)}"
    ) from e
