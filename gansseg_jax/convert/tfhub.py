"""Reading a TF-Hub module: its variables, scopes and signatures.

The module is loaded the way TF-Hub loads TF1-format modules in TF2:
`hub.load(handle, tags=[])`, where handle is a tfhub.dev URL, a local module
folder, or a local .tar.gz of one (unpacked to a temporary folder first).
TensorFlow and tensorflow-hub are the `tf` extra; they are imported here only,
through gansseg_jax.infra.optional (an import failure names the missing module).
"""
import contextlib
import os
import re
import tarfile
import tempfile
import urllib.parse
from typing import Any, Iterator, Mapping

from absl import logging
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import optional

# Scope components that name the parts of a BigBiGAN module.
GENERATOR_SCOPE = "Generator"
_ENCODER_SCOPE = re.compile(r"^encoder", re.IGNORECASE)
_DISCRIMINATOR_SCOPE = re.compile(r"^discriminator", re.IGNORECASE)
# Bookkeeping variables some modules carry; never part of a network.
_BOOKKEEPING = re.compile(r"(^|/)global_step$")
_FILE_SCHEME = "file://"
# Variable names of a module loaded by hub.Module start with this; hub.load
# leaves it off (the ImageNet BigGAN and BigGAN-deep readers drop it).
MODULE_PREFIX = "module/"
# The signature the ImageNet BigGAN and BigGAN-deep modules generate with.
DEFAULT_SIGNATURE = "default"


def _import_hub():
  """(tensorflow, tensorflow_hub), or a UserError saying which import failed."""
  needed_by = "config.generator.source: 'tfhub'"
  tf = optional.load("tensorflow", needed_by, optional.TF_EXTRA)
  hub = optional.load("tensorflow_hub", needed_by, optional.TF_EXTRA)
  return tf, hub


@contextlib.contextmanager
def opened(handle: str) -> Iterator[Any]:
  """Yields the loaded module for a URL, a folder or a local .tar.gz.

  A URL handle resolves through TF-Hub's cache: when $TFHUB_CACHE_DIR holds
  the module (in the folder TF-Hub names by the SHA-1 of the URL) nothing is
  downloaded. A `file://` handle is the local path it names.
  """
  tf, hub = _import_hub()
  if not handle:
    raise errors.UserError("config.generator.handle: empty")
  if handle.startswith(_FILE_SCHEME):
    handle = urllib.parse.unquote(urllib.parse.urlparse(handle).path)
  is_url = "://" in handle
  if not is_url and not os.path.exists(handle):
    raise errors.UserError(f"config.generator.handle: {handle} does not exist")
  with contextlib.ExitStack() as stack:
    path = handle
    if not is_url and os.path.isfile(handle):
      if not tarfile.is_tarfile(handle):
        raise errors.UserError(f"config.generator.handle: {handle} is neither "
                               "a module folder nor a .tar.gz of one")
      path = stack.enter_context(tempfile.TemporaryDirectory(
          prefix="tfhub-module-"))
      logging.info("Unpacking %s to %s", handle, path)
      with tarfile.open(handle) as archive:
        archive.extractall(path, filter="data")
    logging.info("Loading TF-Hub module %s", handle)
    try:
      module = hub.load(path, tags=[])
    except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
      raise errors.UserError(
          f"config.generator.handle: cannot load {handle} as a TF-Hub module "
          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
      ) from e
    yield module


def read_variables(module: Any) -> dict[str, np.ndarray]:
  """{name without ':0': value} of every variable of the module."""
  out = {}
  for variable in module.variables:
    name = variable.name.split(":")[0]
    out[name] = variable.numpy()
  return out


def unprefixed_variables(module: Any) -> dict[str, np.ndarray]:
  """read_variables with MODULE_PREFIX dropped from the names that have it."""
  return {name.removeprefix(MODULE_PREFIX): value
          for name, value in read_variables(module).items()}


def split_scopes(names: Mapping[str, Any], where: str
                 ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
  """Sorts variable names into the generator, the encoder and the unused.

  Returns ({relative name: full name} of the generator, the same for the
  encoder, {full name: reason} unused). The generator's relative names start
  at `Generator/` (whatever wraps it, e.g. `GenEncWrapper/`, is dropped and
  must be the same for every generator variable); the encoder's start at its
  own scope. A variable in none of the known scopes is an error naming it.
  """
  generator, encoder, unused = {}, {}, {}
  prefixes = set()
  for name in sorted(names):
    parts = name.split("/")
    if GENERATOR_SCOPE in parts:
      at = parts.index(GENERATOR_SCOPE)
      prefixes.add("/".join(parts[:at]))
      generator["/".join(parts[at:])] = name
    elif any(_ENCODER_SCOPE.match(p) for p in parts):
      at = next(i for i, p in enumerate(parts) if _ENCODER_SCOPE.match(p))
      encoder["/".join(parts[at:])] = name
    elif any(_DISCRIMINATOR_SCOPE.match(p) for p in parts):
      unused[name] = "discriminator (not needed for segmentation)"
    elif _BOOKKEEPING.search(name):
      unused[name] = "training bookkeeping"
    else:
      raise errors.UserError(f"{where}: variable {name} is in no known scope "
                             "(Generator, Encoder, Discriminator)")
  if len(prefixes) > 1:
    raise errors.UserError(f"{where}: generator variables under several "
                           f"scopes {sorted(prefixes)}")
  if not generator:
    raise errors.UserError(f"{where}: no variable under a '{GENERATOR_SCOPE}/' "
                           "scope; is this a BigBiGAN module?")
  return generator, encoder, unused


def has_signature(module: Any, signature: str) -> bool:
  return signature in getattr(module, "signatures", {})


def default_images(module: Any, handle: str, z: np.ndarray, y: np.ndarray,
                   truncation: float) -> np.ndarray:
  """Images of the module's DEFAULT_SIGNATURE (inputs z, y, truncation), the
  reference a conversion is verified against; UserError naming `handle`
  when the module has no such signature."""
  if not has_signature(module, DEFAULT_SIGNATURE):
    raise errors.UserError(f"{handle}: the module has no "
                           f"'{DEFAULT_SIGNATURE}' signature to verify the "
                           "conversion against")
  tf = optional.load("tensorflow", f"reading {handle}", optional.TF_EXTRA)
  outputs = module.signatures[DEFAULT_SIGNATURE](
      z=tf.constant(z), y=tf.constant(y), truncation=tf.constant(truncation))
  return np.asarray(outputs["default"])


def run_signature(module: Any, signature: str, value: np.ndarray
                  ) -> dict[str, np.ndarray]:
  """Calls a one-input signature (e.g. 'generate' on z, 'encode' on x)."""
  tf, _ = _import_hub()
  function = module.signatures[signature]
  _, kwargs = function.structured_input_signature
  if len(kwargs) != 1:
    raise errors.UserError(f"config.generator.handle: signature {signature!r} "
                           f"takes {sorted(kwargs)}, expected one input")
  (input_name,) = kwargs
  outputs = function(**{input_name: tf.constant(value, tf.float32)})
  return {key: np.asarray(tensor) for key, tensor in outputs.items()}
