r"""Which wCtr* defaults are right on photos, large and small?

  python experiments/wctr_small_images.py --workroot=runs/wctr_sizes

wCtr*'s pixel sizes (600 px per superpixel, an 8 px border band) come from
the authors' demo on photos a few hundred pixels across; a baseline gets each
image at its own size (crop-mode datasets: the crop at
config.eval.image_size, e.g. 128 px for CUB). This runs the `eval` stage
with predictor wctr under each setting below on the face target of the
second half of the CelebAMask-HQ mini set (datasets/celebamask-hq-mini)
  portraits     at their own size, 512 px
  portraits 64  the same photos made 64 px (bilinear; label maps nearest),
                written to <workroot>/portraits64 by this script
each in <workroot>/<dataset>_<setting> (an existing workdir is reused), and
writes experiments/results/wctr_small_images.json with the machine and the
load average before and after; prints the markdown rows.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from configs import celeba  # pylint: disable=g-import-not-at-top,wrong-import-position

SMALL_SIDE = 64
# setting: (variant, short_side, min_short_side, pixels_per_superpixel)
SETTINGS = {
    "portraits": {
        "authors, own size": ("authors", 0, 0, 600.0),
        "paper, own size": ("paper", 0, 0, 600.0),
        "authors, 128 px, 150 px/sp": ("authors", 128, 0, 150.0),
    },
    "portraits 64": {
        "authors, own size": ("authors", 0, 0, 600.0),
        "paper, own size": ("paper", 0, 0, 600.0),
        "authors, at least 128 px": ("authors", 0, 128, 600.0),
        "authors, at least 256 px": ("authors", 0, 256, 600.0),
        "paper, at least 256 px": ("paper", 0, 256, 600.0),
    },
}
METRICS = ("maxF", "IoU", "acc")


def _slug(text: str) -> str:
  return "".join(c if c.isalnum() else "_" for c in text)


def _run(workdir: str, dataset: str, setting: tuple) -> dict:
  """eval with predictor wctr under one setting; its result on `dataset`."""
  variant, short, minimum, pixels = setting
  command = [
      sys.executable, "-m", "gansseg_jax.main",
      "--config=configs/celeba.py", f"--workdir={workdir}",
      "--config.stages=eval", "--config.eval.predictor=wctr",
      "--config.eval.baselines=", f"--config.eval.datasets={dataset}",
      f"--config.eval.wctr.variant={variant}",
      f"--config.eval.wctr.short_side={short}",
      f"--config.eval.wctr.min_short_side={minimum}",
      f"--config.eval.wctr.pixels_per_superpixel={pixels}"]
  start = time.perf_counter()
  subprocess.run(command, cwd=REPO, check=True)
  seconds = time.perf_counter() - start
  with open(os.path.join(workdir, "eval.json")) as f:
    results = json.load(f)
  (row,) = [r for r in _rows(results) if r.get("predictor") == "wctr"]
  return {**{m: row[m] for m in METRICS}, "images": row["images"],
          "seconds": seconds}


def _rows(results):
  """Every per-dataset, per-predictor result dict in eval.json."""
  if isinstance(results, dict):
    if "maxF" in results:
      yield results
    for value in results.values():
      yield from _rows(value)
  elif isinstance(results, list):
    for value in results:
      yield from _rows(value)


def small_copy(root: str) -> str:
  """The mini set at SMALL_SIDE px under `root` (made once); its root."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for kind, resample in (("images", Image.BILINEAR), ("labels", Image.NEAREST)):
    source, target = os.path.join(celeba.CELEBAMASK, kind), os.path.join(
        root, kind)
    os.makedirs(target, exist_ok=True)
    for name in sorted(os.listdir(source)):
      if not os.path.exists(os.path.join(target, name)):
        Image.open(os.path.join(source, name)).resize(
            (SMALL_SIDE, SMALL_SIDE), resample).save(
                os.path.join(target, name))
  return root


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workroot", default="runs/wctr_sizes")
  parser.add_argument("--out", default=os.path.join(
      REPO, "experiments", "results", "wctr_small_images.json"))
  args = parser.parse_args()
  small = small_copy(os.path.join(args.workroot, "portraits64"))
  datasets = {
      "portraits": celeba.portraits("face", "2/2"),
      "portraits 64": (f"folder:{small}/images:{small}/labels:classes=face"
                       ":part=2/2"),
  }
  record = {"machine": f"{platform.processor() or platform.machine()}, "
                       f"{os.cpu_count()} CPU cores",
            "load_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d"),
            "results": {}}
  for name, dataset in datasets.items():
    for setting, values in SETTINGS[name].items():
      workdir = os.path.join(args.workroot,
                             f"{_slug(name)}_{_slug(setting)}")
      record["results"].setdefault(name, {})[setting] = _run(
          workdir, dataset, values)
  record["load_after"] = os.getloadavg()
  with open(args.out, "w") as f:
    json.dump(record, f, indent=2)
  for name, rows in record["results"].items():
    print(f"\n| {name}: setting | maxF | IoU | acc | wall s |")
    print("|---|---|---|---|---|")
    for setting, r in rows.items():
      print(f"| {setting} | {r['maxF']:.3f} | {r['IoU']:.3f} | "
            f"{r['acc']:.3f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
  main()
