r"""Fault injection at random moments of each long stage, through the CLI.

  python benchmarks/faults.py [--trials=2] [--seed=0]

A reference run of `configs/test.py` (stages convert, embed, discover, score,
train; embed with a planted encoder, since the test generator has none; the
histogram filter off, so that training keeps samples of the random
generator; no TensorBoard) is made once, uninterrupted. Then, for each long stage S and each fault below,
a copy of that workdir without S's outputs, marker, checkpoints and scratch
runs `--config.stages=S` with the fault, and the same command again without
it. The outputs of S must equal the reference's bit for bit (orbax folders
compared as restored arrays: their metadata holds timestamps), and no
temporary entry may be left in the workdir. Faults (tools/fault_injection.py
plants the ones inside the process):

  compile     kill -9 at a random moment of the stage's first 2 seconds
              (generator load, compilation or its cache); its rerun, a
              whole run of the stage with a warm compilation cache, times
              the random moments below
  mid-run     kill -9 at a uniformly random moment of that warm duration
  checkpoint  kill -9 just after a random checkpoint's asynchronous write
              started (discover, train)
  output      kill -9 at the atomic rename of one of S's outputs, the
              temporary complete and left behind
  disk full   that rename raises OSError(ENOSPC); the run fails, then
              the disk is "freed" and the run repeated
  sigterm     SIGTERM at a random moment (discover, train: saved and exit
              143; other stages end at once, also 143)

Prints a table (faults injected, runs recovered, outputs identical, files
left behind) and writes benchmarks/results/faults.json (each run with its
machine, load and seed; runs of stages not in --stages are kept). Not run by
CI.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
sys.path[:0] = [ROOT, TOOLS]

import fault_injection  # pylint: disable=g-import-not-at-top,wrong-import-position
from gansseg_jax.infra import fileio  # pylint: disable=g-import-not-at-top,wrong-import-position
from gansseg_jax.infra import machine  # pylint: disable=g-import-not-at-top,wrong-import-position

RESULTS = os.path.join(ROOT, "benchmarks", "results", "faults.json")
PREEMPTED_EXIT = 128 + signal.SIGTERM

CHILD = """
import contextlib, os, sys
sys.path[:0] = [{root!r}, {tools!r}]
sys.modules["clu"] = None  # metrics.jsonl only: no tensorflow import.
import numpy as np
import fault_injection
fault_injection.install()
from gansseg_jax.embed import stage as embed

@contextlib.contextmanager
def planted_encoder(config, workdir, source):
  # z = per-channel means and spreads of the image, tiled to z_dim.
  def encode(images, start):
    stats = np.concatenate([images.mean(axis=(1, 2)), images.std(axis=(1, 2))],
                           axis=1)
    return np.tile(stats, (1, 40))[:, :config.generator.z_dim]
  yield encode
embed._encoder = planted_encoder
from absl import app
from gansseg_jax import main
sys.argv = ["gansseg_jax.main"] + sys.argv[1:]
app.run(main.main, flags_parser=main.parse_flags)
"""

# Longer than configs/test.py, so that random moments land inside loops.
OVERRIDES = ("--config.directions.steps=40", "--config.directions.log_every=10",
             "--config.directions.checkpoint_every=10",
             "--config.train.steps=24", "--config.train.log_every=4",
             "--config.train.eval_every=8", "--config.train.checkpoint_every=4",
             "--config.embed.source=flax", "--config.embed.batch_size=4",
             "--config.embed.parts_every=2", "--config.embed.image_size=32",
             "--config.synth.histogram_filter=False",  # Keeps samples of
             "--config.log.progress_every_s=1000")  # the random generator.

STAGES = {  # stage: (outputs compared, entries removed before it runs)
    "embed": (("embeddings.npy",), ("embeddings.npy", "embeddings.partial")),
    "discover": (("directions.npy",),
                 ("directions.npy", "checkpoints/discover",
                  "discover_strips")),
    "score": (("ranking.csv", "ranking.md", "strips", "bg_direction.npy",
               "bg_affine.npy"),
              ("ranking.csv", "ranking.md", "strips", "bg_direction.npy",
               "bg_affine.npy")),
    "train": (("unet",), ("unet", "checkpoints/train")),
}
CHECKPOINTS = {"discover": (10, 20, 30, 40), "train": (4, 8, 12, 16, 20, 24)}
OUTPUT_FILE = {"embed": "embeddings.npy", "discover": "directions.npy",
               "score": "bg_direction.npy", "train": None}
LOOPS = ("discover", "train")


def _env(cache: str, fault: str = "") -> dict:
  env = dict(os.environ)
  env.update({"JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": cache,
              "XLA_FLAGS": "--xla_backend_optimization_level=0",
              "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
              "PYTHONPATH": os.pathsep.join([ROOT, TOOLS]),
              "TF_CPP_MIN_LOG_LEVEL": "3", fault_injection.ENV: fault})
  return env


class Child:
  """One CLI run; `started` is set once it logs 'stage <S>: running'."""

  def __init__(self, workdir: str, stages: str, dataset: str, cache: str,
               fault: str = ""):
    self.started = threading.Event()
    self.stage_started_at = None
    self.lines = []
    self.process = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=ROOT, tools=TOOLS),
         f"--config={ROOT}/configs/test.py", f"--workdir={workdir}",
         f"--config.stages={stages}", f"--config.embed.dataset={dataset}",
         *OVERRIDES],
        cwd=ROOT, env=_env(cache, fault), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    self._stage = stages.split(",")[-1]
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stderr:
      self.lines.append(line)
      if f"stage {self._stage}: running" in line and not self.started.is_set():
        self.stage_started_at = time.monotonic()
        self.started.set()

  def wait(self) -> int:
    code = self.process.wait()
    self._reader.join()
    return code

  def tail(self, n: int = 15) -> str:
    return "".join(self.lines[-n:])


def _scenes(folder: str, count: int = 20) -> None:
  os.makedirs(folder)
  rng = np.random.default_rng(0)
  for i in range(count):
    Image.fromarray(rng.integers(0, 255, (30 + i, 40, 3), np.uint8)).save(
        os.path.join(folder, f"{i}.png"))


def _without(reference: str, workdir: str, stage: str) -> None:
  """`workdir` = a copy of `reference` as it was before `stage` ran."""
  shutil.copytree(reference, workdir)
  for name in STAGES[stage][1] + (f"stages/{stage}.json",):
    path = os.path.join(workdir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


def _faults(stage: str, duration: float, rng: random.Random) -> list:
  """[(kind, in-process fault or '', kill delay in s or None, signal)].

  `duration`: the stage's time with a warm compilation cache.
  """
  kill = signal.SIGKILL
  faults = [("mid-run", "", rng.uniform(0.0, duration), kill)]
  if stage in CHECKPOINTS:
    faults.append(("checkpoint",
                   f"save:{rng.choice(CHECKPOINTS[stage][:-1])}", None, kill))
  name = OUTPUT_FILE[stage]
  if name:
    faults.append(("output", f"replace:{name}:1", None, kill))
    faults.append(("disk full", f"enospc:{name}:1", None, None))
  faults.append(("sigterm", "", rng.uniform(0.0, duration), signal.SIGTERM))
  return faults


def _inject(workdir: str, stage: str, dataset: str, cache: str, fault) -> dict:
  """Runs the faulted command, then the clean one; what happened."""
  kind, planted, delay, signum = fault
  child = Child(workdir, stage, dataset, cache, planted)
  if delay is not None:
    if child.started.wait(timeout=600):
      time.sleep(max(0.0, delay - (time.monotonic() - child.stage_started_at)))
      if child.process.poll() is None:
        child.process.send_signal(signum)
  code = child.wait()
  if kind == "disk full":
    injected = code != 0 and "No space left on device" in child.tail(40)
  elif signum == signal.SIGTERM:
    injected = code == PREEMPTED_EXIT or code == -signal.SIGTERM
  else:
    injected = code == -signal.SIGKILL
  after_fault = fault_injection.leftovers(workdir)
  rerun = Child(workdir, stage, dataset, cache)
  rerun_code = rerun.wait()
  rerun_s = time.monotonic() - (rerun.stage_started_at or time.monotonic())
  return {"rerun_s": rerun_s,"kind": kind, "fault": planted or f"signal {int(signum)}",
          "delay_s": delay, "exit_code": code, "injected": injected,
          "left_by_the_fault": after_fault,
          "recovered": rerun_code == 0,
          "rerun_tail": "" if rerun_code == 0 else rerun.tail()}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--trials", type=int, default=1,
                      help="rounds of every fault of every stage")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--stages", default="embed,discover,score,train")
  parser.add_argument("--keep", action="store_true",
                      help="keep the temporary workdirs")
  args = parser.parse_args()
  rng = random.Random(args.seed)
  root = tempfile.mkdtemp(prefix="gansseg_faults_")
  cache, dataset = os.path.join(root, "xla_cache"), os.path.join(root, "images")
  _scenes(dataset)
  reference = os.path.join(root, "reference")
  durations = {}
  start = time.monotonic()
  for stage in ("convert",) + tuple(STAGES):  # One stage per run: timed.
    child = Child(reference, stage, dataset, cache)
    child.started.wait(timeout=600)
    code = child.wait()
    if code != 0:
      raise SystemExit(f"reference run of {stage} failed:\n{child.tail()}")
    durations[stage] = time.monotonic() - (child.stage_started_at or start)
  print("reference stage durations (s):",
        {k: round(v, 1) for k, v in durations.items()}, flush=True)

  runs = []
  for trial in range(args.trials):
    for stage in args.stages.split(","):
      outputs = STAGES[stage][0]
      want = fault_injection.digests(reference, outputs)
      # The compile fault first: its rerun, a whole warm run of the stage,
      # times the random moments of the others.
      first = ("compile", "", rng.uniform(0.0, min(2.0, durations[stage])),
               signal.SIGKILL)
      warm, pending = None, [first]
      while pending:
        fault = pending.pop(0)
        workdir = os.path.join(root, f"{stage}_{trial}_{len(runs)}")
        _without(reference, workdir, stage)
        run = _inject(workdir, stage, dataset, cache, fault)
        run.update(stage=stage, trial=trial,
                   identical=run["recovered"]
                   and fault_injection.digests(workdir, outputs) == want,
                   left_behind=fault_injection.leftovers(workdir))
        runs.append(run)
        print(f"{stage:8s} {run['kind']:10s} exit {run['exit_code']:4d} "
              f"injected={run['injected']} recovered={run['recovered']} "
              f"identical={run['identical']} "
              f"left_behind={len(run['left_behind'])}", flush=True)
        if not args.keep:
          shutil.rmtree(workdir, ignore_errors=True)
        if warm is None:
          warm = run["rerun_s"]
          pending = _faults(stage, warm, rng)

  stages_run = args.stages.split(",")
  earlier = {}
  if os.path.exists(RESULTS):  # Runs of stages not run now are kept.
    with open(RESULTS) as fh:
      earlier = json.load(fh)
  runs = [r for r in earlier.get("runs", [])
          if r["stage"] not in stages_run] + runs
  rows = []
  for stage in STAGES:
    mine = [r for r in runs if r["stage"] == stage]
    if not mine:
      continue
    rows.append({
        "stage": stage,
        "faults injected": sum(r["injected"] for r in mine),
        "runs": len(mine),
        "runs recovered": sum(r["recovered"] for r in mine),
        "outputs identical": sum(r["identical"] for r in mine),
        "files left behind": sum(len(r["left_behind"]) for r in mine)})
  header = ("stage", "faults injected", "runs recovered", "outputs identical",
            "files left behind")
  lines = ["| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  for row in rows:
    lines.append(f"| {row['stage']} | {row['faults injected']} of "
                 f"{row['runs']} | {row['runs recovered']} | "
                 f"{row['outputs identical']} | {row['files left behind']} |")
  print("\n".join(lines))
  load = os.getloadavg()
  for run in runs:
    run.setdefault("machine", machine.describe())
    run.setdefault("load_average", [round(x, 1) for x in load])
    run.setdefault("date", time.strftime("%Y-%m-%d"))
    run.setdefault("seed", args.seed)
  fileio.write_json(RESULTS, {"table": rows, "runs": runs})
  if not args.keep:
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
