"""A dataset from two folders: images and masks matched by file stem.

`images/12.jpg` pairs with `masks/12.png`: same stem, any formats Pillow
reads (files with other extensions and hidden files are ignored). Masks are
binarised at 0.5 of their type's range (`images.read_mask`), so soft masks
such as PASCAL-S's averaged annotations (0..255) count as foreground from
128 up. Stems found on one side only, and stems that name several files in
one folder (`a.jpg` and `a.png`), are left out and reported once.

Masks may instead be class-id maps (one integer label per pixel, e.g.
CelebAMask-HQ's): given the foreground ids, a pixel is foreground when its
id is one of them (`images.read_class_map`).

Spec in `config.eval.datasets`: `folder:<images_dir>:<masks_dir>`, or
`folder:<root>` for a root holding `images/` and `masks/`, with options
(gansseg_jax.data.sources).
"""
import dataclasses
import os
import re
from typing import Iterator, Optional

from absl import logging
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.data import checks
from gansseg_jax.data import example as example_lib
from gansseg_jax.data import images as images_lib

_SHOWN_NAMES = 10  # File names quoted per kind of mismatch in the log.


def natural_key(name: str) -> list:
  """Sort key that puts '2.jpg' before '10.jpg'."""
  return [int(part) if part.isdigit() else part.lower()
          for part in re.split(r"(\d+)", name)]


def list_image_files(directory: str) -> list[str]:
  """File names in `directory` with an extension Pillow reads, naturally sorted.

  Hidden files (leading '.') and sub-folders are ignored.
  """
  extensions = images_lib.image_extensions()
  names = [
      name for name in os.listdir(directory)
      if not name.startswith(".")
      and os.path.splitext(name)[1].lower() in extensions
      and os.path.isfile(os.path.join(directory, name))
  ]
  return sorted(names, key=natural_key)


@dataclasses.dataclass(frozen=True)
class FolderPairs:
  images_dir: str
  masks_dir: str
  pairs: tuple[tuple[str, str, str], ...]  # (stem, image path, mask path).
  images_without_mask: tuple[str, ...]  # Image file names.
  masks_without_image: tuple[str, ...]  # Mask file names.
  ambiguous: tuple[str, ...]  # Stems naming several files in one folder.

  def mismatch_counts(self) -> dict[str, int]:
    return {"images_without_mask": len(self.images_without_mask),
            "masks_without_image": len(self.masks_without_image),
            "ambiguous_stems": len(self.ambiguous)}


def _by_stem(names: list[str]) -> tuple[dict[str, str], set[str]]:
  """{stem: name} for stems naming one file, and the stems naming several."""
  seen: dict[str, list[str]] = {}
  for name in names:
    seen.setdefault(os.path.splitext(name)[0], []).append(name)
  unique = {stem: group[0] for stem, group in seen.items() if len(group) == 1}
  return unique, {stem for stem, group in seen.items() if len(group) > 1}


def _quote(names) -> str:
  names = list(names)
  shown = ", ".join(names[:_SHOWN_NAMES])
  more = len(names) - _SHOWN_NAMES
  return shown + (f" and {more} more" if more > 0 else "")


def match_folders(images_dir: str, masks_dir: str, field: str) -> FolderPairs:
  """Pairs images and masks by stem; logs every mismatch; raises UserError
  (naming `field`) when a folder is missing or nothing pairs up."""
  for kind, directory in (("images", images_dir), ("masks", masks_dir)):
    if not os.path.isdir(directory):
      raise errors.UserError(
          f"{field}: {kind} folder {directory!r} does not exist")
  images, images_ambiguous = _by_stem(list_image_files(images_dir))
  masks, masks_ambiguous = _by_stem(list_image_files(masks_dir))
  ambiguous = images_ambiguous | masks_ambiguous
  images = {s: n for s, n in images.items() if s not in ambiguous}
  masks = {s: n for s, n in masks.items() if s not in ambiguous}
  stems = sorted(images.keys() & masks.keys(), key=natural_key)
  result = FolderPairs(
      images_dir=images_dir,
      masks_dir=masks_dir,
      pairs=tuple((s, os.path.join(images_dir, images[s]),
                   os.path.join(masks_dir, masks[s])) for s in stems),
      images_without_mask=tuple(sorted(
          (images[s] for s in images.keys() - masks.keys()), key=natural_key)),
      masks_without_image=tuple(sorted(
          (masks[s] for s in masks.keys() - images.keys()), key=natural_key)),
      ambiguous=tuple(sorted(ambiguous, key=natural_key)))
  if result.images_without_mask:
    logging.warning("%s: %d images in %s have no mask in %s: %s", field,
                    len(result.images_without_mask), images_dir, masks_dir,
                    _quote(result.images_without_mask))
  if result.masks_without_image:
    logging.warning("%s: %d masks in %s have no image in %s: %s", field,
                    len(result.masks_without_image), masks_dir, images_dir,
                    _quote(result.masks_without_image))
  if result.ambiguous:
    logging.warning("%s: %d stems name several files in one folder, left "
                    "out: %s", field, len(result.ambiguous),
                    _quote(result.ambiguous))
  if not result.pairs:
    raise errors.UserError(
        f"{field}: no image in {images_dir!r} has a mask with the same file "
        f"stem in {masks_dir!r}")
  return result


def iterate_examples(pairs: FolderPairs, min_side: int,
                     log: example_lib.ReadLog,
                     classes: Optional[frozenset[int]] = None
                     ) -> Iterator[example_lib.Example]:
  """Examples of the matched pairs, in order.

  `classes`: the masks are class-id maps and these ids are the foreground
  (None: binary masks, binarised at half their range).

  A pair whose image or mask cannot be decoded, or whose image is below
  `min_side` pixels on a side, is skipped with one warning and recorded in
  `log`; a mask of another size than its image is resized to it (recorded).
  Images left out by `match_folders` (no mask, or a stem naming several
  files) are recorded first, as `without_mask` and `ambiguous`.
  """
  log.without_mask.extend(
      f"{os.path.join(pairs.images_dir, name)}: no mask in {pairs.masks_dir}"
      for name in pairs.images_without_mask)
  log.ambiguous.extend(f"{stem}: names several files in one folder"
                       for stem in pairs.ambiguous)
  for stem, image_path, mask_path in pairs.pairs:
    try:
      image = images_lib.read_rgb(image_path)
      if classes is None:
        mask = images_lib.read_mask(mask_path)
      else:
        mask = np.isin(images_lib.read_class_map(mask_path), list(classes))
    except images_lib.UnreadableImageError as e:
      checks.record_unreadable(e, log)
      continue
    example = checks.checked_example(stem, image, mask, None, min_side, log)
    if example is not None:
      yield example
