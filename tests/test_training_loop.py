"""infra/training_loop.py on a counter: schedule, resume, finiteness, SIGTERM."""
import os
import signal

import jax.numpy as jnp
import pytest

from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import errors
from gansseg_jax.infra import training_loop


def counter_loop(tmp_path, total, events, **fields):
  """A loop whose state counts its steps; `events` records what ran when."""

  def advance(state, step, count):
    events.append(("call", step, count))
    return {"step": state["step"] + count}

  def initial():
    events.append(("initial",))
    return {"step": jnp.zeros((), jnp.int32)}

  def action(name):
    return lambda state, step: events.append((name, step, int(state["step"])))

  defaults = dict(
      stage="count", total=total, advance=advance, initial=initial,
      actions=(training_loop.Every(4, action("log")),
               training_loop.Every(5, action("eval"), at_start=True),
               training_loop.Every(3, action("strips"), at_end=False)),
      steps_per_call=4, checkpoint_dir=str(tmp_path / "checkpoints"),
      checkpoint_every=6, keep_checkpoints=5,
      abstract={"step": jnp.zeros((), jnp.int32)}, fits="the counter",
      steps_field="total", progress_every_s=1000.0)
  return training_loop.Loop(**{**defaults, **fields})


def test_calls_end_at_every_due_step_and_actions_run_in_order(tmp_path):
  events = []
  state = training_loop.run(counter_loop(tmp_path, 10, events))
  assert int(state["step"]) == 10
  assert events == [
      ("initial",), ("eval", 0, 0),
      ("call", 0, 3), ("strips", 3, 3),
      ("call", 3, 1), ("log", 4, 4),
      ("call", 4, 1), ("eval", 5, 5),
      ("call", 5, 1), ("strips", 6, 6),
      ("call", 6, 2), ("log", 8, 8),
      ("call", 8, 1), ("strips", 9, 9),
      ("call", 9, 1), ("log", 10, 10), ("eval", 10, 10)]
  assert checkpointing.saved_steps(str(tmp_path / "checkpoints")) == [6, 10]


def test_call_size_stops_at_the_next_period_or_the_end():
  assert [training_loop.call_size(s, 3, 10, [4, 5, 0, 6])
          for s in (0, 3, 4, 5, 6, 8, 9)] == [3, 1, 1, 1, 2, 2, 1]


def test_a_run_resumes_from_its_latest_checkpoint(tmp_path):
  training_loop.run(counter_loop(tmp_path, 6, []))
  events = []
  state = training_loop.run(counter_loop(tmp_path, 8, events))
  assert int(state["step"]) == 8
  assert events[0] == ("call", 6, 2)  # Neither `initial` nor the step-0 eval.
  with pytest.raises(errors.UserError,
                     match=r"total: 7 is below the latest checkpoint \(8\)"):
    training_loop.run(counter_loop(tmp_path, 7, []))


def test_the_finiteness_check_runs_before_actions_and_saves(tmp_path):

  def check_finite(state, step, checkpoints):
    del state, checkpoints
    if step == 6:
      raise FloatingPointError("step 6")

  events = []
  with pytest.raises(FloatingPointError, match="step 6"):
    training_loop.run(counter_loop(tmp_path, 10, events,
                                   check_finite=check_finite))
  assert ("strips", 6, 6) not in events
  assert checkpointing.saved_steps(str(tmp_path / "checkpoints")) == []


def test_sigterm_saves_the_step_and_raises_preempted(tmp_path):

  def stop_at_4(state, step):
    del state
    if step == 4:
      os.kill(os.getpid(), signal.SIGTERM)

  loop = counter_loop(tmp_path, 10, [],
                      actions=(training_loop.Every(1, stop_at_4),))
  with pytest.raises(checkpointing.Preempted) as stop:
    training_loop.run(loop)
  assert stop.value.code == checkpointing.PREEMPTED_EXIT
  assert str(stop.value) == (
      f"count: stopped by SIGTERM after step 4; checkpoint saved in "
      f"{tmp_path / 'checkpoints'}; run again to resume")
  assert checkpointing.saved_steps(str(tmp_path / "checkpoints")) == [4]
