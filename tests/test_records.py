"""The workdir's records carry provenance, and nothing escapes W.

In seconds, on fake stages (the runner, markers, locks, checkpoints of a
small tree) and the eval stage with a stand-in predictor: every case here is
one that attack and unlucky-user probes once broke (a symlinked lock, a
deleted marker, a checkpoint of another run or config, an edited result, a
changed dataset, a torn metrics line, a full disk, malformed records).
"""
import errno
import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from configs import test as test_config
from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax import main as main_module
from gansseg_jax.infra import monitoring
from gansseg_jax.run import stages
from gansseg_jax.infra import workdir as wd
from gansseg_jax.infra import checkpointing

from file_listing import listing
from stage_markers import mark_done
import test_integrity_units
from test_integrity_units import fixed


def refuse(config, workdir):
  """Stage 'x': bad input found only once it runs."""
  del config, workdir
  raise errors.UserError("config.x.value: bad input found by the stage")


TREE = {"w": jnp.zeros((64,), jnp.float32)}


def count_steps(config, workdir):
  """Stage 'c': 4 steps of `w += lr`, a checkpoint after each; resumes."""
  folder = os.path.join(workdir, "checkpoints", "c")
  with checkpointing.StepCheckpoints(folder, keep=2) as checkpoints:
    step = checkpoints.latest_step() or 0
    state = (checkpoints.restore(step, jax.eval_shape(lambda: TREE)) if step
             else TREE)
    while step < 4:
      step += 1
      state = {"w": state["w"] + config.c.lr}
      checkpoints.save(step, state)
  fileio.write_text(os.path.join(workdir, "c.txt"),
                    str(float(state["w"][0])))


FAKE = test_integrity_units.FAKE + (  # 'a' writes parts/, 'b' reads them.
    stages.Stage(name="c",
                 run=f"{__name__}:count_steps",
                 reads=("c",),
                 inputs=fixed(),
                 outputs=fixed("c.txt"),
                 scratch=fixed("checkpoints/c")),
    stages.Stage(name="x",
                 run=f"{__name__}:refuse",
                 reads=("x",),
                 inputs=fixed(),
                 outputs=fixed("x.txt")),
)


@pytest.fixture
def fake_registry(monkeypatch):
  monkeypatch.setattr(stages, "STAGES", FAKE)
  monkeypatch.setattr(stages, "BY_NAME", {s.name: s for s in FAKE})


def make_config(names, a=0, lr=1.0, seed=0, force=False):
  return ml_collections.ConfigDict({
      "seed": seed, "stages": names, "force": force, "a": {"value": a},
      "b": {"value": 0}, "c": {"lr": lr}, "x": {"value": 0}})


def refused(config, workdir):
  """The UserError a run raises; every byte of the workdir unchanged."""
  before = listing(workdir) if os.path.isdir(workdir) else None
  with pytest.raises(errors.UserError) as raised:
    stages.run(config, str(workdir))
  after = listing(workdir) if os.path.isdir(workdir) else None
  assert after == before
  assert "\n" not in str(raised.value)
  return str(raised.value)


# --- 1. Nothing written leaves the workdir.

def test_symlinked_lock_is_refused_and_its_target_kept(tmp_path,
                                                       fake_registry):
  """The workdir itself may be a link (`link` -> `real`); the lock not."""
  (tmp_path / "real").mkdir()
  os.symlink(tmp_path / "real", tmp_path / "link")
  workdir = tmp_path / "link"
  stages.run(make_config("a,b"), str(workdir))
  victim = tmp_path / "victim.txt"
  victim.write_text("precious")
  os.remove(workdir / ".lock")
  os.symlink(victim, workdir / ".lock")
  message = refused(make_config("a", force=True), workdir)
  assert message.startswith(f"{workdir}/.lock: a symbolic link (to {victim})")
  assert victim.read_text() == "precious"


@pytest.mark.parametrize("name", ["metrics.jsonl", "parts/2.bin"])
def test_symlink_inside_the_workdir_is_named(tmp_path, fake_registry, name):
  workdir = tmp_path / "w"
  stages.run(make_config("a"), str(workdir))
  outside = tmp_path / "outside"
  outside.write_text("")
  if os.path.exists(workdir / name):
    os.remove(workdir / name)
  os.symlink(outside, workdir / name)
  message = refused(make_config("a,b"), workdir)
  assert message.startswith(f"{workdir}/{name}: a symbolic link")
  assert outside.read_text() == ""


def test_lock_that_is_a_folder_is_one_line(tmp_path, fake_registry):
  workdir = tmp_path / "w"
  (workdir / ".lock").mkdir(parents=True)
  assert refused(make_config("a"), workdir) == (
      f"{workdir}/.lock: not a regular file; the lock must be the workdir's "
      "own file: remove it")


def test_metrics_are_appended_without_following_a_link(tmp_path):
  outside = tmp_path / "outside.jsonl"
  outside.write_text("")
  os.symlink(outside, tmp_path / "metrics.jsonl")
  writer = monitoring.MetricsWriter(str(tmp_path), "train", tensorboard=False)
  with pytest.raises(OSError) as raised:
    writer.write_scalars(1, {"loss": 1.0})
  assert raised.value.errno == errno.ELOOP
  assert outside.read_text() == ""


@pytest.mark.parametrize("fresh", ["absent", "empty"])
def test_refused_run_leaves_a_fresh_workdir_as_it_was(tmp_path, fake_registry,
                                                      fresh):
  workdir = tmp_path / "w"
  if fresh == "empty":
    workdir.mkdir()
  with pytest.raises(errors.UserError, match="config.x.value"):
    stages.run(make_config("x"), str(workdir))
  assert (os.listdir(workdir) == []) if fresh == "empty" else (
      not os.path.exists(workdir))


# --- 2-3. A missing or edited marker is never trusted.

def test_missing_marker_with_outputs_there_is_refused(tmp_path,
                                                      fake_registry):
  stages.run(make_config("a"), str(tmp_path))
  os.remove(tmp_path / "stages" / "a.json")
  (tmp_path / "parts" / "2.bin").write_bytes(b"9")  # Now unverifiable.
  assert refused(make_config("b", force=True), tmp_path) == (
      f"{tmp_path}/parts: cannot be verified: {tmp_path}/stages/a.json, the "
      "record of stage 'a' that writes it, is missing; remake it with "
      "--config.stages=a --config.force=True")


@pytest.mark.parametrize("removed, what", [
    (("files",), "changed since it was written (its sha256 does not match)"),
    (("files", "sha256"), "records no fingerprints of the files stage 'a' "
     "wrote"),
])
def test_marker_without_its_files_is_refused(tmp_path, fake_registry,
                                             removed, what):
  stages.run(make_config("a"), str(tmp_path))
  marker = tmp_path / "stages" / "a.json"
  record = json.loads(marker.read_text())
  for key in removed:
    del record[key]
  marker.write_text(json.dumps(record))
  assert refused(make_config("b"), tmp_path).startswith(f"{marker}: {what}")


@pytest.mark.parametrize("content", ["[]", '{"files": null}', "[1]", "",
                                     '{"config_hash": 3}', "null",
                                     '{"files": {"parts/2.bin": [1]}}'])
def test_malformed_marker_is_one_line(tmp_path, fake_registry, content):
  stages.run(make_config("a"), str(tmp_path))
  (tmp_path / "stages" / "a.json").write_text(content)
  message = refused(make_config("b"), tmp_path)
  assert message.startswith(f"{tmp_path}/stages/a.json: ")
  assert message.endswith("delete it and re-run stage 'a' with "
                          "--config.stages=a --config.force=True")


def test_force_still_checks_the_stages_it_reads(tmp_path, fake_registry):
  stages.run(make_config("a,b"), str(tmp_path))
  assert refused(make_config("b", a=1, force=True), tmp_path) == (
      f"{tmp_path}/stages/a.json: stage 'a' was run with a different config "
      "(a.value: 0 -> 1); re-make it too: add 'a' to --config.stages, or use "
      "a new --workdir")


# --- 4-5. A checkpoint resumes only under the run (config, seed) that saved it.

def test_resume_under_another_config_is_refused_without_marker(
    tmp_path, fake_registry):
  stages.run(make_config("c", lr=1.0), str(tmp_path))
  os.remove(tmp_path / "stages" / "c.json")
  message = refused(make_config("c", lr=0.01), tmp_path)
  assert message == (
      f"{tmp_path}/checkpoints/c/4: stage 'c' saved this checkpoint with a "
      "different config (c.lr: 1.0 -> 0.01); delete "
      f"{tmp_path}/checkpoints/c to start over, or use --config.stages=c "
      "--config.force=True")
  stages.run(make_config("c", lr=1.0), str(tmp_path))  # The same: resumes.
  assert (tmp_path / "c.txt").read_text() == "4.0"


def test_checkpoint_of_another_run_is_refused(tmp_path, fake_registry):
  mine, theirs = tmp_path / "seed0", tmp_path / "seed1"
  stages.run(make_config("c", lr=1.0), str(mine))
  stages.run(make_config("c", lr=1.0, seed=1), str(theirs))
  os.remove(mine / "stages" / "c.json")
  for name in ("4", "4.files.json"):
    target = mine / "checkpoints" / "c" / name
    if target.is_dir():
      shutil.rmtree(target)
      shutil.copytree(theirs / "checkpoints" / "c" / name, target)
    else:
      shutil.copy(theirs / "checkpoints" / "c" / name, target)
  assert "(seed: 1 -> 0)" in refused(make_config("c", lr=1.0), mine)


def test_checkpoint_without_any_record_is_refused(tmp_path, fake_registry):
  stages.run(make_config("c"), str(tmp_path))
  os.remove(tmp_path / "stages" / "c.json")
  os.remove(tmp_path / "checkpoints" / "c" / "4.files.json")
  assert refused(make_config("c"), tmp_path).startswith(
      f"{tmp_path}/checkpoints/c/4: no record of the run that saved it")


@pytest.mark.parametrize("content", ["[]", '{"files": null}', "{",
                                     '{"files": {}, "run": [1]}'])
def test_malformed_checkpoint_record_is_one_line(tmp_path, fake_registry,
                                                 content):
  stages.run(make_config("c"), str(tmp_path))
  os.remove(tmp_path / "stages" / "c.json")
  (tmp_path / "checkpoints" / "c" / "4.files.json").write_text(content)
  assert refused(make_config("c"), tmp_path).startswith(
      f"{tmp_path}/checkpoints/c/4.files.json: not a checkpoint's record")


def test_unrecorded_damaged_checkpoint_is_one_line(tmp_path):
  """No fingerprints to check: orbax's own failure becomes a UserError."""
  folder = tmp_path / "checkpoints" / "c"
  with checkpointing.StepCheckpoints(str(folder), keep=2) as checkpoints:
    checkpoints.save(1, TREE)
  os.remove(folder / "1.files.json")
  for path in (folder / "1").rglob("*"):
    if path.is_file() and path.stat().st_size > 100:
      path.write_bytes(path.read_bytes()[:50])
  with checkpointing.StepCheckpoints(str(folder), keep=2) as checkpoints:
    with pytest.raises(errors.UserError, match=f"^{folder}/1: unreadable"):
      checkpoints.restore(1, jax.eval_shape(lambda: TREE))


# --- 4 (metrics). Torn lines are skipped; a resumed range replaces its rows.

def test_torn_last_line_is_skipped_and_counted(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"stage": "train", "step": 1, "loss": 1.0}\n'
                  '{"stage": "train", "step": 2, "lo')
  rows, skipped = monitoring.read_metrics(str(path))
  assert [r["step"] for r in rows] == [1] and skipped == 1


def test_resumed_writer_replaces_the_rows_of_the_lost_interval(tmp_path):
  first = monitoring.MetricsWriter(str(tmp_path), "train", tensorboard=False)
  for step in (2, 4, 6):
    first.write_scalars(step, {"loss": float(step)})
  other = monitoring.MetricsWriter(str(tmp_path), "eval", tensorboard=False)
  other.write_scalars(9, {"x": 0.0})
  # Killed after step 6; the checkpoint was of step 3: steps 4.. again.
  resumed = monitoring.MetricsWriter(str(tmp_path), "train",
                                     tensorboard=False)
  for step in (4, 6):
    resumed.write_scalars(step, {"loss": step + 0.5})
  rows, skipped = monitoring.read_metrics(str(tmp_path / "metrics.jsonl"))
  assert skipped == 0
  assert [(r["stage"], r["step"], r.get("loss")) for r in rows] == [
      ("train", 2, 2.0), ("eval", 9, None), ("train", 4, 4.5),
      ("train", 6, 6.5)]


def test_full_disk_while_appending_leaves_no_half_line(tmp_path, monkeypatch):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"stage": "train", "step": 1}\n')
  real_write = os.write

  def short_write(fd, data):
    return real_write(fd, data[:5])  # The disk filled after 5 bytes.

  monkeypatch.setattr(os, "write", short_write)
  with pytest.raises(OSError) as raised:
    fileio.append_line(str(path), '{"stage": "train", "step": 2}\n')
  monkeypatch.undo()
  assert raised.value.errno == errno.ENOSPC
  assert raised.value.filename == str(path)
  assert path.read_text() == '{"stage": "train", "step": 1}\n'


# --- 8. A full disk from any writer: one line naming the file, exit 2.

@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device",
            "/w/config.json.tmp-abcd1234/config.json"),
    ValueError("RESOURCE_EXHAUSTED: Error writing local file "
               "\"/w/checkpoints/train/6/d/x\": No space left on device"),
])
def test_full_disk_is_one_line_naming_the_file(error):
  line = main_module._refused_write(error, "/w")  # pylint: disable=protected-access
  expected = ("/w/config.json" if isinstance(error, OSError)
              else "/w/checkpoints/train/6/d/x")
  assert line.startswith(f"{expected}: No space left on device (")
  assert line.endswith("free some and run the same command again: it "
                       "resumes")
  assert errors.is_full_disk(error)


def test_failed_write_puts_config_json_back(tmp_path, fake_registry,
                                            monkeypatch):
  stages.run(make_config("a"), str(tmp_path))
  before = listing(tmp_path)

  def full(config, workdir):
    raise OSError(errno.ENOSPC, "No space left on device",
                  os.path.join(workdir, "parts", "0.bin"))

  monkeypatch.setattr(test_integrity_units, "write_parts", full)
  with pytest.raises(OSError):
    stages.run(make_config("a", a=5, force=True), str(tmp_path))
  assert listing(tmp_path) == before


# --- 6. filter_rates.json is one of train's records.

@pytest.mark.parametrize("damage", ["edit", "truncate", "no marker"])
def test_filter_rates_are_verified_before_the_report_reads_them(tmp_path,
                                                                damage):
  config = test_config.get_config()
  config.stages = "report"
  workdir = str(tmp_path)
  fileio.write_text(os.path.join(workdir, "unet", "params"), "weights")
  rates = os.path.join(workdir, "filter_rates.json")
  fileio.write_json(rates, {"rates": {"kept": 0.5}, "settings": {}})
  mark_done(workdir, "train", config)
  if damage == "edit":
    fileio.write_json(rates, {"rates": {"kept": 0.9}, "settings": {}})
  elif damage == "truncate":
    fileio.write_text(rates, '{"rates": {"ke')
  else:
    os.remove(wd.marker_path(workdir, "train"))
  with pytest.raises(errors.UserError) as raised:
    stages.plan(config, workdir)
  assert str(raised.value).startswith(
      f"{rates}: " if damage != "no marker" else f"{workdir}/unet: ")
  assert str(raised.value).endswith(
      "remake it with --config.stages=train --config.force=True")


def write_rows(folder, stage, steps):
  writer = monitoring.MetricsWriter(str(folder), stage, tensorboard=False)
  for step in steps:
    writer.write_scalars(step, {"loss": float(step)})


def test_edited_metrics_row_is_one_line(tmp_path):
  write_rows(tmp_path, "train", (1, 2, 3))
  path = tmp_path / "metrics.jsonl"
  path.write_text(path.read_text().replace('"loss": 2.0', '"loss": 0.5'))
  with pytest.raises(errors.UserError) as raised:
    monitoring.read_metrics(str(path))
  assert str(raised.value).startswith(
      f"{path}: line 2 changed since it was written")


def test_metrics_of_another_run_are_not_reported(tmp_path, fake_registry):
  from gansseg_jax.report import stage as report_stage  # pylint: disable=g-import-not-at-top
  theirs = tmp_path / "theirs"
  wd.write_started(str(theirs), "train", "other-hash", {})
  write_rows(theirs, "train", (1, 2))
  wd.write_marker(str(tmp_path), "train", "my-hash", {}, 0.0)
  shutil.copy(theirs / "metrics.jsonl", tmp_path / "metrics.jsonl")
  with pytest.raises(errors.UserError, match=(
      "the train row of step 1 is from another run "
      r"\(config hash other-hash, not the my-hash")):
    report_stage._read_train_metrics(str(tmp_path))  # pylint: disable=protected-access
