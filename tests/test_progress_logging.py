"""Progress lines (smoothed rate, ETA) and the third-party log filter."""
import logging as std_logging
import os
import subprocess
import sys

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gansseg_jax.infra import monitoring
from gansseg_jax.infra import runtime
from gansseg_jax.directions import score as score_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fake_progress(window):
  now = [0.0]
  progress = monitoring.Progress(total=1000, desc="train", every_s=0,
                                 clock=lambda: now[0], window=window)
  return progress, now


def test_rate_is_measured_over_the_last_window_of_intervals():
  progress, now = _fake_progress(window=3)
  progress.update(0)
  for step in range(1, 11):  # 10 units/s for 10 s ...
    now[0] += 1.0
    progress.update(10 * step)
  for step in range(1, 4):  # ... then 2 units/s for 3 s.
    now[0] += 1.0
    progress.update(100 + 2 * step)
  # The last 3 intervals alone: 6 units in 3 s (cumulative would be 106/13).
  assert progress.rate() == 2.0
  assert progress.line() == "train: 106/1000 (10.6%) 2/s, ETA 0:07:27"


def test_one_slow_interval_moves_the_eta_by_a_fraction():
  progress, now = _fake_progress(window=6)
  progress.update(0)
  for step in range(1, 11):
    now[0] += 1.0
    progress.update(10 * step)
  now[0] += 6.0  # One pause (a hold-out evaluation): 10 units in 6 s.
  progress.update(110)
  # Window: 5 intervals of 1 s and the slow one: 60 units in 11 s, where the
  # last interval alone (clu's point estimate) would say 10/6.
  assert abs(progress.rate() - 60 / 11) < 1e-12


def test_rate_waits_for_a_second_point():
  progress, now = _fake_progress(window=3)
  progress.update(5)
  assert progress.rate() is None
  assert progress.line() == "train: 5/1000 (0.5%)"


def _record(pathname, level=std_logging.INFO):
  return std_logging.LogRecord("absl", level, pathname, 1, "m", None, None)


def test_filter_keeps_our_info_and_every_warning():
  own = os.path.join(ROOT, "gansseg_jax", "stages.py")
  orbax = "/venv/site-packages/orbax/checkpoint/checkpoint.py"
  f = runtime.OwnInfoOnly()
  assert f.filter(_record(own))
  assert not f.filter(_record(orbax))
  assert f.filter(_record(orbax, std_logging.WARNING))


def test_configure_logging_switch():
  handler = logging.get_absl_handler()
  config = ml_collections.ConfigDict({"log": {"third_party_info": False}})
  try:
    runtime.configure_logging(config)
    runtime.configure_logging(config)
    ours = [f for f in handler.filters if isinstance(f, runtime.OwnInfoOnly)]
    assert len(ours) == 1
    config.log.third_party_info = True
    runtime.configure_logging(config)
    assert not any(isinstance(f, runtime.OwnInfoOnly)
                   for f in handler.filters)
  finally:
    for f in list(handler.filters):
      if isinstance(f, runtime.OwnInfoOnly):
        handler.removeFilter(f)


def _run_convert(tmp_path, *extra):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  return subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main", "--config=configs/test.py",
       f"--workdir={tmp_path}", "--config.stages=convert", *extra],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_run_logs_no_third_party_info_unless_asked(tmp_path):
  quiet = _run_convert(tmp_path / "quiet")
  assert quiet.returncode == 0, quiet.stderr
  info = [l for l in quiet.stderr.splitlines() if l.startswith("I")]
  assert info and all(
      any(f" {name}:" in l for name in ("runtime.py", "stages.py", "stage.py"))
      for l in info), info
  loud = _run_convert(tmp_path / "loud", "--config.log.third_party_info=True")
  assert loud.returncode == 0, loud.stderr
  assert any("checkpoint" in l or "xla_bridge" in l or "event_tracking" in l
             for l in loud.stderr.splitlines() if l.startswith("I")), \
      loud.stderr


def test_score_in_chunks_logs_progress_and_keeps_row_order(monkeypatch):
  """7 candidates in 3 calls of 3 (the last padded with row 0), a progress
  line after each call; the scorer is a stand-in that tags every row."""
  lines = []
  monkeypatch.setattr(monitoring.logging, "info",
                      lambda fmt, *args: lines.append(fmt % args))
  calls = []

  def fake_scorer(generate, spec, mesh):
    def score(gen_params, directions, key_data):
      calls.append(directions.shape)
      tag = directions @ jnp.arange(1.0, 5.0)  # Row i (i * ones(4)) -> 10 i.
      return score_lib.CandidateScores(*(tag + k for k in range(
          len(score_lib.CandidateScores._fields))))
    return score

  monkeypatch.setattr(score_lib, "scorer", fake_scorer)
  rows = np.arange(7, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
  scores = score_lib.score_candidates(None, {}, rows, jax.random.key(0),
                                      spec=None, chunks=3, progress_every_s=0)
  assert calls == [(3, 4)] * 3
  expected = 10.0 * np.arange(7)  # Row i is i * ones(4): tag = 10 i.
  for k, field in enumerate(scores):
    np.testing.assert_array_equal(field, expected + k)
  assert [l.split(" (")[0] for l in lines] == [
      "score: candidates: 3/7", "score: candidates: 6/7",
      "score: candidates: 7/7", "score: candidates: 7/7"], lines
  assert "ETA" in lines[1]


NATIVE = """
import os, sys, ml_collections
from gansseg_jax.infra import runtime
runtime.configure_logging(ml_collections.ConfigDict(
    {{"log": {{"third_party_info": {loud}}}}}))
with runtime.native_stderr_quiet():
  os.write(2, b"native note\\n")
os.write(2, b"after the block\\n")
"""


def test_native_stderr_is_quiet_only_inside_the_block_and_only_by_default():
  env = dict(os.environ, PYTHONPATH=ROOT)
  for loud in (False, True):
    proc = subprocess.run([sys.executable, "-c", NATIVE.format(loud=loud)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "after the block" in proc.stderr
    assert ("native note" in proc.stderr) == loud
