r"""Every jitted program of a real run, compiled for Cloud TPU slices on a CPU.

  # needs `pip install -e ".[tpu]"` (libtpu; `make tpu-check` does it).
  # small sizes, every program, one slice (a few minutes):
  JAX_PLATFORMS=cpu python benchmarks/aot_tpu.py --size=small --slices=v5e-8
  # the paper's sizes, the whole matrix in priority order (hours on 2 cores;
  # resumable: entries already in the JSON are skipped):
  JAX_PLATFORMS=cpu python benchmarks/aot_tpu.py --size=paper

Compiler-derived estimates, not measurements: nothing runs on a TPU. Each
program is built by the project's own code with the mesh and shardings the
real run builds (a 1-D 'data' mesh over the slice's chips):
  train_step     segmentation.build(...).step: synthesis + U-Net + Adam
                 (global batch --batch, default 96)
  holdout_eval   segmentation.build(...).eval_sums on one hold-out batch
  synth_export   synth.export.candidates_for_keys: one call of config.export.batch_size
                 candidates (the stage runs on one chip of process 0)
  encoder        embed.stage.jitted_latents of the BigBiGAN ResNet-50
                 encoder (ENCODER_SPECS) on config.embed.batch_size images
  discover_step  directions.discover.make_train_step (ResNet-18, 128 px)
  score          directions.score.scorer on one call's candidates (120
                 candidates in config.log.score_chunks calls)
  predict_HxW    train.load.jitted_forward at a padded eval shape
  train_loop     segmentation.steps_program: the steps of one call
                 (config.train.steps_per_call) in one XLA while loop, whose
                 body XLA costs once: about one train_step
For each: compiled or the exact error, compile time (this CPU), per-chip
argument / output / temp / peak bytes against the chip's HBM, FLOPs and
bytes accessed per chip (`cost_analysis()`), and the roofline estimate
max(FLOPs / bf16 peak, bytes / HBM bandwidth) (aot_compile.CHIPS cites
each chip's numbers).

XLA costs a while_loop body once, whatever its trip count. The components
filter labels masks with two such loops (synth/filters.py; on TPU: dense
sweeps, --sweep_rounds per step, then hooking rounds, --hook_rounds, 0 on
smooth masks), so for train_step the script also compiles that filter alone
at the step's per-chip mask shape with its loops unrolled to (1, 0), (2, 0)
and (1, 1) rounds: the differences are one round of each; the corrected
estimate adds the rounds beyond the one of each the step's cost holds.
`--sweep_estimates` does only this for train steps compiled when the filter
hooked alone (7 rounds assumed then; their 'corrected' estimate is the
before, the added 'after' one the step with sweeps). The synthesis loop over
batch-filling rounds (config.synth.max_rounds) is counted once, i.e. one
round, the usual case at the default oversample.

`--search` finds the largest per-chip train_step batch that still compiles
within HBM (--hbm_fraction of it) by bracketing (batch_search.py): from the
train steps already in the JSON it grows the batch (doubling it, or scaling
it by HBM over its peak when that is more) until a batch does not fit, then
bisects on multiples of --search_step, at most --search_probes compiles per
slice and dtype; peak memory is not monotonic in the batch, so every probe
is kept and the second table lists them.

Writes benchmarks/results/aot_tpu.json after every entry (keyed by slice,
program, size, dtype and global batch; existing entries are kept and skipped
unless --force) and prints the markdown table.
"""
import functools
import json
import math
import os
import traceback
from typing import Optional

from absl import app
from absl import flags
from flax import nnx
import jax
from jax.sharding import SingleDeviceSharding
import numpy as np

from gansseg_jax.infra import fileio
from gansseg_jax.embed import stage as embed
from gansseg_jax.directions import discover
from gansseg_jax.directions import score
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import config_files
from gansseg_jax.infra import keys
from gansseg_jax.infra import sharding
from gansseg_jax.models import encoder
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import export
from gansseg_jax.synth import filters
from gansseg_jax.synth import latents as synth_latents
from gansseg_jax.train import holdout
from gansseg_jax.train import load as train_load
from gansseg_jax.train import segmentation

import aot_compile  # pylint: disable=g-bad-import-order
import batch_search  # pylint: disable=g-bad-import-order

RESULTS = os.path.join(aot_compile.ROOT, "benchmarks", "results",
                       "aot_tpu.json")
PAPER_STEPS = 12_000

# name -> (topology, chip_config). 'v4-8' / 'v5p-8' name 8 TensorCores = 4
# chips (megacore: one device per chip); v5e-8 is 8 chips. libtpu lays
# v5e:2x4 out as 2 hosts and v5e:4x4 as 4 (aot_compile.Slice.hosts).
SLICES = {
    "v5e-8": ("v5e:2x4", ""),
    "v4-8": ("v4:2x2x1", "megacore"),
    "v5p-8": ("v5p:2x2x1", "megacore"),
    "v5e-16": ("v5e:4x4", ""),
}
# BigBiGAN's ResNet-50 encoder (TF-Hub bigbigan-resnet50): v2 bottlenecks,
# width 64, (3, 4, 6, 3); the head's hidden widths are this benchmark's
# assumption (its cost is small next to the ResNet).
ENCODER_SPECS = {
    "paper": encoder.EncoderSpec("v2", 64, (3, 4, 6, 3), (4096, 4096, 240),
                                 1e-5),
    "small": encoder.EncoderSpec("v2", 4, (1, 1, 1, 1), (32, 240), 1e-5),
}
# Padded eval shapes [H, W] (image_size 128 shorter side, pad_multiple 32):
# a 4:3 photo and the longest side max_long_side allows.
PREDICT_SHAPES = {"paper": ((128, 192), (128, 1024)),
                  "small": ((32, 64),)}
flags.DEFINE_enum("size", "paper", ["paper", "small"], "Model sizes.")
flags.DEFINE_list("slices", ["v5e-8", "v4-8", "v5p-8"], "Slices (SLICES; "
                  "GPUs: aot_compile.GPU_SLICES).")
flags.DEFINE_list("programs", [], "Programs; empty = all.")
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "generator/unet dtype; "
                  "'float32:high' or 'float32:default' also sets "
                  "generator.matmul_precision (default 'highest').")
flags.DEFINE_integer("batch", 96, "Global train batch (a multiple of chips).")
flags.DEFINE_bool("search", True, "Largest-batch search after the matrix "
                  "(paper size).")
flags.DEFINE_list("multihost", ["v5e-16"], "Multi-host slices for train_step "
                  "(last).")
flags.DEFINE_integer("sweep_rounds", 10, "Sweep rounds of the components "
                     "filter's labelling per step (batches of 18 saliency "
                     "masks at 128 px: 7-16, median 8.5).")
flags.DEFINE_integer("hook_rounds", 0, "Hooking rounds per step after the "
                     "sweeps (0 unless a mask winds like a spiral).")
flags.DEFINE_integer("components_rounds", 7, "Hooking rounds per step where "
                     "the filter hooks alone (GPU; smooth masks: 5-7).")
flags.DEFINE_bool("sweep_estimates", False, "Only add the sweep labelling's "
                  "estimate ('after') to train_step entries compiled before "
                  "it, compiling the components filter alone.")
flags.DEFINE_integer("search_probes", 6, "Compiles the batch search may "
                     "add per slice and dtype (batch_search.py).")
flags.DEFINE_integer("search_step", 8, "The search's per-chip batches are "
                     "multiples of this (TPU tiles are (8, 128)).")
flags.DEFINE_float("hbm_fraction", 1.0, "A batch fits when its peak bytes "
                   "are within this fraction of the chip's memory.")
flags.DEFINE_bool("precision_estimates", False, "Only split the FLOPs of "
                  "TPU entries compiled before split_flops into their "
                  "precision classes and estimate them again.")
flags.DEFINE_bool("force", False, "Recompile entries already in the JSON.")
flags.DEFINE_string("hlo_dir", "", "Write each train_step's optimized HLO "
                    "text here.")
flags.DEFINE_string("hlo_report", "", "Only print the top-level HLO traffic "
                    "of this saved HLO text file (--hlo_dir), by part.")
flags.DEFINE_string("aot_out", RESULTS, "JSON results file.")
FLAGS = flags.FLAGS


def make_config(size: str, dtype: str, batch: int):
  """configs/default.py:<size> ('paper' or 'small') with `dtype`:
  'float32' or 'bfloat16' for the generator and the U-Net, or
  'float32:<generator.matmul_precision>' ('float32:high')."""
  config = config_files.load_checkout("default", size)
  dtype, _, precision = dtype.partition(":")
  config.generator.dtype = config.unet.dtype = dtype
  config.generator.matmul_precision = precision or "highest"
  config.train.batch_size = batch
  return config


def train_loop(config, tpu):
  """segmentation.steps_program: config.train.steps_per_call steps per call."""
  generate, _ = aot_compile.generator_parts(config, tpu.mesh)
  program, args = segmentation.steps_program(
      config, tpu.mesh, generate,
      aot_compile.abstract_frozen(config, tpu.mesh))
  return lambda: program.lower(*args)


def holdout_eval(config, tpu):
  mesh = tpu.mesh
  fused = aot_compile.fused_training(config, mesh)
  frozen = aot_compile.abstract_frozen(config, mesh)
  made = jax.eval_shape(lambda i, f: fused.synthesize("holdout", i, f),
                        fused.abstract_state["step"], frozen)
  batch = holdout.HoldoutBatch(*checkpointing.abstract_like(
      tuple(made[:3]), sharding.batch_sharded(mesh)))
  return lambda: fused.eval_sums.lower(fused.abstract_state, batch)


def synth_export(config, tpu):
  one_chip = SingleDeviceSharding(tpu.mesh.devices.flat[0])
  generate, params = aot_compile.generator_parts(config, tpu.mesh)
  params = checkpointing.abstract_like(params, one_chip)
  key = jax.eval_shape(lambda: keys.stage_key(config.seed, export.STAGE))
  n = config.export.batch_size
  args = (aot_compile.abstract(key.shape, key.dtype, one_chip),
          aot_compile.abstract((n,), np.uint32, one_chip), generate, params,
          aot_compile.abstract((config.generator.z_dim,), np.float32,
                               one_chip),
          synth_latents.make_sampler(config.synth, config.generator.z_dim),
          synth_batch.SynthSpec.from_config(config.synth), None)
  return lambda: export.candidates_for_keys.lower(*args)


def encoder_forward(config, tpu):
  mesh, spec = tpu.mesh, ENCODER_SPECS[FLAGS.size]
  latents = embed.jitted_latents(encoder.make_encode(spec), config)
  params = checkpointing.abstract_like(encoder.abstract_params(spec),
                                       sharding.replicated(mesh))
  batch = config.embed.batch_size + (-config.embed.batch_size % mesh.size)
  size = config.embed.image_size
  images = aot_compile.abstract((batch, size, size, 3), np.float32,
                    sharding.batch_sharded(mesh))
  start = aot_compile.abstract((), np.int32, sharding.replicated(mesh))
  return lambda: latents.lower(params, images, start)


def discover_step(config, tpu):
  mesh, cfg, z_dim = tpu.mesh, config.directions, config.generator.z_dim
  generate, gen_params = aot_compile.generator_parts(config, mesh)
  graphdef, model_state, fixed = discover.split_model(nnx.eval_shape(
      lambda: discover.build_model(cfg, z_dim, jax.random.key(0))))
  state = dict(model_state, opt_state=jax.eval_shape(
      discover.make_optimizer(cfg.learning_rate).init,
      model_state["params"]))
  rep = sharding.replicated(mesh)
  state, fixed = checkpointing.abstract_like((state, fixed), rep)
  step_fn = discover.make_train_step(
      graphdef, generate, discover.DiscoverySpec.from_config(cfg, z_dim),
      cfg.learning_rate, mesh)
  return lambda: step_fn.lower(state, fixed, gen_params,
                               aot_compile.abstract((2,), np.uint32, rep),
                               aot_compile.abstract((), np.int32, rep))


def candidates_per_call(config, num_devices: int) -> int:
  """Rows of one scoring call (score.score_candidates' padding)."""
  chunks = max(1, int(config.log.score_chunks))
  return num_devices * math.ceil(config.directions.num_directions
                                 / (num_devices * chunks))


def score_call(config, tpu):
  mesh = tpu.mesh
  generate, gen_params = aot_compile.generator_parts(config, mesh)
  scorer = score.scorer(
      generate, score.ScoreSpec.from_config(config.score), mesh)
  rows = candidates_per_call(config, mesh.size)
  directions = aot_compile.abstract((rows, config.generator.z_dim), np.float32,
                        sharding.batch_sharded(mesh))
  key_data = aot_compile.abstract((2,), np.uint32, sharding.replicated(mesh))
  return lambda: scorer.lower(gen_params, directions, key_data)


def predict(height, width, config, tpu):
  mesh = tpu.mesh
  model = nnx.eval_shape(
      lambda: segmentation.new_unet(config.unet, nnx.Rngs(0)))
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  tree = checkpointing.abstract_like(
      {"params": nnx.to_pure_dict(params),
       "batch_stats": nnx.to_pure_dict(batch_stats)},
      sharding.replicated(mesh))
  batch = config.eval.batch_size
  images = aot_compile.abstract((batch, height, width, 3), np.float32,
                    sharding.batch_sharded(mesh))
  forward = train_load.jitted_forward(graphdef, mesh)
  return lambda: forward.lower(tree, images, batch)


def programs(size: str) -> dict:
  """name -> (builder, dtypes it depends on) in priority order."""
  both = ("float32", "bfloat16")
  out = {"train_step": (aot_compile.train_step, both),
         "synth_export": (synth_export, both),
         "encoder": (encoder_forward, ("float32",)),  # HIGHEST precision.
         "discover_step": (discover_step, both),
         "score": (score_call, both),
         "holdout_eval": (holdout_eval, both)}
  for h, w in PREDICT_SHAPES[size]:
    out[f"predict_{h}x{w}"] = (functools.partial(predict, h, w), both)
  out["train_loop"] = (train_loop, both)
  return out


def components_round(config, tpu, masks: int) -> dict:
  """FLOPs and bytes of one round of each loop of the components filter.

  The filter alone on one chip at [masks, H, W] with the labelling TPU runs
  ('sweep': a sweep loop, then a hooking loop; synth/filters.py), its loops
  unrolled to (sweeps, hooking rounds) = (1, 0), (2, 0) and (1, 1): a sweep
  round is the second minus the first, a hooking round the third minus the
  first.
  """
  one_chip = SingleDeviceSharding(tpu.mesh.devices.flat[0])
  side = config.generator.resolution
  mask = aot_compile.abstract((masks, side, side), np.bool_, one_chip)
  costs = []
  for rounds in ((1, 0), (2, 0), (1, 1)):
    lowered = filters.connected_components_filter.lower(
        mask, connectivity=config.synth.connectivity,
        min_ratio=config.synth.min_component_ratio,
        strict=config.synth.strict_ratio, method="sweep",
        unrolled_rounds=rounds)
    costs.append(aot_compile.analysis(lowered.compile()))
  out = {"masks_per_chip": masks}
  for part, (a, b) in (("sweep", (0, 1)), ("hook", (0, 2))):
    for cost in ("flops", "bytes_accessed"):
      out[f"{part}_round_{cost.split('_')[0]}"] = (costs[b][cost]
                                                   - costs[a][cost])
  return out


def masks_per_chip(config, num_devices: int) -> int:
  """Candidates one chip's components filter sees in one synthesis round."""
  chunks = sharding.synth_chunks(config.train, num_devices)
  spec = synth_batch.SynthSpec.from_config(config.synth)
  return (chunks // num_devices) * spec.num_candidates(
      config.train.batch_size // chunks)


def compile_entry(tpu, program: str, size: str, dtype: str,
                  batch: int) -> dict:
  """One matrix entry: compiled program's analysis, or the exact error."""
  config = make_config(size, dtype, batch)
  builder, _ = programs(size)[program]
  entry = {"slice": tpu.name, "topology": tpu.topology,
           "chips": tpu.mesh.size, "hosts": tpu.hosts,
           "device_kind": tpu.device_kind, "program": program, "size": size,
           "dtype": dtype, "batch": batch, "jax": jax.__version__,
           "hbm_bytes": tpu.chip.hbm, "peak_flops": tpu.chip.peak_flops,
           "hbm_bw": tpu.chip.hbm_bw, "chip_source": tpu.chip.source}
  try:
    compiled, seconds = aot_compile.compile_lowered(builder(config, tpu))
  except Exception as e:  # pylint: disable=broad-except
    entry.update(status="error", error=f"{type(e).__name__}: {e}"[:2000],
                 traceback=traceback.format_exc()[-3000:])
    return entry
  entry.update(status="compiled", compile_s=seconds,
               **aot_compile.analysis(compiled))
  if "flops_by_class" not in entry:  # TPU: XLA's FLOPs, split by precision.
    entry.update(split_flops(entry, builder, config))
  entry.update(aot_compile.roofline(entry["flops"], entry["bytes_accessed"],
                                    tpu.chip, entry.get("flops_by_class")))
  entry["hbm_fraction"] = entry["peak_bytes"] / tpu.chip.hbm
  if program == "train_step":
    if FLAGS.hlo_dir:
      os.makedirs(FLAGS.hlo_dir, exist_ok=True)
      with open(os.path.join(FLAGS.hlo_dir, f"{tpu.name}_{size}_{dtype}_"
                             f"{batch}.hlo.txt"), "w") as f:
        f.write(compiled.as_text())
    entry.update(train_estimates(entry, config, tpu))
  return entry


def train_estimates(entry: dict, config, tpu) -> dict:
  """The 12,000-step estimate, before and after the components correction."""
  out = {"steps_12k_h": entry["roofline_s"] * PAPER_STEPS / 3600,
         "labelling": "sweep"}
  try:
    cc = components_round(config, tpu, masks_per_chip(config, tpu.mesh.size))
  except Exception as e:  # pylint: disable=broad-except
    out["components_error"] = f"{type(e).__name__}: {e}"[:1000]
    return out
  # The compiled step costs one body of each loop its platform lowers:
  # TPU sweeps then hooks, other platforms hook alone (synth/filters.py).
  if tpu.name in SLICES:
    out.update(components=cc, **with_rounds(
        entry, cc, (FLAGS.sweep_rounds, FLAGS.hook_rounds), (1, 1), tpu.chip))
  else:
    out.update(labelling="hook", components=cc, **with_rounds(
        entry, cc, (0, FLAGS.components_rounds), (0, 1), tpu.chip))
  return out


def with_rounds(entry: dict, cc: dict, rounds: tuple[int, int],
                compiled: tuple[int, int], chip) -> dict:
  """The step's roofline when its components filter runs `rounds` = (sweep,
  hooking) rounds and its compiled cost holds `compiled` bodies of each."""
  extra = [r - c for r, c in zip(rounds, compiled)]
  estimate = aot_compile.roofline(
      entry["flops"] + extra[0] * cc["sweep_round_flops"]
      + extra[1] * cc["hook_round_flops"],
      entry["bytes_accessed"] + extra[0] * cc["sweep_round_bytes"]
      + extra[1] * cc["hook_round_bytes"], chip,
      entry.get("flops_by_class"))
  filter_bytes = (rounds[0] * cc["sweep_round_bytes"]
                  + rounds[1] * cc["hook_round_bytes"])
  return {"corrected_s": estimate["roofline_s"],
          "corrected_bound": estimate["bound"],
          "corrected_12k_h": estimate["roofline_s"] * PAPER_STEPS / 3600,
          "components_share": filter_bytes / chip.hbm_bw
                              / estimate["roofline_s"],
          "sweep_rounds": rounds[0], "hook_rounds": rounds[1]}


def add_sweep_estimates(results, slices) -> None:
  """For train steps compiled before the sweeps (hooking alone, 'before'):
  the filter's new round costs and the step they imply ('after'): the
  compiled step less its one hooking body plus --sweep_rounds sweeps (and
  --hook_rounds hooking rounds)."""
  for entry in list(results.entries):
    if (entry["program"] != "train_step" or entry["status"] != "compiled"
        or "labelling" in entry or "after" in entry
        or entry["slice"] not in FLAGS.slices or entry["slice"] not in SLICES):
      continue
    name = entry["slice"]
    if name not in slices:
      slices[name] = make_slice(name)
    tpu = slices[name]
    config = make_config(entry["size"], entry["dtype"], entry["batch"])
    cc = components_round(config, tpu, masks_per_chip(config, tpu.mesh.size))
    after = with_rounds(entry, cc, (FLAGS.sweep_rounds, FLAGS.hook_rounds),
                        (0, 1), tpu.chip)
    print(json.dumps({"slice": name, "dtype": entry["dtype"], **cc,
                      **after}), flush=True)
    results.put({**entry, "after": {"components": cc, **after}})


def reestimate(entry: dict) -> dict:
  """A TPU entry's roofline and train-step estimates again, from its FLOPs
  (by class), bytes and components-filter rounds."""
  chip = aot_compile.CHIPS[entry["topology"].split(":")[0]]
  entry.update(aot_compile.roofline(entry["flops"], entry["bytes_accessed"],
                                    chip, entry.get("flops_by_class")))
  if entry["program"] != "train_step":
    return entry
  entry["steps_12k_h"] = entry["roofline_s"] * PAPER_STEPS / 3600
  cc = entry["components"]
  if entry.get("labelling") == "sweep":
    entry.update(with_rounds(entry, cc, (entry["sweep_rounds"],
                                         entry["hook_rounds"]), (1, 1), chip))
    return entry
  # Compiled when the filter hooked alone: its 'corrected' estimate is the
  # before (components_rounds hooking rounds), 'after' the step with sweeps.
  hooks = {"sweep_round_flops": 0.0, "sweep_round_bytes": 0.0,
           "hook_round_flops": cc["round_flops"],
           "hook_round_bytes": cc["round_bytes"]}
  before = with_rounds(entry, hooks, (0, entry["components_rounds"]), (0, 1),
                       chip)
  entry.update({k: before[k] for k in ("corrected_s", "corrected_bound",
                                       "corrected_12k_h", "components_share")})
  if "after" in entry:
    after = entry["after"]
    rounds = (after["sweep_rounds"], after["hook_rounds"])
    after.update(with_rounds(entry, after["components"], rounds, (0, 1), chip))
    if "verified" in after:  # That step compiled with the sweeps.
      check = after["verified"]
      scale = check["flops"] / entry["flops"]
      compiled = {"flops": check["flops"],
                  "bytes_accessed": check["bytes_accessed"],
                  "flops_by_class": {
                      c: f * scale
                      for c, f in entry.get("flops_by_class", {}).items()}}
      check["roofline_s"] = aot_compile.roofline(
          compiled["flops"], compiled["bytes_accessed"], chip,
          compiled["flops_by_class"])["roofline_s"]
      check.update({k: v for k, v in with_rounds(
          compiled, after["components"], rounds, (1, 1), chip).items()
                    if k in check})
  return entry


def split_flops(entry: dict, builder, config) -> dict:
  """XLA's FLOPs of a TPU entry by precision class (aot_compile.CHIPS:
  float32 at HIGHEST runs as six bf16 passes): each class's share of the
  program lowered on one CPU device (aot_compile.flop_shares)."""
  shares = aot_compile.flop_shares(
      builder(config, aot_compile.one_device_slice()))
  return {"flops_by_class": {c: share * entry["flops"]
                             for c, share in shares.items()},
          "flops_class_source": "class shares of the program lowered on "
                                "one device (before optimization) x XLA's "
                                "FLOPs"}


def add_precision_estimates(results) -> None:
  """For TPU entries compiled before their FLOPs were split by class
  (split_flops): the split, and every estimate again (reestimate)."""
  for entry in list(results.entries):
    if (entry["status"] != "compiled"
        or entry.get("flops_class_source")
        or entry["slice"] not in SLICES):
      continue
    builder, _ = programs(entry["size"])[entry["program"]]
    split = split_flops(entry, builder, make_config(
        entry["size"], entry["dtype"], entry["batch"]))
    print(json.dumps({k: entry[k] for k in ("slice", "program", "dtype",
                                            "batch")}
                     | {"flops_by_class": split["flops_by_class"]}),
          flush=True)
    results.put(reestimate({**entry, **split}))


def key(e) -> tuple:
  return (e["slice"], e["program"], e["size"], e["dtype"], e["batch"])


class Results:
  """The JSON file, rewritten after every entry."""

  def __init__(self, path: str):
    self.path = path
    self.entries = []
    if os.path.exists(path):
      with open(path) as f:
        self.entries = json.load(f)

  def get(self, k):
    return next((e for e in self.entries if key(e) == k), None)

  def put(self, entry):
    self.entries = [e for e in self.entries if key(e) != key(entry)]
    self.entries.append(entry)
    fileio.write_json(self.path, self.entries)


def matrix(size: str) -> list[tuple[str, str, str]]:
  """(slice, program, dtype) in priority order (module docstring)."""
  table = programs(size)
  wanted = FLAGS.programs or list(table)
  first = [p for p in ("train_step", "synth_export") if p in wanted]
  rest = [p for p in wanted if p not in first]
  order = []
  for dtype in FLAGS.dtypes:
    order += [(s, p, dtype) for s in FLAGS.slices for p in first]
  for dtype in FLAGS.dtypes:
    order += [(s, p, dtype) for s in FLAGS.slices for p in rest
              if dtype in table[p][1]]
  return order


def make_slice(name: str) -> aot_compile.Slice:
  """A TPU slice of SLICES or GPUs of aot_compile.GPU_SLICES (aot_gpu.py)."""
  if name in aot_compile.GPU_SLICES:
    return aot_compile.gpu_slice(name, *aot_compile.GPU_SLICES[name])
  return aot_compile.tpu_slice(name, *SLICES[name])


def run_entry(results, slices, name, program, size, dtype, batch):
  """The entry of the JSON, compiling it first unless present."""
  k = (name, program, size, dtype, batch)
  if results.get(k) and not FLAGS.force:
    return results.get(k)
  if name not in slices:
    slices[name] = make_slice(name)
  entry = compile_entry(slices[name], program, size, dtype, batch)
  print(json.dumps({x: entry.get(x) for x in (
      "slice", "program", "dtype", "batch", "status", "compile_s",
      "peak_bytes", "flops", "bytes_accessed", "roofline_s", "error")}),
        flush=True)
  results.put(entry)
  return entry


def fits(entry: dict, hbm_fraction: float) -> Optional[bool]:
  """Whether a train_step entry fits: compiled with its peak within
  hbm_fraction of the chip's memory; False when the compiler ran out of
  memory, None for any other error (the search stops there)."""
  if entry["status"] == "compiled":
    return entry["peak_bytes"] <= hbm_fraction * entry["hbm_bytes"]
  error = entry.get("error", "")
  return False if "RESOURCE_EXHAUSTED" in error or "memory" in error else None


def search_batch(results, slices, name, size, dtype) -> dict:
  """Largest per-chip train_step batch that fits (batch_search.py): from
  every entry already compiled for this slice, size and dtype, up to
  --search_probes more compiles. Returns the bracket and the probes."""
  base = run_entry(results, slices, name, "train_step", size, dtype,
                   FLAGS.batch)
  chips = base["chips"]
  probes, peaks = {}, {}

  def verdict(e):
    if e["status"] == "compiled":
      peaks[e["batch"] // chips] = e["peak_bytes"]
    return fits(e, FLAGS.hbm_fraction)

  for e in results.entries:
    if (e["program"], e["slice"], e["size"], e["dtype"]) == (
        "train_step", name, size, dtype):
      ok = verdict(e)
      if ok is not None:
        probes[e["batch"] // chips] = ok
  # The guess scales a fitting batch by HBM over its peak: where peak memory
  # is a fixed part (parameters, optimizer state) plus a part proportional
  # to the batch, that lands below the boundary.
  limit = FLAGS.hbm_fraction * base["hbm_bytes"]
  if probes:
    probes = batch_search.search(
        probes, lambda per_chip: verdict(run_entry(
            results, slices, name, "train_step", size, dtype,
            per_chip * chips)),
        FLAGS.search_step, FLAGS.search_probes,
        guess=lambda lo: int(lo * limit / peaks[lo]) if lo in peaks else 0)
  lo, hi = batch_search.bracket(probes)
  summary = {"slice": name, "dtype": dtype, "chips": chips,
             "largest_fitting_per_chip": lo, "smallest_failing_per_chip": hi,
             "probes": dict(sorted(probes.items()))}
  print(json.dumps(summary), flush=True)
  return summary


def search_markdown(entries, hbm_fraction: float) -> str:
  """Per slice and dtype: every train_step batch compiled, and the bracket."""
  groups = {}
  for e in entries:
    if e["program"] == "train_step" and e["size"] == "paper":
      groups.setdefault((e["slice"], e["dtype"]), []).append(e)
  lines = ["| slice | dtype | per-chip batches compiled: peak GiB (fits?) "
           "| largest fitting per chip (global) | smallest failing |",
           "|---|---|---|---|---|"]
  for (name, dtype), group in sorted(groups.items()):
    chips, probes, cells = group[0]["chips"], {}, []
    for e in sorted(group, key=lambda e: e["batch"]):
      ok = fits(e, hbm_fraction)
      if ok is not None:
        probes[e["batch"] // chips] = ok
      peak = (f"{e['peak_bytes'] / 2**30:.1f}" if e["status"] == "compiled"
              else "error")
      verdict = {True: "yes", False: "no", None: "error"}[ok]
      cells.append(f"{e['batch'] // chips}: {peak} ({verdict})")
    lo, hi = batch_search.bracket(probes)
    lines.append(f"| {name} | {dtype} | {'; '.join(cells)} | "
                 f"{lo if lo is None else f'{lo} ({lo * chips})'} | "
                 f"{'none probed' if hi is None else hi} |")
  return "\n".join(lines)


# Programs whose shapes follow config.train.batch_size (the others: module
# docstring).
TRAIN_BATCH_PROGRAMS = ("train_step", "train_loop", "holdout_eval")


def markdown(entries) -> str:
  lines = ["| slice (chips, hosts) | program | size | dtype | train batch "
           "| compiled "
           "| compile s | peak GiB / chip (of HBM) | TFLOP / chip | "
           "GB accessed / chip | roofline ms (bound) | 12k steps h "
           "(components-corrected) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for e in entries:
    batch = e["batch"] if e["program"] in TRAIN_BATCH_PROGRAMS else "-"
    head = (f"| {e['slice']} ({e['chips']}, {e['hosts']}) | {e['program']} "
            f"| {e['size']} | {e['dtype']} | {batch} ")
    if e["status"] != "compiled":
      lines.append(head + f"| no: {e['error'][:120]} | | | | | | |")
      continue
    steps = ""
    if "steps_12k_h" in e:
      steps = f"{e['steps_12k_h']:.2f}"
      if "corrected_12k_h" in e:
        steps += f" ({e['corrected_12k_h']:.2f}"
        if "after" in e:
          steps += f" -> {e['after']['corrected_12k_h']:.2f}"
        steps += ")"
    lines.append(
        head + f"| yes | {e['compile_s']:.0f} "
        f"| {e['peak_bytes'] / 2**30:.2f} ({e['hbm_bytes'] / 2**30:.0f}) "
        f"| {e['flops'] / 1e12:.3f} | {e['bytes_accessed'] / 1e9:.2f} "
        f"| {1e3 * e['roofline_s']:.2f} ({e['bound']}) | {steps} |")
  return "\n".join(lines)


# op_name markers of a train_step's parts, first match wins.
STEP_PARTS = (("components filter", "connected_components_filter"),
              ("histogram filter", "histogram_filter"),
              ("synthesis: generator, masks", "shard_map"),
              ("U-Net backward", "transpose("), ("U-Net forward", "jvp("))


def hlo_report(path: str, top: int = 15) -> str:
  """Proxy HBM traffic (aot_compile.hlo_traffic) of a step, by part."""
  with open(path) as f:
    rows = aot_compile.hlo_traffic(f.read())
  parts = {}
  for r in rows:
    part = next((p for p, marker in STEP_PARTS if marker in r["op_name"]),
                "other (optimizer, loss, copies)")
    parts[part] = parts.get(part, 0) + r["bytes"]
  total = sum(parts.values())
  lines = [f"{len(rows)} top-level instructions, {total / 1e9:.2f} GB "
           "(outputs + operands)", "| part | GB | share |", "|---|---|---|"]
  lines += [f"| {p} | {b / 1e9:.2f} | {b / total:.0%} |"
            for p, b in sorted(parts.items(), key=lambda x: -x[1])]
  lines += ["", "| instruction | op | GB | op_name |", "|---|---|---|---|"]
  lines += [f"| {r['name']} | {r['op']} {r['kind']} | {r['bytes'] / 1e9:.3f} "
            f"| {r['op_name'][:90]} |"
            for r in sorted(rows, key=lambda r: -r["bytes"])[:top]]
  return "\n".join(lines)


def main(argv):
  del argv
  if FLAGS.hlo_report:
    print(hlo_report(FLAGS.hlo_report))
    return
  results, slices, size = Results(FLAGS.aot_out), {}, FLAGS.size
  if FLAGS.sweep_estimates:
    add_sweep_estimates(results, slices)
    print(markdown(results.entries))
    return
  if FLAGS.precision_estimates:
    add_precision_estimates(results)
    print(markdown(results.entries))
    return
  batch = FLAGS.batch if size == "paper" else 16
  for name, program, dtype in matrix(size):
    run_entry(results, slices, name, program, size, dtype, batch)
  if FLAGS.search and size == "paper":
    for dtype in FLAGS.dtypes:
      for name in FLAGS.slices:
        search_batch(results, slices, name, size, dtype)
  for name in FLAGS.multihost:
    run_entry(results, slices, name, "train_step", size, FLAGS.dtypes[0],
              batch)
  print(markdown(results.entries))
  print(search_markdown(results.entries, FLAGS.hbm_fraction))


if __name__ == "__main__":
  app.run(main)
