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
Every row holds each seed's maxF / IoU / acc and their mean and spread
(population std); the centre prior, wCtr* and the supervised ceiling are
scored on the same photos once (seed 0). `targets` then holds every
predictor's face / head / person numbers of the full configs/celeba.py run
in fill_s0 (the README's table), and, with --faces_workdir, those of a
configs/faces.py run (the DigiFace DCGAN) scored on the same photos:

  python -m gansseg_jax.main --config=configs/faces.py \
    --workdir=runs/faces_portraits \
    --config.generator.checkpoint=weights/gan_face_generate-1.1.1-py3-none-any.whl \
    --config.eval.datasets=<the three entries of configs/celeba.py> \
    --config.eval.optional_datasets= --config.eval.baselines=

Writes experiments/results/celeba_ablation.json with the machine and the
load average before and after, and prints the markdown rows.
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

FACE = celeba.portraits("face", "2/2")
TRAIN_HALF = f"folder:{celeba.CELEBAMASK}/images:{celeba.CELEBAMASK}/labels:part=1/2"
COMMON = [f"--config.eval.datasets={FACE}",
          f"--config.eval.real.dataset={TRAIN_HALF}"]
# variant: (workdir prefix, predictor scored, fill_holes)
VARIANTS = {
    "base": ("base", "unet", False),
    "fill": ("fill", "unet", True),
    "selftrain": ("fill", "selftrain", True),
}
REFERENCES = ["centre_prior", "wctr", "supervised"]
METRICS = ("maxF", "IoU", "acc")


def _run(workdir: str, overrides: list[str], common=tuple(COMMON)) -> float:
  """Seconds of one configs/celeba.py run (`common`: the face target only)."""
  start = time.time()
  subprocess.run([sys.executable, "-m", "gansseg_jax.main",
                  f"--config={REPO}/configs/celeba.py",
                  f"--workdir={workdir}", *common, *overrides],
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
  parser.add_argument("--faces_workdir", default="")
  parser.add_argument("--output", default=os.path.join(
      REPO, "experiments", "results", "celeba_ablation.json"))
  parser.add_argument("--faces_only", action="store_true",
                      help="add --faces_workdir's rows to --output as it is")
  args = parser.parse_args()
  if args.faces_only:
    with open(args.output) as f:
      document = json.load(f)
    document["targets"].update(_target_rows(args.faces_workdir, "digiface_"))
    document["load_average_faces"] = os.getloadavg()
    with open(args.output, "w") as f:
      json.dump(document, f, indent=1)
    return
  seeds = [int(s) for s in args.seeds.split(",")]
  load_before = os.getloadavg()
  rows, seconds = {}, {}
  for variant in args.variants.split(","):
    folder, predictor, fill_holes = VARIANTS[variant]
    per_seed = {m: [] for m in METRICS}
    for seed in seeds:
      workdir = os.path.join(args.workroot, f"{folder}_s{seed}")
      seconds[f"{variant}_s{seed}"] = _run(workdir, [
          f"--config.synth.fill_holes={fill_holes}",
          f"--config.eval.predictor={predictor}", "--config.eval.baselines=",
          f"--config.seed={seed}"])
      row = _face_rows(workdir)[predictor]
      for m in METRICS:
        per_seed[m].append(row[m])
    rows[variant] = {m: _summary(v) for m, v in per_seed.items()}
  reference_dir = os.path.join(args.workroot, f"fill_s{seeds[0]}")
  seconds["references"] = _run(reference_dir, [
      "--config.synth.fill_holes=True", "--config.eval.predictor=unet",
      f"--config.eval.baselines={','.join(REFERENCES)}",
      f"--config.seed={seeds[0]}"])
  found = _face_rows(reference_dir)
  references = {name: {m: found[name][m] for m in METRICS}
                for name in REFERENCES}
  seconds["celeba"] = _run(reference_dir, [f"--config.seed={seeds[0]}"],
                           common=())  # The config as shipped.
  targets = _target_rows(reference_dir, "")
  if args.faces_workdir:
    targets.update(_target_rows(args.faces_workdir, "digiface_"))
  document = {
      "what": "configs/celeba.py ablation, face target of the second half "
              "of the CelebAMask-HQ mini set (253 photos), eval.image_size "
              "64",
      "machine": f"{platform.processor() or platform.machine()}, "
                 f"{os.cpu_count()} cores (shared)",
      "load_average_before": load_before,
      "load_average_after": os.getloadavg(),
      "seeds": seeds, "rows": rows, "references": references,
      "targets": targets,
      "seconds": seconds, "date": time.strftime("%Y-%m-%d")}
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(document, f, indent=1)
  for variant, row in rows.items():
    print(f"| {variant} | " + " | ".join(
        f"{row[m]['mean']:.3f} ± {row[m]['std']:.3f}" for m in METRICS)
          + " |")
  for name, row in references.items():
    print(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS)
          + " |")
  for name, by_target in targets.items():
    print(f"| {name} | " + " | ".join(
        " / ".join(f"{by_target[t][m]:.3f}" for m in METRICS)
        for t in celeba.TARGETS if t in by_target) + " |")


if __name__ == "__main__":
  main()
