"""The plug-in API of generator kinds: `config.generator.arch = 'pkg.mod:name'`.

docs/generators.md ("Your own generator") walks through writing one. A
generator *kind* is a `GeneratorKind` object that a module exposes under a
name; `resolve(arch)` imports it. The kind says

  sources = {name: Source(read, field, ...)}
      the values config.generator.source takes, each with the config field
      it reads (.checkpoint, .handle, ...) and its reader:
      read(config, workdir) -> Converted(spec, params, record), a JSON-able
      spec and a params tree for stage `convert` to write;
  build(spec, options) -> Network
      how every later stage rebuilds the network from W/generator/spec.json.

The built-in kinds go through the same interface; their short names stay
valid: 'biggan' (BigBiGAN: TF-Hub, the authors' .pth, random),
'builtin' / 'demo' (the demo DCGAN shipped in the package), 'biggan_imagenet'
and 'biggan_deep' (class-conditional ImageNet BigGANs), 'stylegan2' and
'dcgan' (PyTorch DCGAN-tutorial generators).

The network a kind builds, its latents and their priors are latent.py's.
"""
import dataclasses
import importlib
import math
import os
import sys
from typing import Any, Callable, Optional

import numpy as np

from gansseg_jax.generator_interface import latent
from gansseg_jax.infra import config_rules
from gansseg_jax.infra import errors
from gansseg_jax.infra import optional

# Short names of the built-in kinds (older configs and workdirs use these).
SHORT_NAMES = {
    "biggan": "gansseg_jax.generators.bigbigan:KIND",
    "builtin": "gansseg_jax.generators.demo:KIND",
    "demo": "gansseg_jax.generators.demo:KIND",
    "biggan_imagenet": "gansseg_jax.generators.imagenet_biggan:KIND",
    "biggan_deep": "gansseg_jax.generators.biggan_deep:KIND",
    "stylegan2": "gansseg_jax.generators.stylegan2:KIND",
    "dcgan": "gansseg_jax.generators.dcgan:KIND",
}
LATENT_SPACES = ("z", "w", "w+")
MATMUL_PRECISIONS = ("highest", "high", "default")  # jax.lax.Precision names.


@dataclasses.dataclass(frozen=True)
class BuildOptions:
  """What the config (not the checkpoint) chooses about the network."""
  dtype: str = "float32"  # Activations: 'float32' or 'bfloat16'.
  latent_space: str = "z"  # One of the kind's latent_spaces.
  classes: tuple[int, ...] = ()  # Class ids sampled per latent; () = all.
  truncation: float = 1.0  # The kind's own truncation (config.generator).
  noise_mode: str = "const"  # One of the kind's noise_modes.
  matmul_precision: str = "highest"  # Of float32 matmuls: MATMUL_PRECISIONS.
  latent_prior: str = ""  # '' = the kind's own, or in latent.LATENT_PRIORS.
  latent_bound: float = 1.0  # b of the 'uniform' and 'truncated_normal' priors.


@dataclasses.dataclass(frozen=True)
class Converted:
  """What a kind's convert gives stage `convert` to write into W/generator."""
  spec: dict[str, Any]  # JSON-able; build(spec, options) rebuilds the network.
  params: latent.Params  # Nested dict of float32 arrays.
  record: dict[str, Any]  # JSON-able log of the conversion (source, checks).


# What a source's config.generator field names (Source.reads), as the
# config checks name it: "must be an existing file (...)".
FILE = "file"
FILE_OR_FOLDER = "file or folder"
TFHUB_MODULE = "TF-Hub module"  # A tfhub.dev URL, module folder or .tar.gz.


@dataclasses.dataclass(frozen=True)
class Source:
  """One value of config.generator.source: what it reads, and its reader.

  `read(config, workdir) -> Converted` converts what the source names and
  records how it was verified. `field` is the config.generator field naming
  it ('' for a source that reads no file: random or shipped weights),
  `reads` what that field must name (FILE, FILE_OR_FOLDER or TFHUB_MODULE)
  and `what` what it is, in errors ("a BigGAN-PyTorch G*.pth"); `module` is
  an optional dependency of the reader and `install` the command that
  brings it.
  """
  read: Callable[[Any, str], Converted]  # (config, workdir) -> Converted.
  field: str = ""  # e.g. 'checkpoint': config.generator.checkpoint.
  what: str = ""  # Shown in errors: "a BigGAN-PyTorch G*.pth".
  reads: str = FILE
  module: str = ""
  install: str = ""

  def check(self, generator_config) -> None:
    """The file or folder `field` names exists and `module` imports; each
    failure is one UserError naming config.generator.<field>.

    A TF-Hub handle is checked by the runner (run/config_checks.py: the
    TF-Hub cache) and when the module is opened.
    """
    if not self.field or self.reads == TFHUB_MODULE:
      return
    field, path = f"generator.{self.field}", generator_config[self.field]
    exists = os.path.isfile if self.reads == FILE else os.path.exists
    if not path or not exists(path):
      config_rules.fail(field, f"must be an existing {self.reads} "
                        f"({self.what})", path)
    if self.module:
      optional.load(self.module, f"config.{field}: reading {path}",
                    self.install)


@dataclasses.dataclass(frozen=True)
class GeneratorKind:
  """One kind of generator: its sources and how to rebuild the network."""
  name: str  # Shown in messages.
  # {value of config.generator.source: the Source it selects}.
  sources: dict[str, Source] = dataclasses.field(hash=False)
  build: Callable[[dict[str, Any], BuildOptions], latent.Network]
  latent_spaces: tuple[str, ...] = ("z",)
  conditional: bool = False  # Takes config.generator.classes.
  noise_modes: tuple[str, ...] = ("const",)  # config.generator.noise_mode.

  def source(self, name: str) -> Source:
    """The Source that config.generator.source `name` selects; UserError
    naming the field when the kind has none of that name."""
    if name not in self.sources:
      raise errors.UserError(
          f"config.generator.source: {name!r} is not one of the {self.name} "
          f"generator's {tuple(self.sources)}")
    return self.sources[name]

  def convert(self, config, workdir: str) -> Converted:
    """Stage `convert`'s reading: config.generator.source's Source checked,
    then read."""
    source = self.source(config.generator.source)
    source.check(config.generator)
    return source.read(config, workdir)


def kind_name(generator_config) -> str:
  """config.generator.arch, with the old spelling of the demo resolved.

  Configs written before the plug-in interface chose the demo generator by
  source='builtin' alone (arch kept its default 'biggan').
  """
  arch = str(generator_config.arch)
  if arch == "biggan" and generator_config.source == "builtin":
    return "builtin"
  return arch


def resolve(arch: str, field: str = "config.generator.arch") -> GeneratorKind:
  """The GeneratorKind that `arch` names (a short name or 'pkg.mod:name').

  Any failure is one UserError naming `field`; when the module itself is
  not found, it says which folder to put on PYTHONPATH.
  """
  target = SHORT_NAMES.get(arch, arch)
  module_name, sep, attribute = target.partition(":")
  if not sep or not module_name or not attribute:
    raise errors.UserError(
        f"{field}: {arch!r} is neither a built-in kind "
        f"({', '.join(SHORT_NAMES)}) nor 'package.module:name'")
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    top = module_name.split(".")[0]
    hint = ""
    if isinstance(e, ModuleNotFoundError) and e.name == top:
      hint = (f"; put the folder that holds {top}.py (or the package "
              f"{top}/) on PYTHONPATH, or run from it")
    raise errors.UserError(
        f"{field}: {arch!r}: cannot import {module_name} ({e}){hint}") from e
  kind = getattr(module, attribute, None)
  if kind is None:
    raise errors.UserError(
        f"{field}: {arch!r}: {module_name} has no attribute {attribute!r}")
  if not isinstance(kind, GeneratorKind):
    raise errors.UserError(
        f"{field}: {arch!r}: {module_name}.{attribute} is a "
        f"{type(kind).__name__}, not a "
        "gansseg_jax.generator_interface.kinds.GeneratorKind")
  return kind


def module_root(arch: str) -> Optional[str]:
  """The sys.path folder that a plug-in kind's module was imported from.

  None for the built-in kinds. Stage `convert` records it in
  W/generator/spec.json, so that later stages run from another cwd import
  the same module (`add_module_root`). Call after `resolve(arch)`.
  """
  if arch in SHORT_NAMES:
    return None
  top = sys.modules.get(arch.partition(":")[0].split(".")[0])
  if top is None or top.__name__ == __name__.split(".")[0]:
    return None
  paths = list(getattr(top, "__path__", None) or [])
  where = paths[0] if paths else getattr(top, "__file__", None)
  return os.path.dirname(os.path.abspath(where)) if where else None


def add_module_root(root: Optional[str]) -> None:
  """Appends a recorded `module_root` to sys.path (last: the cwd and
  PYTHONPATH still come first) when it is a folder not there yet."""
  if root and os.path.isdir(root) and root not in sys.path:
    sys.path.append(root)


def parse_classes(value, field: str = "config.generator.classes"
                  ) -> tuple[int, ...]:
  """config.generator.classes as ids: an int, a list, 'all' or '' = all (())."""
  if value is None or (isinstance(value, str) and value.strip() in ("", "all")):
    return ()
  if isinstance(value, str):
    parts = [p.strip() for p in value.split(",") if p.strip()]
  elif isinstance(value, (int, np.integer)):
    parts = [value]
  else:
    parts = list(value)
  try:
    ids = tuple(int(p) for p in parts)
  except (TypeError, ValueError) as e:
    raise errors.UserError(
        f"{field}: {value!r} is not a class id, a list of ids, or 'all'") from e
  if any(i < 0 for i in ids) or any(float(p) != int(p) for p in parts):
    raise errors.UserError(f"{field}: {value!r}: class ids are integers >= 0")
  return ids


def build_options(generator_config) -> BuildOptions:
  """BuildOptions from config.generator; UserError names a bad field."""
  dtype = str(generator_config.dtype)
  if dtype not in config_rules.DTYPES:
    raise errors.UserError(
        f"config.generator.dtype: {dtype!r} is not one of "
        f"{config_rules.DTYPES}")
  precision = str(generator_config.get("matmul_precision", "highest"))
  if precision not in MATMUL_PRECISIONS:
    raise errors.UserError(f"config.generator.matmul_precision: {precision!r} "
                           f"is not one of {MATMUL_PRECISIONS}")
  space = str(generator_config.get("latent_space", "z"))
  if space not in LATENT_SPACES:
    raise errors.UserError(f"config.generator.latent_space: {space!r} is "
                           f"not one of {LATENT_SPACES}")
  truncation = generator_config.get("truncation", 1.0)
  if not (isinstance(truncation, (int, float)) and 0 < truncation < math.inf):
    raise errors.UserError(f"config.generator.truncation: must be finite and "
                           f"> 0, got {truncation!r}")
  latent_prior = str(generator_config.get("latent_prior", ""))
  latent_bound = generator_config.get("latent_bound", 1.0)
  if latent_prior:
    latent.named_prior(latent_prior, latent_bound)  # Checks both fields.
  return BuildOptions(
      dtype=dtype, latent_space=space,
      classes=parse_classes(generator_config.get("classes", "")),
      truncation=float(truncation),
      noise_mode=str(generator_config.get("noise_mode", "const")),
      matmul_precision=precision, latent_prior=latent_prior,
      latent_bound=float(latent_bound))


def check_options(kind: GeneratorKind, options: BuildOptions) -> None:
  """UserError when the kind does not take the latent space, noise mode or
  classes."""
  if options.latent_space not in kind.latent_spaces:
    raise errors.UserError(
        f"config.generator.latent_space: {options.latent_space!r}; the "
        f"{kind.name} generator has {kind.latent_spaces}")
  if options.noise_mode not in kind.noise_modes:
    raise errors.UserError(
        f"config.generator.noise_mode: {options.noise_mode!r}; the "
        f"{kind.name} generator has {kind.noise_modes}")
  if options.classes and not kind.conditional:
    raise errors.UserError(
        f"config.generator.classes: {list(options.classes)}; the {kind.name} "
        "generator is not class-conditional (leave it empty)")


def build(kind: GeneratorKind, spec: dict[str, Any],
          options: BuildOptions) -> latent.Network:
  """kind.build(spec, options), its ValueError as a UserError."""
  check_options(kind, options)
  try:
    network = kind.build(spec, options)
  except ValueError as e:
    raise errors.UserError(f"config.generator.{e}") from e
  if not isinstance(network, latent.Network):
    raise errors.UserError(
        f"config.generator.arch: the {kind.name} kind's build returned a "
        f"{type(network).__name__}, not a Network")
  if options.latent_prior:
    network = dataclasses.replace(network, latent_prior=latent.named_prior(
        options.latent_prior, options.latent_bound))
  return network
