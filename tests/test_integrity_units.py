"""Fingerprints without a real workdir: the runner with fake stages, and
orbax checkpoints of a small tree (seconds; tests/test_integrity.py holds the
same promises on workdirs the real stages made, minutes)."""
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.run import stages
from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import fingerprints


def write_parts(config, workdir):
  """Stage 'a': a folder of three files and a single file."""
  for i in range(3):
    fileio.write_bytes(os.path.join(workdir, "parts", f"{i}.bin"),
                       bytes([i]) * (2000 + config.a.value))
  fileio.write_text(os.path.join(workdir, "one.txt"), "one")


def read_parts(config, workdir):
  """Stage 'b': the total size of a's parts."""
  del config
  folder = os.path.join(workdir, "parts")
  total = sum(os.path.getsize(os.path.join(folder, n))
              for n in os.listdir(folder))
  fileio.write_text(os.path.join(workdir, "sum.txt"), str(total))


def fixed(*paths):
  return lambda config: paths


FAKE = (
    stages.Stage(name="a",
                 run=f"{__name__}:write_parts",
                 reads=("a",),
                 inputs=fixed(),
                 outputs=fixed("parts", "one.txt")),
    stages.Stage(name="b",
                 run=f"{__name__}:read_parts",
                 reads=("b",),
                 after=("a",),
                 inputs=fixed("parts", "one.txt"),
                 outputs=fixed("sum.txt")),
)


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
  monkeypatch.setattr(stages, "STAGES", FAKE)
  monkeypatch.setattr(stages, "BY_NAME", {s.name: s for s in FAKE})


def make_config(names, a=0, force=False):
  c = ml_collections.ConfigDict()
  c.seed, c.stages, c.force = 0, names, force
  c.a = ml_collections.ConfigDict({"value": a})
  c.b = ml_collections.ConfigDict({"value": 0})
  return c


def test_marker_records_size_and_sha256_of_every_output_file(tmp_path):
  stages.run(make_config("a"), str(tmp_path))
  marker = json.loads((tmp_path / "stages" / "a.json").read_text())
  assert marker["outputs"] == ["parts", "one.txt"]
  expected = {}
  for name in ("parts/0.bin", "parts/1.bin", "parts/2.bin", "one.txt"):
    data = (tmp_path / name).read_bytes()
    expected[name] = [len(data), hashlib.sha256(data).hexdigest()]
  assert marker["files"] == expected


@pytest.mark.parametrize("damage, what", [
    (lambda p: p.write_bytes(b"\x02" * 1999 + b"\x03"),
     "content differs from what was written"),
    (lambda p: p.write_bytes(b"\x02" * 100), "truncated (100 of 2000 bytes)"),
    (lambda p: p.write_bytes(b"\x02" * 2001), "2001 bytes, 2000 written"),
    (os.remove, "missing"),
])
def test_damaged_input_stops_the_reader_while_planning(tmp_path, damage, what):
  stages.run(make_config("a"), str(tmp_path))
  damage(tmp_path / "parts" / "2.bin")
  with pytest.raises(errors.UserError) as raised:
    stages.plan(make_config("b"), str(tmp_path))
  assert str(raised.value) == (
      f"{tmp_path}/parts/2.bin: {what} (written by stage 'a'); remake it "
      "with --config.stages=a --config.force=True")


def test_an_input_remade_in_the_same_run_is_not_checked(tmp_path):
  """a runs again (forced), so its old damaged outputs are never read."""
  stages.run(make_config("a"), str(tmp_path))
  (tmp_path / "parts" / "0.bin").write_bytes(b"x")
  stages.run(make_config("a,b", force=True), str(tmp_path))
  assert (tmp_path / "sum.txt").read_text() == "6000"


def test_a_done_upstream_is_checked_when_its_reader_runs(tmp_path):
  """`--config.stages=a,b` with a done: a is skipped, its outputs checked."""
  stages.run(make_config("a"), str(tmp_path))
  (tmp_path / "one.txt").write_text("two")
  with pytest.raises(errors.UserError, match="one.txt: content differs"):
    stages.plan(make_config("a,b"), str(tmp_path))


def test_first_problem_reads_no_digest_when_sizes_differ(tmp_path,
                                                         monkeypatch):
  (tmp_path / "f").write_bytes(b"abc")
  recorded = fingerprints.record(str(tmp_path), ["f"])
  (tmp_path / "f").write_bytes(b"ab")
  monkeypatch.setattr(fingerprints, "file_digest", None)  # Must not be used.
  assert fingerprints.first_problem(str(tmp_path), ["f"], recorded) == (
      "f", "truncated (2 of 3 bytes)")


def tree(scale):
  return {"w": jnp.arange(4096, dtype=jnp.float32) * scale,
          "b": jnp.ones((7,), jnp.float32) * scale}


ABSTRACT = jax.eval_shape(lambda: tree(1.0))


def largest(folder):
  files = [p for p in folder.rglob("*") if p.is_file()]
  return max(files, key=lambda p: p.stat().st_size)


def test_checkpoints_are_recorded_and_old_records_go(tmp_path):
  folder = tmp_path / "checkpoints" / "train"
  with checkpointing.StepCheckpoints(str(folder), keep=2) as checkpoints:
    for step in (1, 2, 3):
      checkpoints.save(step, tree(float(step)))
  assert sorted(os.listdir(folder)) == ["2", "2.files.json", "3",
                                        "3.files.json"]
  recorded = json.loads((folder / "3.files.json").read_text())["files"]
  on_disk = sorted(str(p.relative_to(folder)) for p in (folder / "3").rglob("*")
                   if p.is_file())
  assert sorted(recorded) == on_disk
  with checkpointing.StepCheckpoints(str(folder), keep=2) as checkpoints:
    restored = checkpoints.restore(3, ABSTRACT)
  assert float(restored["w"][1]) == 3.0


def test_damaged_checkpoint_is_an_error_not_a_fallback(tmp_path):
  folder = tmp_path / "checkpoints" / "discover"
  with checkpointing.StepCheckpoints(str(folder), keep=2) as checkpoints:
    checkpoints.save(1, tree(1.0))
    checkpoints.save(2, tree(2.0))
  victim = largest(folder / "2")
  data = bytearray(victim.read_bytes())
  data[len(data) // 2] ^= 0x01
  victim.write_bytes(bytes(data))
  with checkpointing.StepCheckpoints(str(folder), keep=2) as checkpoints:
    with pytest.raises(errors.UserError) as raised:
      checkpoints.restore(checkpoints.latest_step(), ABSTRACT)
  assert str(raised.value) == (
      f"{victim}: content differs from what was written (checkpoint of step "
      f"2 saved by stage 'discover'); delete {folder}/2 to resume from the "
      "one before, or start over with --config.stages=discover "
      "--config.force=True")
