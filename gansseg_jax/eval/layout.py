"""Where `eval` keeps each dataset's results (W = workdir).

  W/eval/<dataset>/<predictor>.json         one (dataset, predictor) result
  W/eval/<dataset>/<predictor>_samples.npz  its first predictions (report)
  W/eval.json, W/eval.md                    every current result, rebuilt
                                            after each eval run

<dataset> is a readable, file-system safe name of the config.eval.datasets
entry plus a short hash of it (two folders named alike stay apart). Each
result is its own file, so evaluating another dataset or predictor adds
files and removes none. Pure path logic: the stage runner imports it.
"""
import hashlib
import os
import re

EVAL_DIR = "eval"
SUMMARY_FILES = ("eval.json", "eval.md")


def dataset_dir(key: str) -> str:
  """'eval/<slug>' for a config.eval.datasets entry."""
  readable = re.sub(r"[^A-Za-z0-9.-]+", "_", key).strip("._")[-40:]
  digest = hashlib.sha256(key.encode()).hexdigest()[:8]
  return os.path.join(EVAL_DIR, f"{readable.strip('._') or 'dataset'}_{digest}")


def result_path(key: str, predictor: str) -> str:
  return os.path.join(dataset_dir(key), f"{predictor}.json")


def samples_path(key: str, predictor: str) -> str:
  return os.path.join(dataset_dir(key), f"{predictor}_samples.npz")


def _names(text: str) -> list[str]:
  return [part.strip() for part in str(text).split(",") if part.strip()]


def predictors(eval_config) -> list[str]:
  """config.eval.predictor, then each config.eval.baselines not already it."""
  names = [eval_config.predictor]
  return names + [n for n in _names(eval_config.baselines) if n not in names]


def output_paths(eval_config) -> list[str]:
  """Every file one eval run writes (lenient: validation is the stage's)."""
  return list(SUMMARY_FILES) + [
      result_path(key, name) for key in _names(eval_config.datasets)
      for name in predictors(eval_config)]
