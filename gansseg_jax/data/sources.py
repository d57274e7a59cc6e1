"""Evaluation datasets by name: what `config.eval.datasets` may list.

Names (docs/method.md section 9) and how each meets the model
(gansseg_jax.data.preprocess):
  ecssd      ECSSD, all 1000 images                       full image
  duts_te    DUTS-TE, 5019 images (duts_tr: DUTS-TR)      full image
  dut_omron  DUT-OMRON, all 5168 images                   full image
  flowers    Oxford 102 Flowers, ReDO's test split        centre crop + resize
  cub        CUB-200-2011, ReDO's test split, with boxes  centre crop + resize
  folder:<images_dir>:<masks_dir>  (or folder:<root> with root/images and
             root/masks): any images + masks matched by stem, full image.
             Options may follow, each `:<name>=<value>`:
               classes=<ids>  the masks are class-id maps (one integer label
                 per pixel); foreground = the listed ids, e.g. `1-12,15`
                 (ranges inclusive), or a named target of the CelebAMask-HQ
                 layout: face, head, person (CELEBAMASK_TARGETS).
               part=<k>/<n>  only the k-th of n equal parts of the pairs in
                 sorted stem order (`part=1/2`: the first half), so one
                 folder splits into disjoint train / eval halves.
             One folder with other options is another dataset, with its own
             name in logs, tables, result files and the report.
  scenes:<seed>:<count>:<resolution>  procedural scenes with exact masks
             (gansseg_jax.data.scenes; the demo's held-out set), full image.

TFDS datasets are prepared on first use from the raw downloads in
`<config.eval.manual_dir>/<subdir>/` (ecssd/, duts/, dut_omron/, flowers/;
cub/ holds ReDO's split files, see gansseg_jax.data.cub) into
`config.eval.data_dir`; nothing is downloaded except caltech_birds2011 when
`config.eval.allow_download`. TensorFlow is imported only for them.

`config.eval.optional_datasets` lists datasets the same way, evaluated only
when their files are there: `available_datasets` logs one warning per absent
one (which, where it was looked for, how to get it) and `absent_datasets`
gives the same facts to the report. The presence test is cheap (folders
exist); a dataset found but unreadable is still an error at opening.
"""
import dataclasses
import os
import re
import types
from typing import Callable, Iterator, Optional

from absl import logging
import ml_collections
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import optional
from gansseg_jax.data import checks
from gansseg_jax.data import example as example_lib
from gansseg_jax.data import folder

FOLDER_PREFIX = "folder:"
FOLDER_FORM = (f"{FOLDER_PREFIX}<images_dir>:<masks_dir>[:classes=<ids>]"
               "[:part=<k>/<n>] or folder:<root>[:...]")
# Binary targets of CelebAMask-HQ's class ids (0 background, 1 skin, 2 nose,
# 3 eyeglasses, 4-5 eyes, 6-7 brows, 8-9 ears, 10 mouth, 11-12 lips, 13 hair,
# 14 hat, 15 earring, 16 necklace, 17 neck, 18 cloth).
_FACE = frozenset(range(1, 13)) | {15}
CELEBAMASK_TARGETS = {
    "face": _FACE,
    "head": _FACE | {13, 14},
    "person": frozenset(range(1, 19)),
}
SCENES_PREFIX = "scenes:"
SCENES_FORM = f"{SCENES_PREFIX}<seed>:<count>:<resolution>"


@dataclasses.dataclass(frozen=True)
class Known:
  title: str  # Name in tables.
  mode: str  # 'full' or 'crop' (gansseg_jax.data.preprocess).
  has_boxes: bool  # Ground-truth boxes for MaxBoxAcc.
  manual_subdir: str  # Folder of the raw downloads in config.eval.manual_dir.


KNOWN = {
    "ecssd": Known("ECSSD", "full", False, "ecssd"),
    "duts_te": Known("DUTS-TE", "full", False, "duts"),
    "duts_tr": Known("DUTS-TR", "full", False, "duts"),
    "dut_omron": Known("DUT-OMRON", "full", False, "dut_omron"),
    "flowers": Known("Flowers", "crop", False, "flowers"),
    "cub": Known("CUB-200-2011", "crop", True, "cub"),
}


# How to get a known dataset, said when an optional one is absent.
HOW_TO_GET = {
    "ecssd": "download images.zip and ground_truth_mask.zip from the ECSSD "
             "page (Shi et al., CUHK) into it",
    "duts_te": "download DUTS-TE.zip from the DUTS page (Wang et al.) into it",
    "duts_tr": "download DUTS-TR.zip from the DUTS page (Wang et al.) into it",
    "dut_omron": "download DUT-OMRON-image.zip and "
                 "DUT-OMRON-gt-pixelwise.zip.zip from the DUT-OMRON page into "
                 "it",
    "flowers": "download 102flowers.tgz, 102segmentations.tgz and setid.mat "
               "from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ into it",
    "cub": "put ReDO's datasplits/cub/train_val_test_split.txt and CUB's "
           "images.txt into it (TFDS prepares caltech_birds2011 itself)",
}
# Folder datasets known by their folder name ({images}, {masks}: the dirs).
HOW_TO_GET_FOLDER = {
    "pascal-s": "put the 850 images of PASCAL-S (Li, Hou, Koch, Rehg, Yuille, "
                "CVPR 2014; cbi.gatech.edu/salobj) in {images} and their "
                "masks in {masks}, matched by file name",
    "celebamask-hq-mini": "put the portraits of CelebAMask-HQ (Lee et al., "
                          "CVPR 2020; research use only) in {images} and "
                          "their class-id label maps (NAME.png) in {masks}",
}
# TFDS's folder names of the prepared datasets (a prepared one needs no
# raw files).
_PREPARED_NAME = {"ecssd": "ecssd", "duts_te": "duts_te", "duts_tr": "duts_tr",
                  "dut_omron": "dut_omron",
                  "flowers": "flowers102_segmentation"}


@dataclasses.dataclass(frozen=True)
class Absent:
  """An optional dataset whose files are not there."""
  entry: str  # As listed in config.eval.optional_datasets.
  looked_in: str  # The folder(s) searched.
  how_to_get: str

  def line(self) -> str:
    return (f"optional dataset {self.entry} is absent: looked in "
            f"{self.looked_in}; to include it, {self.how_to_get}, then run "
            "the eval and report stages again (--config.stages=eval,report "
            "--config.force=True)")


@dataclasses.dataclass
class Source:
  """An opened dataset: its examples stream once, in a fixed order."""
  key: str  # The entry of config.eval.datasets.
  title: str
  mode: str
  has_boxes: bool
  size: int  # Examples it will yield at most (skipped ones are fewer).
  examples: Iterator[example_lib.Example]
  log: example_lib.ReadLog


@dataclasses.dataclass(frozen=True)
class FolderSpec:
  """A parsed `folder:` entry (text only: nothing is read)."""
  images_dir: str
  masks_dir: str
  classes: Optional[frozenset[int]]  # Foreground ids of class maps; None: binary masks.
  target: str  # How `classes` was written ('face', '1-12,15'); '' without.
  part: Optional[tuple[int, int]]  # (k, n): the k-th of n parts; None: all.

  def suffix(self) -> str:
    """' face 2/2' for classes=face:part=2/2 (names and titles), else ''."""
    return "".join(f" {text}" for text in (
        self.target, f"{self.part[0]}/{self.part[1]}" if self.part else "")
                   if text)


_ID_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def _parse_classes(text: str, entry: str, field: str) -> frozenset[int]:
  """Ids of 'face' / 'head' / 'person' or of a list like '1-12,15'."""
  if text in CELEBAMASK_TARGETS:
    return CELEBAMASK_TARGETS[text]
  ids = set()
  for piece in text.split(","):
    match = _ID_RANGE.match(piece.strip())
    if not match or int(match.group(2) or match.group(1)) < int(
        match.group(1)):
      raise errors.UserError(
          f"{field}: {entry!r}: classes={text!r} is not a list of class ids "
          f"and ranges ('1-12,15') or one of {', '.join(CELEBAMASK_TARGETS)}")
    ids.update(range(int(match.group(1)),
                     int(match.group(2) or match.group(1)) + 1))
  return frozenset(ids)


def _parse_part(text: str, entry: str, field: str) -> tuple[int, int]:
  match = re.match(r"^(\d+)/(\d+)$", text)
  if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
    raise errors.UserError(
        f"{field}: {entry!r}: part={text!r} is not <k>/<n> with 1 <= k <= n")
  return int(match.group(1)), int(match.group(2))


def folder_spec(entry: str, field: str) -> FolderSpec:
  """The FolderSpec of a 'folder:...' entry; UserError naming `field`."""
  parts = entry[len(FOLDER_PREFIX):].split(":")
  options = {}
  while parts and "=" in parts[-1]:
    name, _, value = parts.pop().partition("=")
    if name not in ("classes", "part") or name in options or not value:
      raise errors.UserError(
          f"{field}: {entry!r}: option {name}={value!r} is not one of "
          "classes=<ids>, part=<k>/<n> (each at most once)")
    options[name] = value
  if len(parts) == 1 and parts[0]:
    dirs = os.path.join(parts[0], "images"), os.path.join(parts[0], "masks")
  elif len(parts) == 2 and all(parts):
    dirs = parts[0], parts[1]
  else:
    raise errors.UserError(f"{field}: {entry!r} is not {FOLDER_FORM}")
  classes = options.get("classes")
  return FolderSpec(
      images_dir=dirs[0], masks_dir=dirs[1],
      classes=(None if classes is None
               else _parse_classes(classes, entry, field)),
      target=classes or "",
      part=(_parse_part(options["part"], entry, field) if "part" in options
            else None))


def images_entry(entry: str) -> str:
  """What identifies an entry's images: a `folder:` entry without its
  `classes=` option (targets of one folder read the same images); any other
  entry as it is."""
  if not entry.startswith(FOLDER_PREFIX):
    return entry
  return ":".join(p for p in entry.split(":") if not p.startswith("classes="))


def split_entries(text: str) -> list[str]:
  """The entries of a comma-separated dataset list.

  A class list of a `classes=` option holds commas too ('classes=1-12,15'):
  a piece that is only an id or a range continues the entry before it when
  that entry ends in such a list.
  """
  entries: list[str] = []
  for piece in (p.strip() for p in str(text).split(",")):
    if (entries and _ID_RANGE.match(piece)
        and re.search(r":classes=[\d,-]+$", entries[-1])):
      entries[-1] += "," + piece
    elif piece:
      entries.append(piece)
  return entries


def parse_dataset_list(text: str, field: str) -> list[str]:
  """The comma-separated entries of `text`, validated (not yet opened)."""
  entries = split_entries(text)
  if not entries:
    raise errors.UserError(
        f"{field}: empty; list one or more of {', '.join(KNOWN)} or "
        f"{FOLDER_FORM}")
  for entry in entries:
    if entry.startswith(FOLDER_PREFIX):
      folder_dirs(entry, field)
    elif entry.startswith(SCENES_PREFIX):
      scenes_spec(entry, field)
    elif entry not in KNOWN:
      raise errors.UserError(
          f"{field}: unknown dataset {entry!r}; known: {', '.join(KNOWN)}, "
          f"{FOLDER_FORM} or {SCENES_FORM}")
  if len(set(entries)) != len(entries):
    raise errors.UserError(f"{field}: a dataset is listed twice in {text!r}")
  return entries


def folder_dirs(entry: str, field: str) -> tuple[str, str]:
  """(images_dir, masks_dir) of a 'folder:...' entry."""
  spec = folder_spec(entry, field)
  return spec.images_dir, spec.masks_dir


def scenes_spec(entry: str, field: str) -> tuple[int, int, int]:
  """(seed, count, resolution) of a 'scenes:...' entry (procedural scenes)."""
  parts = entry[len(SCENES_PREFIX):].split(":")
  try:
    seed, count, resolution = (int(p) for p in parts)
  except ValueError:
    seed = count = resolution = -1
  if seed < 0 or count < 1 or resolution < 8:
    raise errors.UserError(
        f"{field}: {entry!r} is not {SCENES_FORM} (seed >= 0, count >= 1, "
        "resolution >= 8)")
  return seed, count, resolution


def _open_scenes(entry: str, field: str) -> Source:
  """Procedural scenes with exact masks (gansseg_jax.data.scenes)."""
  from gansseg_jax.data import scenes  # pylint: disable=g-import-not-at-top
  seed, count, resolution = scenes_spec(entry, field)
  logging.info("eval: rendering %d procedural scenes (seed %d, %d px)", count,
               seed, resolution)
  rendered = scenes.render_scenes(seed, count, resolution)
  images = np.round((rendered.images + 1.0) * 127.5).astype(np.uint8)
  examples = (example_lib.Example(name=f"scene_{seed}_{i:06d}",
                                  image=images[i],
                                  mask=rendered.masks[i] > 0.5)
              for i in range(count))
  return Source(key=entry, title=f"scenes (seed {seed})", mode="full",
                has_boxes=False, size=count, examples=examples,
                log=example_lib.ReadLog())


def folder_title(images_dir: str, masks_dir: str) -> str:
  """'pascal-s' for pascal-s/images + pascal-s/masks, else the images folder."""
  images_dir, masks_dir = (os.path.abspath(d) for d in (images_dir, masks_dir))
  parent = os.path.dirname(images_dir)
  if parent == os.path.dirname(masks_dir) and os.path.basename(parent):
    return os.path.basename(parent)
  return os.path.basename(images_dir)


def folder_pairs(entry: str, field: str) -> folder.FolderPairs:
  """The matched pairs of a 'folder:...' entry, only its part if it names
  one (the k-th of n slices of the pairs in sorted stem order)."""
  spec = folder_spec(entry, field)
  pairs = folder.match_folders(spec.images_dir, spec.masks_dir, field)
  if spec.part is None:
    return pairs
  k, n = spec.part
  total = len(pairs.pairs)
  chosen = pairs.pairs[(k - 1) * total // n:k * total // n]
  if not chosen:
    raise errors.UserError(
        f"{field}: {entry!r}: part {k}/{n} of {total} pairs is empty")
  return dataclasses.replace(pairs, pairs=chosen)


def _open_folder(entry: str, eval_config: ml_collections.ConfigDict,
                 field: str) -> Source:
  spec = folder_spec(entry, field)
  pairs = folder_pairs(entry, field)
  log = example_lib.ReadLog()
  return Source(key=entry,
                title=folder_title(spec.images_dir, spec.masks_dir)
                + spec.suffix(),
                mode="full", has_boxes=False, size=len(pairs.pairs),
                examples=folder.iterate_examples(pairs, eval_config.min_side,
                                                 log, spec.classes),
                log=log)


def _manual_dir(eval_config: ml_collections.ConfigDict, data_dir_root: str,
                subdir: str) -> str:
  root = eval_config.manual_dir or os.path.join(data_dir_root, "downloads",
                                                "manual")
  return os.path.join(root, subdir)


def _builder_class(name: str) -> Callable:
  """The TFDS builder class of a name (imports TensorFlow)."""
  # pylint: disable=g-import-not-at-top
  from gansseg_jax.data.tfds_builders import dut_omron
  from gansseg_jax.data.tfds_builders import duts
  from gansseg_jax.data.tfds_builders import ecssd
  from gansseg_jax.data.tfds_builders import flowers
  # pylint: enable=g-import-not-at-top
  return {"ecssd": ecssd.Ecssd, "duts_te": duts.DutsTe, "duts_tr": duts.DutsTr,
          "dut_omron": dut_omron.DutOmron,
          "flowers": flowers.Flowers102Segmentation}[name]


def _single_line(text: str) -> str:
  return " ".join(str(text).split())


def _open_manual_tfds(name: str, split: str,
                      eval_config: ml_collections.ConfigDict,
                      tfds: types.ModuleType) -> Source:
  """A manual-download TFDS dataset, prepared on first use."""
  known = KNOWN[name]
  builder = _builder_class(name)(data_dir=eval_config.data_dir or None)
  manual_dir = _manual_dir(eval_config, os.fspath(builder.data_dir_root),
                           known.manual_subdir)
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual_dir, try_download_gcs=False))
  except AssertionError as e:  # TFDS's "manual dir missing or empty".
    raise errors.UserError(
        f"config.eval.manual_dir: {name} needs its raw files in {manual_dir}: "
        f"{_single_line(builder.MANUAL_DOWNLOAD_INSTRUCTIONS)}") from e
  dataset = builder.as_dataset(split=split, shuffle_files=False)
  log = example_lib.ReadLog()
  min_side = eval_config.min_side

  def generate():
    for record in tfds.as_numpy(dataset):
      example = checks.checked_example(
          record["name"].decode(), record["image"],
          record["mask"][:, :, 0] > 127, None, min_side, log)
      if example is not None:
        yield example

  return Source(key=name, title=known.title, mode=known.mode,
                has_boxes=known.has_boxes,
                size=builder.info.splits[split].num_examples,
                examples=generate(), log=log)


def _open_cub(eval_config: ml_collections.ConfigDict,
              tfds: types.ModuleType) -> Source:
  from gansseg_jax.data import cub  # pylint: disable=g-import-not-at-top

  known = KNOWN["cub"]
  data_dir_root = eval_config.data_dir or tfds.core.constants.DATA_DIR
  log = example_lib.ReadLog()
  examples, size = cub.examples(
      eval_config.data_dir, _manual_dir(eval_config, data_dir_root,
                                        known.manual_subdir),
      "test", eval_config.allow_download, eval_config.min_side, log)
  return Source(key="cub", title=known.title, mode=known.mode,
                has_boxes=True, size=size, examples=examples, log=log)


def _tfds_data_dir(eval_config: ml_collections.ConfigDict) -> str:
  """config.eval.data_dir, else TFDS's default (without importing TFDS)."""
  return (eval_config.data_dir or os.environ.get("TFDS_DATA_DIR")
          or os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))


def find_absent(entry: str,
                eval_config: ml_collections.ConfigDict) -> Absent | None:
  """Absent(...) when the files of a validated entry are not there."""
  if entry.startswith(SCENES_PREFIX):
    return None
  if entry.startswith(FOLDER_PREFIX):
    images_dir, masks_dir = folder_dirs(entry, "config.eval.optional_datasets")
    if os.path.isdir(images_dir) and os.path.isdir(masks_dir):
      return None
    title = folder_title(images_dir, masks_dir)
    how = HOW_TO_GET_FOLDER.get(
        title, "put its images in {images} and masks with the same file "
        "names in {masks}")
    return Absent(entry, f"{images_dir} and {masks_dir}",
                  how.format(images=images_dir, masks=masks_dir))
  data_dir = _tfds_data_dir(eval_config)
  manual = _manual_dir(eval_config, data_dir, KNOWN[entry].manual_subdir)
  prepared = _PREPARED_NAME.get(entry)
  if os.path.isdir(manual) or (
      prepared and os.path.isdir(os.path.join(data_dir, prepared))):
    return None
  looked_in = manual + (f" and {os.path.join(data_dir, prepared)}"
                        if prepared else "")
  return Absent(entry, looked_in, f"make {manual} and {HOW_TO_GET[entry]}")


def absent_datasets(eval_config: ml_collections.ConfigDict) -> list[Absent]:
  """The entries of config.eval.optional_datasets whose files are not there."""
  field = "config.eval.optional_datasets"
  if not eval_config.optional_datasets.strip():
    return []
  entries = parse_dataset_list(eval_config.optional_datasets, field)
  return [a for a in (find_absent(e, eval_config) for e in entries) if a]


def available_datasets(eval_config: ml_collections.ConfigDict) -> list[str]:
  """config.eval.datasets, then the optional datasets that are there.

  Logs one warning per absent optional dataset (`Absent.line`); raises
  UserError when nothing is left to evaluate or an entry is listed twice.
  """
  required = (parse_dataset_list(eval_config.datasets, "config.eval.datasets")
              if eval_config.datasets.strip() else [])
  optional = (parse_dataset_list(eval_config.optional_datasets,
                                 "config.eval.optional_datasets")
              if eval_config.optional_datasets.strip() else [])
  both = set(required) & set(optional)
  if both:
    raise errors.UserError(
        f"config.eval.optional_datasets: {sorted(both)[0]!r} is also in "
        "config.eval.datasets")
  absent = {a.entry: a for a in absent_datasets(eval_config)}
  for a in absent.values():
    logging.warning("eval: %s", a.line())
  entries = required + [e for e in optional if e not in absent]
  if not entries:
    raise errors.UserError(
        "config.eval.datasets: empty, and no dataset of "
        "config.eval.optional_datasets is present"
        + "".join(f"; {a.line()}" for a in absent.values()))
  return entries


def open_source(entry: str, eval_config: ml_collections.ConfigDict,
                field: str = "config.eval.datasets") -> Source:
  """Opens one validated entry of config.eval.datasets."""
  if entry.startswith(FOLDER_PREFIX):
    return _open_folder(entry, eval_config, field)
  if entry.startswith(SCENES_PREFIX):
    return _open_scenes(entry, field)
  tfds = optional.load("tensorflow_datasets", f"{field}: {entry!r}",
                       optional.TF_EXTRA)
  if entry == "cub":
    return _open_cub(eval_config, tfds)
  split = "train" if entry == "duts_tr" else "test"
  return _open_manual_tfds(entry, split, eval_config, tfds)

