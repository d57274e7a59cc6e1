"""The stage runner: order, skipping, config compatibility, inputs, atomicity."""
import json
import os

import ml_collections
import pytest

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.run import stages
from file_listing import listing

CALLS = []


def make_a(config, workdir):
  CALLS.append("a")
  fileio.write_text(os.path.join(workdir, "a.txt"), str(config.a.value))


def make_b(config, workdir):
  CALLS.append("b")
  with open(os.path.join(workdir, "a.txt")) as f:
    upstream = f.read()
  fileio.write_text(os.path.join(workdir, "b.txt"), upstream + str(config.b.value))


def fail_c(config, workdir):
  CALLS.append("c")
  with fileio.atomic_path(os.path.join(workdir, "c.txt")) as tmp:
    with open(tmp, "w") as f:
      f.write("half")
    raise RuntimeError("boom")


def fixed(*paths):
  return lambda config: paths


FAKE = (
    stages.Stage(name="a",
                 run=f"{__name__}:make_a",
                 reads=("a",),
                 inputs=fixed(),
                 outputs=fixed("a.txt")),
    stages.Stage(name="b",
                 run=f"{__name__}:make_b",
                 reads=("b",),
                 after=("a",),
                 inputs=fixed("a.txt"),
                 outputs=fixed("b.txt")),
    stages.Stage(name="c",
                 run=f"{__name__}:fail_c",
                 reads=("c",),
                 after=("b",),
                 inputs=fixed("b.txt"),
                 outputs=fixed("c.txt")),
)


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
  monkeypatch.setattr(stages, "STAGES", FAKE)
  monkeypatch.setattr(stages, "BY_NAME", {s.name: s for s in FAKE})
  CALLS.clear()


def make_config(stage_names="a,b", a=1, b=2, force=False):
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.stages = stage_names
  c.force = force
  c.a = ml_collections.ConfigDict({"value": a})
  c.b = ml_collections.ConfigDict({"value": b})
  c.c = ml_collections.ConfigDict({"value": 0})
  return c


def test_runs_in_canonical_order_and_records_config(tmp_path):
  stages.run(make_config("b,a"), str(tmp_path))
  assert CALLS == ["a", "b"]
  assert (tmp_path / "b.txt").read_text() == "12"
  recorded = json.loads((tmp_path / "config.json").read_text())
  assert recorded["a"]["value"] == 1 and recorded["stages"] == "b,a"
  marker = json.loads((tmp_path / "stages" / "b.json").read_text())
  assert marker["seconds"] >= 0 and marker["config_hash"]


def test_done_stages_are_skipped_and_force_reruns(tmp_path):
  stages.run(make_config(), str(tmp_path))
  stages.run(make_config(), str(tmp_path))
  assert CALLS == ["a", "b"]
  stages.run(make_config(force=True), str(tmp_path))
  assert CALLS == ["a", "b", "a", "b"]


def test_deleted_output_is_remade(tmp_path):
  stages.run(make_config(), str(tmp_path))
  os.remove(tmp_path / "b.txt")
  stages.run(make_config(), str(tmp_path))
  assert CALLS == ["a", "b", "b"]


def test_incompatible_config_names_the_field_and_changes_nothing(tmp_path):
  stages.run(make_config(), str(tmp_path))
  before = listing(tmp_path)
  with pytest.raises(errors.UserError, match=r"stage 'a'.*a\.value: 1 -> 5"):
    stages.run(make_config(a=5), str(tmp_path))
  assert listing(tmp_path) == before


def test_forced_upstream_change_invalidates_downstream(tmp_path):
  stages.run(make_config(), str(tmp_path))
  stages.run(make_config("a", a=5, force=True), str(tmp_path))
  assert not (tmp_path / "stages" / "b.json").exists()
  stages.run(make_config("b", a=5), str(tmp_path))
  assert (tmp_path / "b.txt").read_text() == "52"


def test_change_of_a_section_no_finished_stage_reads_is_accepted(tmp_path):
  stages.run(make_config("a"), str(tmp_path))
  stages.run(make_config("a,b", b=7), str(tmp_path))
  assert CALLS == ["a", "b"]
  assert (tmp_path / "b.txt").read_text() == "17"


def test_a_finished_stage_this_run_neither_runs_nor_reads_is_not_checked(tmp_path):
  """b (made with b=2) is not selected and nothing selected reads it."""
  stages.run(make_config("a,b"), str(tmp_path))
  stages.run(make_config("a", b=7), str(tmp_path))
  assert CALLS == ["a", "b"]
  assert (tmp_path / "stages" / "b.json").exists()
  with pytest.raises(errors.UserError, match=r"stage 'b'.*b\.value: 2 -> 7"):
    stages.run(make_config("b", b=7), str(tmp_path))


def test_missing_input_names_path_and_producer(tmp_path):
  with pytest.raises(errors.UserError,
                     match=r"a\.txt: missing; stage 'b' needs it \(written by stage 'a'"):
    stages.run(make_config("b"), str(tmp_path))
  assert not tmp_path.joinpath("config.json").exists()


def test_failing_stage_leaves_no_partial_output(tmp_path):
  with pytest.raises(RuntimeError, match="boom"):
    stages.run(make_config("a,b,c"), str(tmp_path))
  assert not (tmp_path / "c.txt").exists()
  assert not (tmp_path / "stages" / "c.json").exists()
  assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
  assert (tmp_path / "stages" / "b.json").exists()


def test_unknown_stage_name(tmp_path):
  with pytest.raises(errors.UserError, match="config.stages: unknown stage 'x'"):
    stages.run(make_config("a,x"), str(tmp_path))
