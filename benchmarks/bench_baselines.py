"""Baselines on a folder dataset (PASCAL-S): scores and speed, published beside.

  .venv/bin/python benchmarks/bench_baselines.py --data <pascal-s folder>
      [--predictors centre_prior,wctr:paper,wctr:authors] [--workers 2]
      [--max_images 0] [--cpu_images 0]

Each predictor runs through the project's own `eval` path
(gansseg_jax.eval.evaluate.evaluate_source on `folder:<data>`, masks
thresholded at 128 by the folder reader, the same metrics as eval.json), so
the rows are comparable with the U-Net's. `wctr:<variant>` selects
config.eval.wctr.variant. images/s is the whole path (decode, baseline over
--workers processes, metrics); the machine and its load average (before and
after) are recorded. Writes benchmarks/results/bench_baselines.json (merged
per predictor: a run of one predictor keeps the others' rows) and prints a
markdown table. --cpu_images N also times the baseline alone, in this
process, on the first N photos: CPU seconds per image (time.process_time),
which a loaded machine inflates far less than wall time; images/s on k idle
cores is then about k / that.
"""
import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks.bench_eval import default_eval_config  # pylint: disable=g-import-not-at-top
from gansseg_jax.infra import machine
from gansseg_jax.data import sources
from gansseg_jax.eval import baselines
from gansseg_jax.eval import evaluate

RESULTS = os.path.join(os.path.dirname(__file__), "results",
                       "bench_baselines.json")


def run(name: str, data: str, workers: int, max_images: int) -> dict:
  eval_config = default_eval_config()
  eval_config.baseline_workers = workers
  eval_config.max_images = max_images
  baseline, _, variant = name.partition(":")
  if variant:
    eval_config.wctr.variant = variant
  predictor = baselines.make(baseline, eval_config)
  source = sources.open_source(f"folder:{data}", eval_config)
  load_before = os.getloadavg()
  start = time.perf_counter()
  result = evaluate.evaluate_source(predictor, source, eval_config, 30.0)
  seconds = time.perf_counter() - start
  keep = ("images", "maxF", "maxF_threshold", "IoU", "acc", "MAE", "F_cut",
          "PxAP", "skipped")
  return dict({k: result[k] for k in keep if k in result},
              seconds=seconds, images_per_s=result["images"] / seconds,
              workers=workers, load_before=load_before,
              load_after=os.getloadavg(),
              settings=(eval_config.wctr.to_dict() if baseline == "wctr" else
                        {"centre_prior_sigma": eval_config.centre_prior_sigma}))


def cpu_seconds(name: str, data: str, count: int) -> dict:
  """The baseline's own CPU time per image over the first `count` photos."""
  eval_config = default_eval_config()
  baseline, _, variant = name.partition(":")
  if variant:
    eval_config.wctr.variant = variant
  predictor = baselines.make(baseline, eval_config)
  source = sources.open_source(f"folder:{data}", eval_config)
  examples = [next(source.examples) for _ in range(count)]
  predictor.saliency(examples[0].image)  # Imports, caches.
  start_cpu, start = time.process_time(), time.perf_counter()
  for example in examples:
    predictor.saliency(example.image)
  return {"images": count,
          "cpu_s_per_image": (time.process_time() - start_cpu) / count,
          "wall_s_per_image": (time.perf_counter() - start) / count,
          "load": os.getloadavg()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", required=True,
                      help="folder with images/ and masks/ (PASCAL-S)")
  parser.add_argument("--predictors",
                      default="centre_prior,wctr:paper,wctr:authors")
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--max_images", type=int, default=0)
  parser.add_argument("--cpu_images", type=int, default=0)
  parser.add_argument("--skip_eval", action="store_true",
                      help="only the --cpu_images timing")
  args = parser.parse_args()
  if not os.path.isdir(os.path.join(args.data, "images")):
    print(f"skipped: {args.data} has no images/ folder")
    return
  document = {"results": {}}
  if os.path.exists(RESULTS):
    with open(RESULTS) as f:
      document = json.load(f)
  for name in args.predictors.split(","):
    if not args.skip_eval:
      document["results"][name] = run(name, args.data, args.workers,
                                      args.max_images)
      print(name, json.dumps(document["results"][name]), flush=True)
    if args.cpu_images:
      document.setdefault("cpu", {})[name] = cpu_seconds(name, args.data,
                                                          args.cpu_images)
      print(name, json.dumps(document["cpu"][name]), flush=True)
  document.update(
      machine={"platform": platform.platform(),
               "processor": machine.cpu_model(),
               "cpus": machine.usable_cores()},
      data=os.path.basename(os.path.abspath(args.data)))
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w") as f:
    json.dump(document, f, indent=2, sort_keys=True)
  print("| predictor | images | maxFβ | IoU | acc | MAE | images/s "
        "(workers) |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  for name, r in document["results"].items():
    print(f"| {name} | {r['images']} | {r['maxF']:.3f} | {r['IoU']:.3f} "
          f"| {r['acc']:.3f} | {r['MAE']:.3f} | {r['images_per_s']:.2f} "
          f"({r['workers']}) |")
  for name, r in document.get("cpu", {}).items():
    print(f"{name}: {r['cpu_s_per_image']:.3f} CPU s/image over {r['images']} "
          f"images (wall {r['wall_s_per_image']:.3f} s, load {r['load'][0]:.1f})")


if __name__ == "__main__":
  main()
