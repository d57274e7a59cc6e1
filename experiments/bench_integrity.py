r"""What verifying a checkpoint costs beside restoring it, at the paper's sizes.

  python experiments/bench_integrity.py [--repeats=5]

Builds, from random init with the project's own code, the three trees a
paper-size run writes and reads back: the BigBiGAN generator's params
(BigGAN-128, ch 96, attention at 64: `convert`'s W/generator/, about 280 MB
fp32), the paper's U-Net (width 64: W/unet/) and the `train` stage's
checkpoint of it (params, BatchNorm statistics and Adam's moments after one
update:
W/checkpoints/train/<step>/). Each is saved with the project's checkpoint
code (convert.load.save, train.load.save_unet, infra.checkpointing's
StepCheckpoints) and then, alternating, verified (infra.fingerprints:
sizes and SHA-256 of every file, as planning and resume do) and restored
(the loader the stages use), once each to warm up, then `--repeats` times;
medians. Files are in the page cache for both (just written, read again).
Also the throughput of SHA-256, BLAKE2b and CRC-32 over the generator's
files, which chose SHA-256. Writes experiments/results/bench_integrity.json
and prints the markdown row; name the machine (`lscpu`) and the load
(`uptime`, recorded) beside the numbers.
"""
import hashlib
import json
import os
import statistics
import subprocess
import tempfile
import time
import zlib

from absl import app
from absl import flags
from flax import nnx
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp

from gansseg_jax.infra import machine
from gansseg_jax.convert import load as convert_load
from gansseg_jax.generators import bigbigan
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import config_files
from gansseg_jax.infra import fingerprints
from gansseg_jax.infra import sharding
from gansseg_jax.models import biggan
from gansseg_jax.train import load as unet_load
from gansseg_jax.train import segmentation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "experiments", "results", "bench_integrity.json")

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 5, "Timed (verify, restore) pairs per tree.")
flags.DEFINE_string("out", RESULTS, "JSON file to write.")


def default_config():
  """configs/default.py's config (the paper's sizes)."""
  return config_files.load_checkout("default")


def load_average() -> str:
  return " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(fn) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def compare(root: str, path: str, restore) -> dict:
  """Median seconds to verify and to restore `root`/`path`, alternating."""
  recorded = fingerprints.record(root, [path])

  def verify():
    assert fingerprints.first_problem(root, [path], recorded) is None
    return 0

  timed(verify), timed(restore)  # Warm-up.
  verify_s, restore_s = [], []
  for _ in range(FLAGS.repeats):
    verify_s.append(timed(verify))
    restore_s.append(timed(restore))
  size = sum(entry[0] for entry in recorded.values())
  return {"files": len(recorded), "mb": size / 1e6,
          "verify_s": statistics.median(verify_s),
          "restore_s": statistics.median(restore_s),
          "verify_over_restore": (statistics.median(verify_s)
                                  / statistics.median(restore_s))}


def hash_rates(root: str, path: str) -> dict:
  """MB/s of each candidate hash over the files under `path` (median of 3)."""
  files = [os.path.join(root, name)
           for name in fingerprints.record(root, [path])]
  size = sum(os.path.getsize(f) for f in files)

  def crc32(f):
    value = 0
    while block := f.read(1 << 20):
      value = zlib.crc32(block, value)
    return value

  digests = {"sha256": lambda f: hashlib.file_digest(f, "sha256"),
             "blake2b": lambda f: hashlib.file_digest(f, "blake2b"),
             "crc32": crc32}
  rates = {}
  for name, digest in digests.items():
    times = []
    for _ in range(3):
      start = time.perf_counter()
      for path_ in files:
        with open(path_, "rb") as f:
          digest(f)
      times.append(time.perf_counter() - start)
    rates[name] = size / 1e6 / statistics.median(times)
  return rates


def main(argv):
  del argv
  config = default_config()
  mesh = sharding.data_mesh()
  load_before = load_average()
  entry = {"device": machine.describe(), "jax": jax.__version__,
           "date": time.strftime("%Y-%m-%d")}
  with tempfile.TemporaryDirectory() as root:
    spec = bigbigan.generator_spec(config)
    params = biggan.init_params(spec, seed=0)
    convert_load.save(os.path.join(root, "generator"), spec.to_dict(), params)
    like = jax.eval_shape(lambda tree: tree, params)
    del params
    entry["generator"] = compare(
        root, "generator",
        lambda: convert_load.restore(os.path.join(root, "generator"), like))
    entry["hash_mb_per_s"] = hash_rates(root, "generator")

    model = segmentation.new_unet(config.unet, nnx.Rngs(0))
    _, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    tree = {"params": nnx.to_pure_dict(params),
            "batch_stats": nnx.to_pure_dict(stats)}
    unet_load.save_unet(root, tree)
    entry["unet"] = compare(root, unet_load.UNET_DIR,
                            lambda: unet_load.restore_unet(config, root,
                                                           mesh)[1])

    # One Adam update with random gradients: moments that are not zeros
    # (orbax's files compress runs of zeros; a trained run has none).
    tx = optax.adam(1e-4)
    rng = np.random.default_rng(0)
    grads = jax.tree.map(
        lambda x: rng.normal(size=x.shape).astype(np.float32), tree["params"])
    _, opt_state = tx.update(grads, tx.init(tree["params"]), tree["params"])
    state = sharding.replicate(dict(tree, opt_state=opt_state,
                                    step=np.int32(1)), mesh)
    directory = os.path.join(root, "checkpoints", "train")
    with checkpointing.StepCheckpoints(directory, keep=1) as checkpoints:
      checkpoints.save(1, state)
      checkpoints.wait()
      target = checkpointing.abstract_like(state, sharding.replicated(mesh))
      entry["train_checkpoint"] = compare(
          directory, "1", lambda: checkpoints._manager.restore(  # pylint: disable=protected-access
              1, args=ocp.args.StandardRestore(target)))
  entry["load_average"] = f"{load_before} before, {load_average()} after"
  entry["lscpu_model"] = subprocess.run(
      ["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True,
      text=True).stdout.split(":", 1)[-1].strip()
  os.makedirs(os.path.dirname(FLAGS.out), exist_ok=True)
  with open(FLAGS.out, "w") as f:
    json.dump(entry, f, indent=2)
    f.write("\n")
  print(markdown(entry))


def markdown(entry: dict) -> str:
  parts = []
  for key, label in (("generator", "BigBiGAN generator"),
                     ("unet", "U-Net w64"),
                     ("train_checkpoint", "train checkpoint (+Adam)")):
    e = entry[key]
    parts.append(f"{label} {e['mb']:.0f} MB in {e['files']} files: verify "
                 f"{e['verify_s']:.2f} s vs restore {e['restore_s']:.2f} s "
                 f"({e['verify_over_restore']:.2f}x)")
  rates = entry["hash_mb_per_s"]
  parts.append("hash MB/s: " + ", ".join(f"{k} {v:.0f}"
                                          for k, v in rates.items()))
  return (f"| `bench_integrity.py` | verifying (sizes + SHA-256 of every "
          f"file) vs restoring, medians of {FLAGS.repeats}, page cache warm; "
          f"\"{entry['device']}\", load {entry['load_average']}, "
          f"{entry['date']} | {'; '.join(parts)} |")


if __name__ == "__main__":
  app.run(main)
