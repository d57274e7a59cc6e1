"""Stage `embed`: a dataset's encoder latents, W/embeddings.npy (docs/method.md section 5).

OUTPUTS: W/embeddings.npy  [N, z_dim] float32, row i = the latent of image i
  (config.embed.output: 'z_sample' as in the paper, or 'z_mean').
INPUTS: W/encoder/ when config.embed.source is 'flax' (or 'auto' and it
  exists); nothing from the workdir otherwise.
Scratch: W/embeddings.partial/ holds finished parts, so an interrupted run
  resumes where it stopped; removed once embeddings.npy is written.

config.embed.source:
  'flax'  the converted encoder (W/encoder), batches sharded over the local
          devices; z_sample = z_mean + z_stdev * N(0, I) from config.seed
  'tfhub' the module's own `encode` signature (config.generator.handle), as
          the authors did; its z_sample noise comes from TF, unseeded
  'auto'  'flax' when W/encoder exists, else 'tfhub'
  'file'  precomputed latents (the authors' BigBiGAN_*_z.npy), checked
Images: config.embed.dataset, a folder (searched recursively, natural order)
or a TFDS name (config.embed.split, config.embed.data_dir); each is resized so
its shorter side is config.embed.image_size, centre-cropped square, scaled to
[-1, 1] (gansseg_jax.data.preprocess).
"""
import contextlib
import json
import os
import shutil
from typing import Callable, Iterator

from absl import logging
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import artifacts
from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import monitoring
from gansseg_jax.infra import optional
from gansseg_jax.convert import load
from gansseg_jax.convert import stage as convert_stage
from gansseg_jax.convert import tfhub
from gansseg_jax.data import folder as folder_lib
from gansseg_jax.data import images as images_lib
from gansseg_jax.data import preprocess as preprocess_lib

OUTPUT_FILE = artifacts.EMBEDDINGS
PARTIAL_DIR = artifacts.EMBEDDINGS_PARTIAL
SOURCES = ("auto", "flax", "tfhub", "file")
OUTPUTS = ("z_sample", "z_mean")

Encode = Callable[[np.ndarray, int], np.ndarray]  # (images, first index) -> z


def preprocess(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 [H, W, 3] -> float32 [size, size, 3] in [-1, 1].

  The centred square, resized (bilinear, antialiased) to size x size: the
  same pixels as resizing the shorter side to `size` and centre-cropping.
  """
  top, left, side = preprocess_lib.center_square(*image.shape[:2])
  square = image[top:top + side, left:left + side]
  return preprocess_lib.to_model_range(
      preprocess_lib.resize_rgb(square, (size, size)))


def _folder_files(folder: str) -> list[str]:
  """Image files under `folder`, recursively, in natural order."""
  extensions = images_lib.image_extensions()
  files = []
  for root, dirs, names in os.walk(folder):
    dirs.sort(key=folder_lib.natural_key)
    files += [os.path.join(root, n)
              for n in sorted(names, key=folder_lib.natural_key)
              if not n.startswith(".")
              and os.path.splitext(n)[1].lower() in extensions]
  return files


def _dataset(config) -> tuple[int, Callable[[int], Iterator[np.ndarray]]]:
  """(number of images, start -> iterator of preprocessed images from start)."""
  e = config.embed
  size = e.image_size
  if not e.dataset:
    raise errors.UserError("config.embed.dataset: empty; a folder of images "
                           "or a TFDS name")
  if os.path.isdir(e.dataset):
    files = _folder_files(e.dataset)
    if not files:
      raise errors.UserError(f"config.embed.dataset: no images under "
                             f"{e.dataset}")

    def from_folder(start):
      for path in files[start:]:
        try:
          image = images_lib.read_rgb(path)
        except images_lib.UnreadableImageError as err:
          raise errors.UserError(f"config.embed.dataset: {err}") from err
        yield preprocess(image, size)
    return len(files), from_folder

  tfds = optional.load("tensorflow_datasets",
                       f"config.embed.dataset: TFDS name {e.dataset!r}",
                       optional.TF_EXTRA)
  try:
    builder = tfds.builder(e.dataset, data_dir=e.data_dir or None)
    builder.download_and_prepare()
    total = builder.info.splits[e.split].num_examples
  except Exception as err:  # TFDS raises many types; the user must see which.
    raise errors.UserError(f"config.embed.dataset: TFDS {e.dataset!r} split "
                           f"{e.split!r} unavailable ({type(err).__name__}: "
                           f"{err})") from err

  def from_tfds(start):
    ds = builder.as_dataset(split=e.split, shuffle_files=False).skip(start)
    for example in tfds.as_numpy(ds):
      image = example["image"]
      if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
      yield preprocess(image, size)
  return total, from_tfds


def jitted_latents(encode: Callable, config) -> Callable:
  """latents(params, images, start) -> z [B, z_dim] (config.embed.output).

  z_sample = z_mean + z_stdev * N(0, 1) with the noise of batch `start`
  drawn from fold_in(key(seed) + "emb", start).
  """
  key = jax.random.fold_in(jax.random.key(config.seed), 0x656D62)  # "emb"

  @jax.jit
  def latents(params, images, start):
    out = encode(params, images)
    if config.embed.output == "z_mean":
      return out["z_mean"]
    noise = jax.random.normal(jax.random.fold_in(key, start),
                              out["z_mean"].shape)
    return out["z_mean"] + out["z_stdev"] * noise

  return latents


def _flax_encoder(config, workdir: str) -> Encode:
  """Batches sharded over the local devices (padded to a multiple of them)."""
  loaded = load.load_encoder(workdir)
  if loaded is None:
    raise errors.UserError(f"{os.path.join(workdir, load.ENCODER_DIR)}: "
                           "missing; run 'convert' with an encoder that "
                           "verifies, or use config.embed.source='tfhub'")
  encode, params, _ = loaded
  devices = jax.local_devices()
  mesh = jax.sharding.Mesh(np.array(devices), ("data",))
  batch_sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec("data"))
  params = jax.device_put(params, jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec()))
  latents = jitted_latents(encode, config)

  def run(images: np.ndarray, start: int) -> np.ndarray:
    n = len(images)
    pad = -n % len(devices)
    padded = np.concatenate([images, np.zeros((pad,) + images.shape[1:],
                                              images.dtype)])
    z = latents(params, jax.device_put(padded, batch_sharding), start)
    return np.asarray(z)[:n]
  return run


@contextlib.contextmanager
def _encoder(config, workdir: str, source: str) -> Iterator[Encode]:
  if source == "flax":
    yield _flax_encoder(config, workdir)
    return
  with tfhub.opened(config.generator.handle) as module:
    if not tfhub.has_signature(module, "encode"):
      raise errors.UserError(f"config.generator.handle: "
                             f"{config.generator.handle} has no 'encode' "
                             "signature")
    yield lambda images, start: tfhub.run_signature(
        module, "encode", images)[config.embed.output]


def _from_file(config, workdir: str) -> None:
  path = config.embed.file
  if not path.endswith(".npy") or not os.path.isfile(path):
    raise errors.UserError(f"config.embed.file: {path!r} is not a .npy file")
  table = np.load(path)
  if (table.ndim != 2 or table.shape[1] != config.generator.z_dim
      or not np.all(np.isfinite(table))):
    raise errors.UserError(
        f"config.embed.file: {path} is {table.shape} {table.dtype}, expected "
        f"finite [N, {config.generator.z_dim}] (config.generator.z_dim)")
  fileio.write_npy(os.path.join(workdir, OUTPUT_FILE),
                   table.astype(np.float32))


def _resume(partial: str, meta: dict) -> tuple[list[str], int]:
  """(finished part files, images done); drops parts of another setting."""
  meta_path = os.path.join(partial, "meta.json")
  if os.path.exists(meta_path):
    with open(meta_path) as f:
      if json.load(f) != meta:
        logging.warning("%s was made with other settings; starting over",
                        partial)
        shutil.rmtree(partial)
  os.makedirs(partial, exist_ok=True)
  fileio.write_json(meta_path, meta)
  parts = sorted(p for p in os.listdir(partial) if p.startswith("part-"))
  done = 0
  for part in parts:
    if int(part[5:14]) != done:
      raise errors.UserError(f"{partial}: {part} does not continue the parts "
                             "before it; delete the folder to start over")
    done += len(np.load(os.path.join(partial, part), mmap_mode="r"))
  return [os.path.join(partial, p) for p in parts], done


def _check_config(config) -> str:
  e = config.embed
  if e.source not in SOURCES:
    raise errors.UserError(f"config.embed.source: {e.source!r} is not one of "
                           f"{SOURCES}")
  if e.output not in OUTPUTS:
    raise errors.UserError(f"config.embed.output: {e.output!r} is not one of "
                           f"{OUTPUTS}")
  for field in ("batch_size", "parts_every", "image_size"):
    if e[field] < 1:
      raise errors.UserError(f"config.embed.{field}: must be >= 1")
  return e.source


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes W/embeddings.npy (see module docstring)."""
  convert_stage.require_single_host("embed")
  source = _check_config(config)
  if source == "file":
    _from_file(config, workdir)
    return
  if source == "auto":
    source = ("flax" if os.path.exists(os.path.join(workdir, load.ENCODER_DIR))
              else "tfhub")
  logging.info("embed: encoder from %s", source)
  total, images_from = _dataset(config)
  e = config.embed
  partial = os.path.join(workdir, PARTIAL_DIR)
  parts, done = _resume(partial, {
      "source": source, "dataset": e.dataset, "split": e.split,
      "output": e.output, "image_size": e.image_size, "total": total,
      "seed": config.seed})
  progress = monitoring.Progress(total, "embed", config.log.progress_every_s,
                                 start=done)
  with _encoder(config, workdir, source) as encode:
    images = images_from(done)
    while done < total:
      target = min(total - done, e.batch_size * e.parts_every)
      rows, filled = [], 0
      while filled < target:
        count = min(e.batch_size, target - filled)
        batch = np.stack([next(images) for _ in range(count)])
        rows.append(encode(batch, done + filled))
        filled += count
        progress.update(done + filled)
      part = np.concatenate(rows).astype(np.float32)
      if part.shape[1] != config.generator.z_dim:
        raise errors.UserError(
            f"config.generator.z_dim: {config.generator.z_dim}, but the "
            f"encoder gives {part.shape[1]}")
      path = os.path.join(partial, f"part-{done:09d}.npy")
      fileio.write_npy(path, part)
      parts.append(path)
      done += len(part)
  progress.close()
  table = np.concatenate([np.load(p) for p in parts])
  fileio.write_npy(os.path.join(workdir, OUTPUT_FILE), table)
  shutil.rmtree(partial)
  logging.info("embed: %d latents written to %s", len(table),
               os.path.join(workdir, OUTPUT_FILE))
