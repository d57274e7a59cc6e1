"""Files are read only as they were written: the corruption suite.

Two workdirs are made once, by the real stages at configs/test.py sizes
(seeds 0 and 1). Each case copies the first, damages one input of one stage
(a flipped run of bytes, a truncation, a deleted file, or the same file from
the seed-1 workdir) and runs that stage: it must stop while planning with
one error naming the damaged file and the stage that wrote it, and leave
every byte of the workdir as it was (no number is written). The intact copy
passes the same checks (the control).
"""
import json
import logging
import os
import re
import shutil
import subprocess
import sys

from absl import logging as absl_logging
import numpy as np
import pytest

from configs import test as test_config
from gansseg_jax.infra import errors
from gansseg_jax.run import stages
from gansseg_jax.infra import workdir as wd
from gansseg_jax.infra import checkpointing
from file_listing import listing
from stage_markers import mark_done

# Two real runs of five stages (mostly compiling): minutes on 2 cores. The
# same promises on fake stages and a small checkpoint, in seconds:
# tests/test_integrity_units.py.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILT = "convert,discover,score,synth,train,eval,report"  # configs/test.py's.


def config(stage_names: str, seed: int = 0, **fields):
  c = test_config.get_config()
  c.stages = stage_names
  c.seed = seed
  for key, value in fields.items():  # section__field=value, or field=value.
    *section, name = key.split("__")
    (c[section[0]] if section else c)[name] = value
  return c


# The seed-1 run, in a second process beside the first: most of the time
# goes to compiling, one core each.
BUILD = f"""
import sys
sys.path.insert(0, {ROOT!r})
from configs import test
from gansseg_jax.run import stages
c = test.get_config()
c.stages, c.seed = {BUILT!r}, 1
c.score.index = 0  # Seed 1's random generator fails the automatic pick.
stages.run(c, sys.argv[1])
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory):
  """{seed: workdir} of two finished runs of configs/test.py's stages."""
  out = {seed: tmp_path_factory.mktemp(f"seed{seed}") / "w" for seed in (0, 1)}
  other = subprocess.Popen([sys.executable, "-c", BUILD, str(out[1])],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, cwd=ROOT)
  try:
    stages.run(config(BUILT, 0), str(out[0]))
  finally:
    log, _ = other.communicate(timeout=1200)
  assert other.returncode == 0, log[-3000:]
  return out


def largest_file(workdir, path):
  """The largest file under `path` (itself if a file), relative to workdir."""
  full = workdir / path
  if full.is_file():
    return path
  files = [p for p in full.rglob("*") if p.is_file()]
  return str(max(files, key=lambda p: p.stat().st_size).relative_to(workdir))


def flip(file):
  """Inverts 64 bytes in the middle of `file` (fewer if it is smaller)."""
  data = bytearray(file.read_bytes())
  start = max(0, len(data) // 2 - 32)
  for i in range(start, min(len(data), start + 64)):
    data[i] ^= 0xFF
  file.write_bytes(bytes(data))


def truncate(file):
  """Keeps the first 1,000 bytes (half of a smaller file)."""
  data = file.read_bytes()
  file.write_bytes(data[:min(1000, len(data) // 2)])


# (what the stage reads, the stage that wrote it, the run that reads it)
READS = {
    "generator": ("convert", config("score", force=True)),
    "directions.npy": ("discover", config("score", force=True)),
    "bg_direction.npy": ("score", config("train", force=True)),
    "bg_affine.npy": ("score", config("train", force=True,
                                      synth__mask_rule="affine")),
    "unet": ("train", config("eval",
                             eval__datasets="scenes:5:8:32,scenes:6:8:32")),
    "ranking.csv": ("score", config("report", force=True)),
    "strips": ("score", config("report", force=True)),
    "eval.json": ("eval", config("report", force=True)),
}
DAMAGES = ("flip", "truncate", "delete", "swap")


def damage(kind, workdir, other, path):
  """Damages `path` in `workdir`; returns the file the error must name."""
  name = largest_file(workdir, path)
  if kind == "flip":
    flip(workdir / name)
  elif kind == "truncate":
    truncate(workdir / name)
  elif kind == "delete":
    os.remove(workdir / name)
  else:  # The same path from the other run.
    if (workdir / path).is_dir():
      shutil.rmtree(workdir / path)
      shutil.copytree(other / path, workdir / path)
    else:
      shutil.copy2(other / path, workdir / path)
  return name


def the_error(run, workdir):
  """The UserError `run` raises, as main prints it; the workdir unchanged."""
  before = listing(workdir)
  with pytest.raises(errors.UserError) as raised:
    stages.run(run, str(workdir))
  assert listing(workdir) == before
  message = str(raised.value)
  assert "\n" not in message
  return message


@pytest.fixture
def copies(made, tmp_path):
  """A fresh copy of the seed-0 workdir, and the seed-1 one (read only)."""
  workdir = tmp_path / "w"
  shutil.copytree(made[0], workdir)
  return workdir, made[1]


@pytest.mark.parametrize("path", sorted(READS))
def test_intact_inputs_pass(copies, path):
  """The control: with nothing damaged, planning the same run succeeds."""
  workdir, _ = copies
  _, run = READS[path]
  plan = stages.plan(run, str(workdir))
  assert plan.running()


@pytest.mark.parametrize("kind", DAMAGES)
@pytest.mark.parametrize("path", sorted(READS))
def test_damaged_input_is_named_and_nothing_is_read(copies, path, kind):
  workdir, other = copies
  writer, run = READS[path]
  name = damage(kind, workdir, other, path)
  message = the_error(run, workdir)
  named, what = message.split(": ", 1)
  assert named.startswith(f"{workdir}/{path}")
  if kind != "swap":
    assert named == f"{workdir}/{name}"
  expected = {"flip": "content differs", "truncate": "truncated",
              "delete": "missing"}.get(kind, "")
  assert what.startswith(expected)
  if kind == "delete" and name == path and path in run_inputs(run):
    # A whole input file gone: the planner's "missing" names its stage.
    assert what.endswith(f"(written by stage '{writer}': add it to "
                         "config.stages)")
  else:
    assert what.endswith(f"(written by stage '{writer}'); remake it with "
                         f"--config.stages={writer} --config.force=True")


def run_inputs(run):
  return [p for name in run.stages.split(",")
          for p in stages.BY_NAME[name].inputs(run)]


def resumable(workdir, stage_name, run):
  """The workdir as a killed run of `stage_name` leaves it (checkpoints)."""
  stage = stages.BY_NAME[stage_name]
  config_dict = wd.config_to_dict(run)
  os.remove(wd.marker_path(str(workdir), stage_name))
  wd.write_started(str(workdir), stage_name,
                   stages.stage_hash(stage, config_dict),
                   stages._relevant(stage, config_dict))  # pylint: disable=protected-access


@pytest.mark.parametrize("kind", ("flip", "truncate", "delete", "swap"))
@pytest.mark.parametrize("stage_name", ("discover", "train"))
def test_damaged_latest_checkpoint_is_named_not_skipped(copies, stage_name,
                                                        kind):
  workdir, other = copies
  run = config(stage_name)
  resumable(workdir, stage_name, run)
  folder = workdir / "checkpoints" / stage_name
  steps = checkpointing.saved_steps(str(folder))
  assert len(steps) >= 2, steps  # An older one exists; it must not be used.
  latest = f"checkpoints/{stage_name}/{steps[-1]}"
  name = damage(kind, workdir, other, latest)
  message = the_error(run, workdir)
  named = message.split(":")[0]
  assert named.startswith(f"{workdir}/{latest}")
  if kind != "swap":
    assert named == f"{workdir}/{name}"
  assert (f"(checkpoint of step {steps[-1]} saved by stage '{stage_name}')"
          in message)
  assert f"delete {workdir}/{latest} to resume" in message


def test_intact_checkpoint_resumes(copies):
  workdir, _ = copies
  run = config("train")
  resumable(workdir, "train", run)
  assert stages.plan(run, str(workdir)).running() == ["train"]


def test_fingerprints_are_sha256_of_every_file_written(made):
  """The marker against hashlib and os.walk directly."""
  import hashlib  # pylint: disable=g-import-not-at-top
  workdir = made[0]
  marker = json.loads((workdir / "stages" / "train.json").read_text())
  assert marker["outputs"] == ["unet", "filter_rates.json"]
  on_disk = listing(workdir / "unet")
  assert sorted(marker["files"]) == sorted(
      [os.path.join("unet", name) for name in on_disk]
      + ["filter_rates.json"])
  for name, data in on_disk.items():
    size, digest = marker["files"][os.path.join("unet", name)]
    assert size == len(data)
    assert digest == hashlib.sha256(data).hexdigest()
  step = checkpointing.saved_steps(str(workdir / "checkpoints" / "train"))[-1]
  recorded = json.loads((workdir / "checkpoints" / "train"
                         / f"{step}.files.json").read_text())["files"]
  assert sorted(recorded) == sorted(
      os.path.join(str(step), name)
      for name in listing(workdir / "checkpoints" / "train" / str(step)))


@pytest.fixture
def warnings_seen():
  """absl WARNING lines logged while the test runs."""
  seen = []
  handler = logging.Handler(logging.WARNING)
  handler.emit = lambda record: seen.append(record.getMessage())
  absl_logging.get_absl_logger().addHandler(handler)
  yield seen
  absl_logging.get_absl_logger().removeHandler(handler)


def test_marker_without_fingerprints_is_refused(copies):
  """Made before fingerprints (or edited): nothing to check the files
  against, so they are not read (they once were, after a warning)."""
  workdir, _ = copies
  path = workdir / "stages" / "train.json"
  marker = json.loads(path.read_text())
  del marker["files"], marker["outputs"], marker[wd.SEAL]
  path.write_text(json.dumps(marker))
  flip(workdir / largest_file(workdir, "unet"))
  assert the_error(READS["unet"][1], workdir) == (
      f"{path}: records no fingerprints of the files stage 'train' wrote "
      "(made before they were recorded, or edited), so its outputs cannot be "
      "verified; remake them with --config.stages=train --config.force=True")


def test_checkpoint_without_fingerprints_warns(copies, warnings_seen):
  workdir, _ = copies
  folder = workdir / "checkpoints" / "train"
  step = checkpointing.saved_steps(str(folder))[-1]
  os.remove(folder / f"{step}.files.json")
  run = config("train")
  resumable(workdir, "train", run)
  assert stages.plan(run, str(workdir)).running() == ["train"]
  assert any(w.startswith(f"{folder}/{step}: no fingerprints")
             for w in warnings_seen)


def test_a_file_added_to_an_output_folder_is_named(copies):
  workdir, _ = copies
  (workdir / "unet" / "extra.bin").write_bytes(b"x")
  message = the_error(READS["unet"][1], workdir)
  assert message.startswith(f"{workdir}/unet/extra.bin: not among the files "
                            "it wrote (written by stage 'train')")


def test_embeddings_are_verified(copies, tmp_path):
  """embeddings.npy as the embed stage records it (no encoder at test size)."""
  workdir, _ = copies
  run = config("train", force=True, synth__latents="embeddings")
  np.save(workdir / "embeddings.npy",
          np.random.default_rng(0).normal(size=(16, 120)).astype(np.float32))
  mark_done(workdir, "embed", run)
  stages.plan(run, str(workdir))  # Intact: passes.
  flip(workdir / "embeddings.npy")
  message = the_error(run, workdir)
  assert message == (f"{workdir}/embeddings.npy: content differs from what "
                     "was written (written by stage 'embed'); remake it with "
                     "--config.stages=embed --config.force=True")


def main(workdir, *overrides):
  return subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main",
       f"--config={ROOT}/configs/test.py", f"--workdir={workdir}",
       *overrides], capture_output=True, text=True, cwd=ROOT, timeout=600)


def one_error_line(proc):
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, proc.stderr[-3000:]
  return lines[0]


def test_command_line_truncated_unet_exits_2(copies):
  """A truncated U-Net file is one line naming it, not a TensorStore traceback."""
  workdir, _ = copies
  name = damage("truncate", workdir, None, "unet")
  before = listing(workdir)
  line = one_error_line(main(workdir, "--config.stages=eval",
                             "--config.eval.datasets=scenes:5:8:32,"
                             "scenes:6:8:32"))
  assert line.startswith(f"error: {workdir}/{name}: truncated (1000 of ")
  assert listing(workdir) == before


def test_command_line_flipped_checkpoint_exits_2(copies):
  workdir, _ = copies
  resumable(workdir, "train", config("train"))
  step = checkpointing.saved_steps(str(workdir / "checkpoints" / "train"))[-1]
  name = damage("flip", workdir, None, f"checkpoints/train/{step}")
  before = listing(workdir)
  line = one_error_line(main(workdir, "--config.stages=train"))
  assert line.startswith(f"error: {workdir}/{name}: content differs")
  assert listing(workdir) == before


# --- The damage matrix: every kind of damage to every kind of
# file a finished run leaves, read by the stage that reads it. The outcome is
# exit 2 with one line and nothing changed, or the same numbers as the
# undamaged run; never other numbers with exit 0. docs/reliability.md's table
# is this test's outcomes (GANSSEG_WRITE_DAMAGE_TABLE=1 rewrites it).

KINDS = ("flip", "truncate", "delete", "swap", "symlink", "edit")
LOOSE = ("metrics.jsonl", "config.json", ".lock")  # Records of no stage.
DATASET_DIR = re.compile(r"^eval/[^/]+_[0-9a-f]{8}/")


def readers(producer, path, run):
  """Stages that read `path`, an output of `producer` (None: any of its
  outputs), the report first."""
  paths = stages.BY_NAME[producer].outputs(run) if path is None else [path]
  found = [s.name for s in stages.STAGES if s.name != producer and (
      set(paths) & set(s.inputs(run)) or producer in s.verifies)]
  return sorted(found, key=lambda name: name != "report")


def labels_of(stage, run):
  """{label: workdir path} of a stage's files in the matrix."""
  out = {DATASET_DIR.sub("eval/<dataset>/", p): p for p in stage.outputs(run)
         if readers(stage.name, p, run)}
  if readers(stage.name, None, run):
    out[f"stages/{stage.name}.json"] = f"stages/{stage.name}.json"
  return out


def artifact_kinds(workdir):
  """{label: (file, the path a swap replaces, reader stage, resume?)} from
  the runner's table: every output of every stage (the largest file under
  it), every marker, the latest checkpoint of every stage with checkpoints
  and its record, and the files no stage records. A new output or stage
  joins the matrix by itself; outputs nothing reads (the report's) are left
  out."""
  run = config(BUILT)
  kinds = {}
  for stage in stages.STAGES:
    if wd.read_marker(str(workdir), stage.name) is None:
      continue
    for label, path in labels_of(stage, run).items():
      reader = (readers(stage.name, None, run) if label.startswith("stages/")
                else readers(stage.name, path, run))[0]
      if (workdir / path).exists():
        kinds[label] = (largest_file(workdir, path), path, reader, False)
    for scratch in stage.scratch(run):
      steps = checkpointing.saved_steps(str(workdir / scratch))
      if steps:
        latest = f"{scratch}/{steps[-1]}"
        kinds[f"{scratch}/<latest>/"] = (largest_file(workdir, latest),
                                         latest, stage.name, True)
        kinds[f"{scratch}/<latest>.files.json"] = (
            f"{latest}.files.json", f"{latest}.files.json", stage.name, True)
  for name in LOOSE:
    kinds[name] = (name, name, "report", False)
  return kinds


def edit_json(file):
  """Adds 1 to the first number of the JSON in `file` (keys sorted)."""
  text = file.read_text()
  rows = [json.loads(line) for line in text.splitlines()] if (
      file.suffix == ".jsonl") else [json.loads(text)]

  def bump(node):
    if isinstance(node, dict):
      return next((True for k in sorted(node) if k != wd.SEAL and (
          bump_leaf(node, k) or bump(node[k]))), False)
    if isinstance(node, list):
      return next((True for i in range(len(node))
                   if bump_leaf(node, i) or bump(node[i])), False)
    return False

  def bump_leaf(parent, key):
    value = parent[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      parent[key] = value + 1
      return True
    return False

  assert bump(rows), file
  file.write_text("\n".join(json.dumps(r) for r in rows) + (
      "\n" if file.suffix == ".jsonl" else ""))


def damage_file(kind, workdir, other, name, unit, outside):
  """Damages the file `name` of `workdir` (a swap: all of `unit`, from the
  `other` workdir); False if `kind` does not apply."""
  file = workdir / name
  if kind == "edit":  # The file, or else the largest JSON file of its unit.
    found = [file] if file.suffix in (".json", ".jsonl") else sorted(
        (workdir / unit).rglob("*.json"), key=lambda p: p.stat().st_size)[-1:]
    if not found or not found[0].read_text():
      return False
    edit_json(found[0])
  elif kind == "swap":
    if not (other / unit).exists():
      return False
    if (workdir / unit).is_dir():
      shutil.rmtree(workdir / unit)
      shutil.copytree(other / unit, workdir / unit)
    else:
      os.remove(workdir / unit)
      shutil.copy2(other / unit, workdir / unit)
  elif kind == "symlink":
    shutil.copy2(file, outside)
    os.remove(file)
    os.symlink(outside, file)
  elif kind == "delete":
    os.remove(file)
  elif file.stat().st_size == 0:
    return False  # Nothing to flip or truncate (an idle .lock).
  else:
    flip(file) if kind == "flip" else truncate(file)
  return True


def numbers(workdir):
  """What a run reports: every eval result, the ranking, the pass rates."""
  return {name: (workdir / name).read_bytes() if (workdir / name).exists()
          else None for name in ("eval.json", "ranking.csv",
                                 "filter_rates.json", "bg_direction.npy")}


OUTCOMES = {}  # (label, kind) -> outcome, for the doc table.


@pytest.fixture(scope="module")
def kinds_of_files(made):
  return artifact_kinds(made[0])


def matrix_cases():
  """(label, kind) of every cell; labels come from a workdir, so the cases
  are the labels configs/test.py's stages leave, listed without one."""
  run = config(BUILT)
  labels = []
  for stage in stages.STAGES:
    if stage.name not in BUILT.split(","):
      continue
    labels += list(labels_of(stage, run))
    for scratch in stage.scratch(run):
      labels += [f"{scratch}/<latest>/", f"{scratch}/<latest>.files.json"]
  return [(label, kind) for label in labels + list(LOOSE) for kind in KINDS]


@pytest.mark.parametrize("label, kind", matrix_cases())
def test_damage_matrix(made, kinds_of_files, tmp_path, label, kind):
  if label not in kinds_of_files:
    pytest.skip(f"{label}: not in a configs/test.py workdir")
  name, unit, reader, resume = kinds_of_files[label]
  workdir = tmp_path / "w"
  shutil.copytree(made[0], workdir, symlinks=True)
  run = config(reader, force=not resume)
  if resume:  # The checkpoint is read by a resumed run.
    resumable(workdir, reader, run)
  if not damage_file(kind, workdir, made[1], name, unit,
                     tmp_path / "outside"):
    OUTCOMES[label, kind] = "n/a"
    return
  before = listing(workdir)
  try:
    stages.run(run, str(workdir))
  except errors.UserError as e:
    assert "\n" not in str(e)
    assert str(e).startswith(str(workdir)), str(e)
    assert listing(workdir) == before
    OUTCOMES[label, kind] = "exit 2"
    return
  assert numbers(workdir) == numbers(made[0])
  OUTCOMES[label, kind] = "same numbers"


TABLE_START = "<!-- damage matrix: tests/test_integrity.py -->"
TABLE_END = "<!-- end of damage matrix -->"


def damage_table():
  labels = list(dict.fromkeys(label for label, _ in OUTCOMES))
  lines = ["| file \\ damage | " + " | ".join(KINDS) + " |",
           "|---" * (len(KINDS) + 1) + "|"]
  for label in labels:
    lines.append(f"| `{label}` | " + " | ".join(
        OUTCOMES.get((label, kind), "?") for kind in KINDS) + " |")
  return "\n".join(lines)


def test_damage_table_in_the_docs_is_the_matrix():
  """Runs after the matrix (collection order): docs/reliability.md's table."""
  if len(OUTCOMES) < len(matrix_cases()):
    pytest.skip("the whole damage matrix did not run")
  path = os.path.join(ROOT, "docs", "reliability.md")
  with open(path) as f:
    text = f.read()
  start, end = text.index(TABLE_START), text.index(TABLE_END)
  table = damage_table()
  if os.environ.get("GANSSEG_WRITE_DAMAGE_TABLE"):
    with open(path, "w") as f:
      f.write(text[:start + len(TABLE_START)] + "\n" + table + "\n"
              + text[end:])
    return
  assert text[start + len(TABLE_START):end].strip() == table
