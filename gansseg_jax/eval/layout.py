"""Where `eval` keeps each dataset's results (W = workdir).

  W/eval/<dataset>/<predictor>.json         one (dataset, predictor) result
  W/eval/<dataset>/<predictor>_samples.npz  its first predictions (report)
  W/eval.json, W/eval.md                    every current result, rebuilt
                                            after each eval run

<dataset> is the dataset's own name, file-system safe and at most
NAME_CHARS long, then '_' and 8 hex digits of the sha256 of the whole
config.eval.datasets entry (two folders named alike stay apart): 'ecssd_…'
for a TFDS name, the folder holding images/ and masks/ ('pascal-s_…') or else
the images folder for a `folder:` entry, 'scenes_1_100_64_…' for
procedural scenes. Each result is its own file, so evaluating another
dataset or predictor adds files and removes none. Workdirs written before
(folder names cut from the right end of the entry, `legacy_dataset_dir`)
are moved to these names by the eval stage. Pure path logic: the stage
runner imports it.
"""
import hashlib
import os
import re
from typing import Optional

from gansseg_jax.infra import errors
from gansseg_jax.data import sources

EVAL_DIR = "eval"
SUMMARY_FILES = ("eval.json", "eval.md")
NAME_CHARS = 32  # Longest readable part of a dataset folder's name.


def _digest(key: str) -> str:
  return hashlib.sha256(key.encode()).hexdigest()[:8]


def dataset_name(key: str) -> str:
  """The readable name of a config.eval.datasets entry (unsanitised).

  `folder:<images>:<masks>`: the common parent of the two folders when they
  share one ('pascal-s' for pascal-s/images + pascal-s/masks), else the
  images folder; `folder:<root>`: root; then the entry's target and part
  ('celebamask-hq-mini face 2/2'), so datasets sharing a folder differ.
  Any other entry is its own name. Read from the entry's text alone (no
  file system, no working directory).
  """
  if not key.startswith(sources.FOLDER_PREFIX):
    return key
  try:
    spec = sources.folder_spec(key, "config.eval.datasets")
  except errors.UserError:  # Not a valid entry: its first folder's name.
    folders = [p for p in key[len(sources.FOLDER_PREFIX):].split(":") if p]
    return os.path.basename(os.path.normpath(folders[0])) if folders else key
  images, masks = (os.path.normpath(p)
                   for p in (spec.images_dir, spec.masks_dir))
  parent = os.path.dirname(images)
  if parent and parent == os.path.dirname(masks):
    return os.path.basename(parent) + spec.suffix()
  return os.path.basename(images) + spec.suffix()


def dataset_dir(key: str) -> str:
  """'eval/<name>_<hash>' for a config.eval.datasets entry."""
  readable = re.sub(r"[^A-Za-z0-9.-]+", "_", dataset_name(key))
  readable = readable.strip("._-")[:NAME_CHARS].strip("._-") or "dataset"
  return os.path.join(EVAL_DIR, f"{readable}_{_digest(key)}")


def legacy_dataset_dir(key: str) -> str:
  """The name older workdirs used (before datasets were named by their own
  entry): the entry's last 40
  safe characters (often a path's tail, 'older_work_...'), then the hash."""
  readable = re.sub(r"[^A-Za-z0-9.-]+", "_", key).strip("._")[-40:]
  return os.path.join(EVAL_DIR,
                      f"{readable.strip('._') or 'dataset'}_{_digest(key)}")


def result_path(key: str, predictor: str) -> str:
  return os.path.join(dataset_dir(key), f"{predictor}.json")


def samples_path(key: str, predictor: str) -> str:
  return os.path.join(dataset_dir(key), f"{predictor}_samples.npz")


def _names(text: str) -> list[str]:
  return [part.strip() for part in str(text).split(",") if part.strip()]


def dataset_keys(eval_config) -> list[str]:
  """The entries of config.eval.datasets, then those of
  config.eval.optional_datasets whose files are there now (unvalidated: an
  entry that does not parse counts as absent), so that a dataset put in
  place after a run is scored by the next one."""
  required = sources.split_entries(eval_config.datasets)
  return required + [
      entry for entry in sources.split_entries(eval_config.optional_datasets)
      if entry not in required and _present(entry, eval_config)]


def _present(entry: str, eval_config) -> bool:
  try:
    return sources.find_absent(entry, eval_config) is None
  except (errors.UserError, KeyError):
    return False


def predictors(eval_config) -> list[str]:
  """config.eval.predictor, then each config.eval.baselines not already it."""
  names = [eval_config.predictor]
  return names + [n for n in _names(eval_config.baselines) if n not in names]


def output_paths(eval_config) -> list[str]:
  """Every file one eval run writes (lenient: validation is the stage's)."""
  return list(SUMMARY_FILES) + [
      path for key in dataset_keys(eval_config)
      for name in predictors(eval_config)
      for path in (result_path(key, name), samples_path(key, name))]


def dataset_files(entry: str) -> Optional[str]:
  """A fingerprint of the files of a `folder:` dataset: every file's name,
  size and modification time under its images and masks folders (None for
  other datasets, which their name fixes)."""
  if not entry.startswith(sources.FOLDER_PREFIX):
    return None
  digest = hashlib.sha256()
  for folder in sources.folder_dirs(entry, "config.eval.datasets"):
    for parent, dirs, files in os.walk(folder):
      dirs.sort()
      for name in sorted(files):
        path = os.path.join(parent, name)
        info = os.stat(path)
        digest.update(f"{os.path.relpath(path, folder)}\0{info.st_size}\0"
                      f"{info.st_mtime_ns}\n".encode())
  return digest.hexdigest()[:16]


def datasets_files(eval_config) -> dict[str, Optional[str]]:
  """{entry: dataset_files(entry)} of every configured dataset (lenient)."""
  return {key: dataset_files(key) for key in dataset_keys(eval_config)
          if key.startswith(sources.FOLDER_PREFIX)}
