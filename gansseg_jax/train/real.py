"""U-Nets trained on real photos (not in the paper): two eval predictors.

  selftrain   self-training. The GAN-trained U-Net (W/unet) labels the photos
              of config.eval.real.dataset: pseudo-mask = P > pseudo_threshold,
              then the synthetic masks' components filter (config.synth) and
              hole filling (synth/filters.py); photos whose pseudo-mask covers
              less than min_foreground or more than max_foreground of the
              frame are dropped. A U-Net (from W/unet, or from scratch with
              init='scratch') is trained on the rest. No real mask is read.
  supervised  a ceiling, not the method: the same U-Net trained from scratch
              on the real masks of config.eval.real.dataset; scored on an
              eval dataset with a `classes=` target, it learns that target.

The photos of config.eval.real.dataset (a `folder:` entry, e.g. one half of
a folder with part=1/2) must share no image file with any eval dataset:
`check_disjoint` refuses the run before any stage starts
(gansseg_jax/run/config_checks.py). Each photo is centre-cropped to a square and
resized to S x S (S = config.eval.image_size), in [-1, 1]. Training: Adam
(learning_rate, x0.2 after 2/3 of the steps), the per-pixel cross-entropy of
the synthetic training (train/holdout.py), `batch_size` photos per step drawn
with replacement, each flipped left-right with probability 1/2 (`flip`),
shifted by up to shift_augment of the side and relit and recoloured with
strength photometric_augment (train/augment.py; both U-Nets); BatchNorm in
training mode. Everything is seeded by config.seed.
"""
import os
from typing import Callable, Optional

from absl import logging
from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gansseg_jax.infra import errors
from gansseg_jax.data import folder
from gansseg_jax.data import images as images_lib
from gansseg_jax.data import preprocess
from gansseg_jax.data import sources
from gansseg_jax.infra import keys
from gansseg_jax.infra import sharding
from gansseg_jax.infra import training_loop
from gansseg_jax.synth import filters
from gansseg_jax.train import augment
from gansseg_jax.train import holdout
from gansseg_jax.train import load
from gansseg_jax.train import segmentation

SELFTRAIN = "selftrain"
SUPERVISED = "supervised"
PREDICTORS = (SELFTRAIN, SUPERVISED)
INITS = ("unet", "scratch")
FIELD = "config.eval.real.dataset"
_PREDICT_BATCH = 32


def check_config(real_config: ml_collections.ConfigDict) -> None:
  """Raises UserError for config.eval.real fields that do not fit together
  or are out of range (the ranges are also config_checks.py's)."""
  r = real_config
  for name in ("steps", "batch_size"):
    if not (isinstance(r[name], int) and r[name] >= 1):
      raise errors.UserError(
          f"config.eval.real.{name}: must be an integer >= 1, not {r[name]!r}")
  if r.init not in INITS:
    raise errors.UserError(f"config.eval.real.init: {r.init!r} is not one of "
                           f"{', '.join(INITS)}")
  if not float(r.min_foreground) < float(r.max_foreground):
    raise errors.UserError(
        f"config.eval.real.max_foreground: must be above min_foreground "
        f"({r.min_foreground}), not {r.max_foreground}")


def image_paths(entry: str, field: str) -> set[str]:
  """Real paths of the image files a dataset entry reads.

  A `folder:` entry: its images folder's files (of its part, when it names
  one: the part is cut from the images in sorted order, which for a folder
  whose images all have masks is the part `sources.folder_pairs` takes).
  Other entries (TFDS, scenes) are not files here: empty.
  """
  if not entry.startswith(sources.FOLDER_PREFIX):
    return set()
  spec = sources.folder_spec(entry, field)
  if os.path.isdir(spec.masks_dir):
    pairs = sources.folder_pairs(entry, field)
    return {os.path.realpath(image) for _, image, _ in pairs.pairs}
  if not os.path.isdir(spec.images_dir):
    return set()
  names = folder.list_image_files(spec.images_dir)
  if spec.part:
    k, n = spec.part
    names = names[(k - 1) * len(names) // n:k * len(names) // n]
  return {os.path.realpath(os.path.join(spec.images_dir, name))
          for name in names}


def check_disjoint(eval_config: ml_collections.ConfigDict) -> None:
  """UserError when a training photo is also an eval photo (by real path)."""
  entry = eval_config.real.dataset.strip()
  if not entry:
    return
  if not entry.startswith(sources.FOLDER_PREFIX):
    raise errors.UserError(f"{FIELD}: {entry!r} is not a "
                           f"{sources.FOLDER_FORM} entry")
  training = image_paths(entry, FIELD)
  listed = (sources.split_entries(eval_config.datasets)
            + sources.split_entries(eval_config.optional_datasets))
  for other in listed:
    shared = training & image_paths(other, "config.eval.datasets")
    if shared:
      raise errors.UserError(
          f"{FIELD}: {len(shared)} of its {len(training)} training photos "
          f"are also evaluated in {other!r} (e.g. "
          f"{os.path.basename(min(shared))}); use disjoint parts, e.g. "
          ":part=1/2 here and :part=2/2 there")


def training_entry(real_dataset: str, eval_entry: Optional[str]) -> str:
  """The entry `supervised` learns from: the training photos with the
  `classes=` target of the eval dataset it is scored on, if it has one."""
  if not (eval_entry and eval_entry.startswith(sources.FOLDER_PREFIX)):
    return real_dataset
  target = sources.folder_spec(eval_entry, "config.eval.datasets").target
  if not target:
    return real_dataset
  return f"{sources.images_entry(real_dataset)}:classes={target}"


def _square(image: np.ndarray, side: int) -> np.ndarray:
  top, left, size = preprocess.center_square(*image.shape[:2])
  return preprocess.resize_rgb(image[top:top + size, left:left + size],
                               (side, side))


def _square_mask(mask: np.ndarray, side: int) -> np.ndarray:
  top, left, size = preprocess.center_square(*mask.shape)
  crop = mask[top:top + size, left:left + size].astype(np.float32)
  return preprocess.resize_map(crop, (side, side)) > 0.5


def read_photos(entry: str, side: int) -> np.ndarray:
  """float32 [N, S, S, 3] in [-1, 1]: the entry's images (masks unread)."""
  paths = sorted(image_paths(entry, FIELD), key=folder.natural_key)
  if not paths:
    raise errors.UserError(f"{FIELD}: {entry!r} holds no image")
  photos = []
  for path in paths:
    try:
      photos.append(_square(images_lib.read_rgb(path), side))
    except images_lib.UnreadableImageError as e:
      logging.warning("skipped: %s", e)
  return preprocess.to_model_range(np.stack(photos))


def read_labelled(entry: str, eval_config: ml_collections.ConfigDict
                  ) -> tuple[np.ndarray, np.ndarray]:
  """(photos [N, S, S, 3] in [-1, 1], masks float32 [N, S, S]) of an entry."""
  side = eval_config.image_size
  source = sources.open_source(entry, eval_config, FIELD)
  photos, masks = [], []
  for example in source.examples:
    photos.append(_square(example.image, side))
    masks.append(_square_mask(example.mask, side))
  if not photos:
    raise errors.UserError(f"{FIELD}: {entry!r} has no readable example")
  return (preprocess.to_model_range(np.stack(photos)),
          np.stack(masks).astype(np.float32))


def train_unet(config: ml_collections.ConfigDict, tree, photos: np.ndarray,
               masks: np.ndarray, name: str):
  """The U-Net {'params', 'batch_stats'} after config.eval.real.steps Adam
  steps on (photos, masks) from `tree` (None: a fresh U-Net)."""
  r = config.eval.real
  key = keys.stage_key(config.seed, f"eval/{name}")
  abstract = nnx.eval_shape(
      lambda: segmentation.new_unet(config.unet, nnx.Rngs(0)))
  graphdef, _, _ = nnx.split(abstract, nnx.Param, nnx.BatchStat)
  if tree is None:
    model = segmentation.new_unet(
        config.unet, nnx.Rngs(jax.random.fold_in(key, 0)))
    _, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    tree = {"params": nnx.to_pure_dict(params),
            "batch_stats": nnx.to_pure_dict(stats)}
  tx = optax.adam(optax.piecewise_constant_schedule(
      r.learning_rate, {int(2 * r.steps // 3): 0.2}))
  shift = float(r.shift_augment)
  photos, masks = jnp.asarray(photos), jnp.asarray(masks)

  @jax.jit
  def step(tree, opt_state, step_key):
    pick, flip_key, shift_key, light_key = jax.random.split(step_key, 4)
    index = jax.random.randint(pick, (r.batch_size,), 0, photos.shape[0])
    x, m = photos[index], masks[index]
    if r.flip:
      flip = jax.random.bernoulli(flip_key, 0.5, (r.batch_size,))
      x = jnp.where(flip[:, None, None, None], x[:, :, ::-1], x)
      m = jnp.where(flip[:, None, None], m[:, :, ::-1], m)
    if shift > 0:
      x, m = augment.random_translate(shift_key, x, m, shift)
    x = augment.photometric(light_key, x, r.photometric_augment)

    def loss_fn(params):
      model = nnx.merge(graphdef, params, tree["batch_stats"])
      model.train()
      loss = jnp.mean(holdout.pixel_cross_entropy(model(x), m))
      return loss, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        tree["params"])
    updates, opt_state = tx.update(grads, opt_state, tree["params"])
    return ({"params": optax.apply_updates(tree["params"], updates),
             "batch_stats": stats}, opt_state, loss)

  def advance(state, i, count):
    del count  # One step per call.
    tree, opt_state, _ = state
    return step(tree, opt_state, jax.random.fold_in(key, i + 1))

  def log(state, done):
    logging.info("eval %s: training on %d real photos, step %d/%d, loss "
                 "%.4f", name, photos.shape[0], done, r.steps, float(state[2]))

  tree, _, _ = training_loop.run(training_loop.Loop(
      stage=f"eval {name}", total=r.steps, advance=advance,
      initial=lambda: (tree, tx.init(tree["params"]), jnp.zeros(())),
      actions=(training_loop.Every(max(r.steps // 4, 1), log, at_end=False),),
      progress_every_s=config.log.progress_every_s))
  return graphdef, tree


def pseudo_masks(predict: Callable, photos: np.ndarray,
                 config: ml_collections.ConfigDict) -> tuple[np.ndarray,
                                                             np.ndarray]:
  """(photos kept, their pseudo-masks float32) from the U-Net `predict`."""
  r, s = config.eval.real, config.synth
  probs = np.concatenate([
      np.asarray(predict(photos[i:i + _PREDICT_BATCH]))
      for i in range(0, photos.shape[0], _PREDICT_BATCH)])
  masks = jnp.asarray(probs > r.pseudo_threshold)
  if s.components_filter:
    masks = filters.connected_components_filter(
        masks, connectivity=s.connectivity, min_ratio=s.min_component_ratio,
        strict=s.strict_ratio)
  masks = np.asarray(filters.fill_holes(masks))
  share = masks.mean(axis=(1, 2))
  keep = (share >= r.min_foreground) & (share <= r.max_foreground)
  if not keep.any():
    raise errors.UserError(
        f"{FIELD}: no pseudo-mask covers {r.min_foreground}..{r.max_foreground}"
        " of its photo (config.eval.real.min_foreground, max_foreground)")
  logging.info("eval %s: %d of %d photos kept (pseudo-masks cover %.1f%% on "
               "average)", SELFTRAIN, int(keep.sum()), len(keep),
               100 * share[keep].mean())
  return photos[keep], masks[keep].astype(np.float32)


def make_predictor(name: str, config: ml_collections.ConfigDict,
                   workdir: str, eval_entry: Optional[str] = None
                   ) -> Callable[[np.ndarray], jax.Array]:
  """predict(images [B, H, W, 3] in [-1, 1]) -> probs [B, H, W] of the
  U-Net `name` trains on config.eval.real.dataset (module docstring)."""
  check_config(config.eval.real)
  entry = config.eval.real.dataset.strip()
  if not entry:
    raise errors.UserError(
        f"{FIELD}: empty; predictor {name!r} trains on real photos: name "
        "them (disjoint from config.eval.datasets)")
  check_disjoint(config.eval)
  mesh = sharding.data_mesh()
  if name == SUPERVISED:
    photos, masks = read_labelled(training_entry(entry, eval_entry),
                                  config.eval)
    graphdef, tree = train_unet(config, None, photos, masks, name)
  else:
    graphdef, unet = load.restore_unet(config, workdir, mesh)
    photos, masks = pseudo_masks(load.tree_predictor(graphdef, unet, mesh),
                                 read_photos(entry, config.eval.image_size),
                                 config)
    start = unet if config.eval.real.init == "unet" else None
    graphdef, tree = train_unet(config, start, photos, masks, name)
  return load.tree_predictor(graphdef, sharding.replicate(tree, mesh), mesh)


def cache_key(name: str, real_dataset: str, eval_entry: str) -> str:
  """Evaluations that can share one trained U-Net have the same key."""
  if name == SUPERVISED:
    return training_entry(real_dataset, eval_entry)
  return real_dataset
