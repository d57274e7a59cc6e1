r"""What closes the gap on real portraits: configs/celeba.py's ablation.

  python experiments/ablation_celeba.py --seeds=0,1 --workroot=runs/ablation

Each variant runs the whole pipeline of configs/celeba.py (generateme CelebA
DCGAN, SeFa + appendix-B scoring, U-Net) once per seed, in
<workroot>/<variant>_s<seed> (an existing workdir is resumed: finished
stages are kept), and is scored on the face target of the second half of
datasets/celebamask-hq-mini (the photos no variant trains on):
  base        the paper's method with configs/celeba.py's sizes
  fill        + solid masks: holes a synthetic mask encloses filled
              (config.synth.fill_holes)
  selftrain   fill's U-Net, then self-training on the unlabelled first half
              (predictor 'selftrain', gansseg_jax/train/real.py), scored in
              fill's workdir
  relight     fill + photometric augmentation of the GAN pairs
              (config.train.photometric_augment 1, train/augment.py)
  shift       relight + random shifts of the GAN pairs
              (config.train.shift_augment 0.35)
  shift_selftrain  shift's U-Net, then self-training with the same
              augmentations (config.eval.real.photometric_augment 1,
              shift_augment 0.35): configs/celeba.py as shipped
All of them choose the direction with configs/celeba.py's
config.score.min_centre.
Every row holds each seed's maxF / IoU / acc and their mean and spread
(population std), with the date and load average of its runs; rows of
variants not run this time are kept from --output. With --celeba_workdir
(a run of configs/celeba.py as shipped, every target and baseline), the
centre prior, wCtr* and the supervised ceiling on the face target
(`references`) and every predictor's face / head / person numbers
(`targets`, the README's table) are read from its eval.json; with
--faces_workdir, those of a configs/faces.py run (the DigiFace DCGAN)
scored on the same photos are added:

  python -m gansseg_jax.main --config=configs/faces.py \
    --workdir=runs/faces_portraits \
    --config.generator.checkpoint=weights/gan_face_generate-1.1.1-py3-none-any.whl \
    --config.eval.datasets=<the three entries of configs/celeba.py> \
    --config.eval.optional_datasets= --config.eval.baselines=

Writes experiments/results/celeba_ablation.json with the machine, and prints
the markdown rows.
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
from configs import default  # pylint: disable=g-import-not-at-top,wrong-import-position

FACE = celeba.portraits("face", "2/2")
TRAIN_HALF = f"folder:{celeba.CELEBAMASK}/images:{celeba.CELEBAMASK}/labels:part=1/2"
COMMON = [f"--config.eval.datasets={FACE}",
          f"--config.eval.real.dataset={TRAIN_HALF}"]
# variant: (workdir prefix, predictor scored, fill_holes, photometric
# strength and shift of the GAN pairs; self-training's are the same, with
# eval.real's default shift where the GAN pairs have none).
VARIANTS = {
    "base": ("base", "unet", False, 0.0, 0.0),
    "fill": ("fill", "unet", True, 0.0, 0.0),
    "selftrain": ("fill", "selftrain", True, 0.0, 0.0),
    "relight": ("relight", "unet", True, 1.0, 0.0),
    "shift": ("shift", "unet", True, 1.0, 0.35),
    "shift_selftrain": ("shift", "selftrain", True, 1.0, 0.35),
}
REFERENCES = ["centre_prior", "wctr", "supervised"]
METRICS = ("maxF", "IoU", "acc")


def _run(workdir: str, overrides: list[str]) -> float:
  """Seconds of one configs/celeba.py run scored on the face target only."""
  start = time.time()
  subprocess.run([sys.executable, "-m", "gansseg_jax.main",
                  f"--config={REPO}/configs/celeba.py",
                  f"--workdir={workdir}", *COMMON, *overrides],
                 check=True, cwd=REPO)
  return time.time() - start


def _face_rows(workdir: str) -> dict:
  with open(os.path.join(workdir, "eval.json")) as f:
    document = json.load(f)
  return document["datasets"][FACE]["rows"]


def _target_rows(workdir: str, prefix: str) -> dict:
  """{prefix + predictor: {target: {maxF, IoU, acc}}} of a workdir's eval."""
  with open(os.path.join(workdir, "eval.json")) as f:
    datasets = json.load(f)["datasets"]
  rows = {}
  for target in celeba.TARGETS:
    for name, row in datasets[celeba.portraits(target, "2/2")]["rows"].items():
      rows.setdefault(prefix + name, {})[target] = {m: row[m] for m in METRICS}
  return rows


def _summary(values: list[float]) -> dict:
  mean = sum(values) / len(values)
  spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
  return {"mean": mean, "std": spread, "seeds": values}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", default="0,1")
  parser.add_argument("--workroot", default=os.path.join(REPO, "runs",
                                                         "ablation"))
  parser.add_argument("--variants", default=",".join(VARIANTS))
  parser.add_argument("--celeba_workdir", default="")
  parser.add_argument("--faces_workdir", default="")
  parser.add_argument("--output", default=os.path.join(
      REPO, "experiments", "results", "celeba_ablation.json"))
  args = parser.parse_args()
  document = {"rows": {}, "references": {}, "targets": {}}
  if os.path.exists(args.output):
    with open(args.output) as f:
      document.update(json.load(f))
  seeds = [int(s) for s in args.seeds.split(",")]
  for variant in filter(None, args.variants.split(",")):
    folder, predictor, fill_holes, strength, shift = VARIANTS[variant]
    real_shift = shift or default.get_config().eval.real.shift_augment
    per_seed = {m: [] for m in METRICS}
    load_before, seconds = os.getloadavg(), {}
    for seed in seeds:
      workdir = os.path.join(args.workroot, f"{folder}_s{seed}")
      seconds[f"s{seed}"] = _run(workdir, [
          f"--config.synth.fill_holes={fill_holes}",
          f"--config.train.photometric_augment={strength}",
          f"--config.eval.real.photometric_augment={strength}",
          f"--config.train.shift_augment={shift}",
          f"--config.eval.real.shift_augment={real_shift}",
          f"--config.eval.predictor={predictor}", "--config.eval.baselines=",
          f"--config.seed={seed}"])
      row = _face_rows(workdir)[predictor]
      for m in METRICS:
        per_seed[m].append(row[m])
    document["rows"][variant] = {m: _summary(v) for m, v in per_seed.items()}
    document["rows"][variant].update(
        date=time.strftime("%Y-%m-%d"), seconds=seconds,
        load_average_before=load_before, load_average_after=os.getloadavg())
  if args.celeba_workdir:
    document["targets"].update(_target_rows(args.celeba_workdir, ""))
    document["references"] = {
        name: document["targets"][name]["face"] for name in REFERENCES}
    document["celeba_workdir_date"] = time.strftime("%Y-%m-%d")
  if args.faces_workdir:
    document["targets"].update(_target_rows(args.faces_workdir, "digiface_"))
  document.update(
      what="configs/celeba.py ablation, face target of the second half of "
           "the CelebAMask-HQ mini set (253 photos), eval.image_size 64",
      machine=f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores")
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(document, f, indent=1)
  for variant, row in document["rows"].items():
    print(f"| {variant} | " + " | ".join(
        f"{row[m]['mean']:.3f} ± {row[m]['std']:.3f}" for m in METRICS)
          + " |")
  for name, row in document["references"].items():
    print(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS)
          + " |")
  for name, by_target in document["targets"].items():
    print(f"| {name} | " + " | ".join(
        " / ".join(f"{by_target[t][m]:.3f}" for m in METRICS)
        for t in celeba.TARGETS if t in by_target) + " |")


if __name__ == "__main__":
  main()
