"""The one training loop: schedule, finiteness guard, progress, SIGTERM, resume.

Every trainer (the U-Net on synthetic pairs, direction discovery, the demo
GAN, the U-Net on real photos) supplies its step, its state, its periodic
actions and its checkpoint contents in a `Loop`, and `run` steps it from the
latest checkpoint to `total` (docs/architecture.md, "The training loop").
`run` guarantees:

- Schedule. A call of `advance` runs `steps_per_call` steps or fewer: it
  ends at the next step where an action or a checkpoint is due, or at the
  last step (`call_size`), so every steps_per_call acts at the same steps.
  After a call ending at step s the loop waits for it, then runs each
  action whose period divides s (or that is due `at_end` when s is the last
  step), in order, then saves checkpoint s when `checkpoint_every` divides
  it or s is the last step. An action `at_start` runs before the first call
  of a run that starts at step 0.
- Finiteness. `check_finite(state, step, checkpoints)` runs after a call
  with an action or a save due, before them, and before a preemption save:
  the trainer's guard (infra/finite.py keeps a bad update out of the state
  on device) raises its error there, so no checkpoint follows a step it
  refuses.
- Progress. `desc: done/total (pct) rate/s, ETA` lines (monitoring.Progress)
  after every call and a final one.
- Resume. With a `checkpoint_dir` the latest complete checkpoint there is
  restored (a latest one beyond `total` or one that does not fit `abstract`
  is a UserError) and the run goes on after it; the data of a step must be
  a function of the step alone for a resumed run to equal an uninterrupted
  one, which the trainers' steps are.
- Preemption. After each call (but the last) the loop asks whether SIGTERM
  arrived (`StepCheckpoints.stop_requested`, numbered by calls, the same on
  every host); if so it saves the step, waits for the save and raises
  `checkpointing.Preempted` (exit status 143).
"""
import dataclasses
from typing import Any, Callable, Optional, Sequence

from absl import logging
import jax

from gansseg_jax.infra import checkpointing
from gansseg_jax.infra import errors
from gansseg_jax.infra import monitoring

State = Any


@dataclasses.dataclass(frozen=True)
class Every:
  """`action(state, step)` after every `period`-th step (0: never on the way).

  `at_end`: also after the last step; `at_start`: also before the first
  step of a run that starts at step 0.
  """
  period: int
  action: Callable[[State, int], None]
  at_end: bool = True
  at_start: bool = False

  def due(self, step: int, last: bool) -> bool:
    return bool(self.period and step % self.period == 0) or (
        last and self.at_end)


def _no_check(state: State, step: int, checkpoints) -> None:
  del state, step, checkpoints


@dataclasses.dataclass(frozen=True)
class Loop:
  """What one trainer supplies to `run`.

  stage: the name in log lines and messages.
  total: the last step.
  advance: (state, step, count) -> the state after `count` more steps from
    `step`.
  initial: () -> the state of step 0.
  actions: periodic actions (logs, evaluations, samples), run in order.
  steps_per_call: the most steps one `advance` call runs.
  checkpoint_dir: checkpoints and resume (None: neither, nor SIGTERM).
  checkpoint_every: a checkpoint at every such step (0: none on the way)
    and at the last.
  keep_checkpoints: how many checkpoints stay.
  fingerprints: record and check the checkpoints' fingerprints.
  abstract: the restore target (ShapeDtypeStructs or arrays of the state).
  fits: the config fields a checkpoint must fit (in the error message).
  steps_field: the config field of `total` (in the error message).
  check_finite: (state, step, checkpoints) -> None, or the trainer's error.
  to_save: state -> the state to save and go on with (e.g. wall time).
  progress_every_s: seconds between progress lines.
  """
  stage: str
  total: int
  advance: Callable[[State, int, int], State]
  initial: Callable[[], State]
  actions: Sequence[Every] = ()
  steps_per_call: int = 1
  checkpoint_dir: Optional[str] = None
  checkpoint_every: int = 0
  keep_checkpoints: int = 1
  fingerprints: bool = True
  abstract: Any = None
  fits: str = ""
  steps_field: str = ""
  check_finite: Callable[[State, int, Any], None] = _no_check
  to_save: Callable[[State], State] = lambda state: state
  progress_every_s: float = 10.0


def call_size(step: int, steps_per_call: int, total: int,
              periods: Sequence[int]) -> int:
  """Steps of the call that starts after `step`: steps_per_call, or fewer.

  A call ends at the next multiple of a (nonzero) period or at `total`.
  """
  boundary = min([total] + [(step // p + 1) * p for p in periods if p])
  return min(steps_per_call, boundary - step)


def _restore_or_init(loop: Loop, checkpoints) -> tuple[State, int]:
  """(state, step): the latest checkpoint, or `loop.initial()` at step 0."""
  start = None if checkpoints is None else checkpoints.latest_step()
  if start is None:
    return loop.initial(), 0
  if start > loop.total:
    raise errors.UserError(
        f"{loop.steps_field}: {loop.total} is below the latest checkpoint "
        f"({start}) in {checkpoints.directory}")
  try:
    state = checkpoints.restore(start, loop.abstract)
  except (ValueError, KeyError, TypeError) as e:
    raise errors.UserError(
        f"{checkpoints.directory}: checkpoint {start} does not fit "
        f"{loop.fits} ({e}); remove it or use another workdir") from e
  logging.info("%s: resuming from checkpoint %d in %s", loop.stage, start,
               checkpoints.directory)
  return state, start


def run(loop: Loop) -> State:
  """Steps `loop` from its latest checkpoint (or 0) to `loop.total`.

  Returns the final state; raises checkpointing.Preempted after saving when
  SIGTERM stopped it, or the trainer's error from `check_finite`.
  """
  if loop.checkpoint_dir is None:
    return _steps(loop, None)
  with checkpointing.StepCheckpoints(
      loop.checkpoint_dir, loop.keep_checkpoints,
      fingerprints=loop.fingerprints) as checkpoints:
    return _steps(loop, checkpoints)


def _steps(loop: Loop, checkpoints) -> State:
  state, step = _restore_or_init(loop, checkpoints)
  start = step
  if step == 0:
    for every in loop.actions:
      if every.at_start:
        every.action(state, step)
  periods = [every.period for every in loop.actions] + [
      loop.checkpoint_every if checkpoints is not None else 0]
  progress = monitoring.Progress(loop.total, loop.stage,
                                 every_s=loop.progress_every_s, start=step)
  calls = 0
  while step < loop.total:
    count = call_size(step, loop.steps_per_call, loop.total, periods)
    state = loop.advance(state, step, count)
    step += count
    calls += 1
    last = step == loop.total
    # Wait for the call: SIGTERM's handler runs between Python bytecodes, so
    # a loop that queued calls ahead would see it only calls later.
    jax.block_until_ready(state)
    due = [every for every in loop.actions if every.due(step, last)]
    save = checkpoints is not None and (last or bool(
        loop.checkpoint_every and step % loop.checkpoint_every == 0))
    if due or save:
      loop.check_finite(state, step, checkpoints)
    for every in due:
      every.action(state, step)
    if save:
      state = loop.to_save(state)
      checkpoints.save(step, state)
    progress.update(step)
    # The preemption service agrees on a sequence number that grows by one
    # per call (the same on every host), not on a step.
    if (checkpoints is not None and not last
        and checkpoints.stop_requested(start + calls)):
      loop.check_finite(state, step, checkpoints)
      state = loop.to_save(state)
      checkpoints.save(step, state, force=True)
      checkpoints.wait()
      raise checkpointing.Preempted(
          f"{loop.stage}: stopped by SIGTERM after step {step}; checkpoint "
          f"saved in {checkpoints.directory}; run again to resume")
  progress.close()
  return state
