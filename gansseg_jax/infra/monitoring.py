"""Metrics and progress: `metrics.jsonl` + TensorBoard events, and ETA lines.

`MetricsWriter` appends one JSON object per call to `workdir/metrics.jsonl`
(always) and writes TensorBoard events through clu's metric writers when the
`tf` extra is installed (clu's summary writer imports tensorflow and
tensorboard). Only process 0 writes; other processes only log. Each row is
sealed (the SHA-256 of its content) and stamped with its stage's config
hash (`run`); a stage's first row replaces that stage's rows of its step and
later (a resumed run's, written before it was stopped, or a forced run's
older ones). `read_metrics` skips a torn last line and refuses an edited
row.

`Progress` logs `desc: done/total (pct) rate/s, ETA h:mm:ss` at most every
`every_s` seconds, for every loop that runs longer than a few seconds; the
rate is smoothed over the last few logged intervals.
"""
import collections
import importlib
import json
import os
import time
from typing import Mapping, Optional

from absl import logging
import jax
import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import optional
from gansseg_jax.infra import runtime
from gansseg_jax.infra import workdir as wd


def _clu_writer(logdir: str):
  """A clu TensorBoard writer, or None when clu's writers cannot be imported.

  Without the `tf` extra (tensorflow or tensorboard not installed) that is
  expected and logged as info; any other import failure is a warning that
  names the module at fault.
  """
  module = "clu.metric_writers"
  try:
    with runtime.native_stderr_quiet():  # TensorFlow's start-up notes.
      metric_writers = importlib.import_module(module)
      return metric_writers.SummaryWriter(logdir)
  except ImportError as e:
    expected = e.name in ("tensorflow", "tensorboard")
    (logging.info if expected else logging.warning)(
        "TensorBoard events off (%s is %s); metrics.jsonl only.", module,
        optional.failure(module, e, optional.TF_EXTRA))
    return None


class MetricsWriter:
  """Scalars of one stage to `metrics.jsonl` and `tensorboard/<stage>/`.

  In TensorBoard a name without a group is put in the stage's
  ('loss' -> 'train/loss'); metrics.jsonl keeps the names as given. Images
  (`write_images`) go to TensorBoard only.
  """

  def __init__(self, workdir: str, stage: str, tensorboard: bool = True):
    self._stage = stage
    self._is_writer = jax.process_index() == 0
    self._jsonl_path = os.path.join(workdir, "metrics.jsonl")
    # The config hash of the stage's run (its .started.json; None outside
    # the runner or for a stage without one), recorded in each row.
    started = wd.read_started(workdir, stage)
    self._run = started.get("config_hash") if started else None
    self._tb = None
    self._first_step: Optional[int] = None  # Of this writer's first row.
    if self._is_writer:
      os.makedirs(workdir, exist_ok=True)
    if self._is_writer and tensorboard:
      self._tb = _clu_writer(os.path.join(workdir, "tensorboard", stage))

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    values = {k: float(np.asarray(v)) for k, v in scalars.items()}
    logging.info("%s step %d: %s", self._stage, step,
                 ", ".join(f"{k}={v:.5g}" for k, v in sorted(values.items())))
    if not self._is_writer:
      return
    record = {"stage": self._stage, "step": int(step), "time": time.time(),
              **values, "run": self._run}
    record[SEAL] = wd.seal_of(record)
    if self._first_step is None:
      self._first_step = int(step)
      self._drop_rows_from(self._first_step)
    fileio.append_line(self._jsonl_path, json.dumps(record) + "\n")
    if self._tb is not None:
      self._tb.write_scalars(int(step), {self.tensorboard_name(k): v
                                         for k, v in values.items()})

  def tensorboard_name(self, name: str) -> str:
    """`name` if it has a group ('holdout/iou'), else '<stage>/<name>'."""
    return name if "/" in name else f"{self._stage}/{name}"

  @property
  def writes_images(self) -> bool:
    """Whether `write_images` writes (TensorBoard is on, process 0)."""
    return self._tb is not None

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """uint8 [k, H, W, 3] pictures to TensorBoard under their own names."""
    if self._tb is not None:
      self._tb.write_images(int(step), images)

  def _drop_rows_from(self, step: int) -> None:
    """Removes this stage's rows of `step` and later (a resumed run
    re-writes the steps after its checkpoint: their rows from the run that
    was stopped go), and a torn last line."""
    if not os.path.lexists(self._jsonl_path):
      return
    rows, torn = read_metrics(self._jsonl_path)
    kept = [r for r in rows if r["stage"] != self._stage or r["step"] < step]
    if torn or len(kept) < len(rows):
      fileio.write_text(self._jsonl_path,
                        "".join(json.dumps(r) + "\n" for r in kept))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.flush()
      self._tb.close()
      self._tb = None


SEAL = wd.SEAL  # A metrics row's field: the SHA-256 of the rest of it.
ROW_FIELDS = ("stage", "step", "time", "run", SEAL)  # A row's, not scalars.


def read_metrics(path: str) -> tuple[list[dict], int]:
  """(rows, torn lines) of a metrics.jsonl.

  A last line cut short by a crash or a full disk is skipped and counted.
  Any other line that is not a row, a row whose seal does not match (edited)
  and, in a file of sealed rows, an unsealed one are a UserError naming the
  line (a file written before rows were sealed is read as it is).
  """
  lines = fileio.read_bytes(path).split(b"\n")
  torn = 1 if lines[-1].strip() else 0  # No newline after the last line.
  rows, numbered = [], []
  for number, line in enumerate(lines[:-1], 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except ValueError:  # Not JSON, or not UTF-8.
      row = None
    if not (isinstance(row, dict) and isinstance(row.get("step"), int)
            and isinstance(row.get("stage"), str)):
      raise errors.UserError(
          f"{path}: line {number} is not a metrics row; delete the file (the "
          "report then leaves out the training curves)")
    rows.append(row)
    numbered.append(number)
  sealed = any(SEAL in row for row in rows)
  for number, row in zip(numbered, rows):
    if sealed and row.get(SEAL) != wd.seal_of(row):
      raise errors.UserError(
          f"{path}: line {number} changed since it was written (its {SEAL} "
          "does not match); delete the file (the report then leaves out the "
          "training curves)")
  return rows, torn


def format_seconds(seconds: float) -> str:
  seconds = max(0, int(round(seconds)))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h:d}:{m:02d}:{s:02d}"


class Progress:
  """Rate and ETA of a loop of `total` units, logged every `every_s` seconds.

  Usage: `p = Progress(total, 'train'); ...; p.update(done); ...; p.close()`.
  The rate is measured over the last `window` logged intervals (about
  `window * every_s` seconds), so one slow interval (a hold-out evaluation,
  a checkpoint) moves the ETA by a fraction and a lasting change of speed
  shows within a minute. Measuring starts at the first `update` call, so
  compilation before it does not count. clu's `periodic_actions.ReportProgress`
  is not used: its rate is the point estimate of the last interval alone,
  which is the swing this smoothing removes.
  """

  def __init__(self, total: int, desc: str, every_s: float = 10.0,
               start: int = 0, clock=time.monotonic, window: int = 6):
    self._total = int(total)
    self._desc = desc
    self._every_s = every_s
    self._clock = clock
    self._done = int(start)
    self._now: Optional[float] = None
    # (time, done) at the first update and at each logged line since.
    self._points = collections.deque(maxlen=max(1, int(window)) + 1)
    self._last_log = -float("inf")

  def rate(self) -> Optional[float]:
    """Units per second over the recent window; None before it can be known."""
    if not self._points:
      return None
    t0, done0 = self._points[0]
    if self._now is None or self._now <= t0 or self._done <= done0:
      return None
    return (self._done - done0) / (self._now - t0)

  def line(self) -> str:
    """The progress line for the current state."""
    pct = 100.0 * self._done / max(self._total, 1)
    text = f"{self._desc}: {self._done}/{self._total} ({pct:.1f}%)"
    rate = self.rate()
    if rate is not None:
      eta = max(self._total - self._done, 0) / rate
      text += f" {rate:.3g}/s, ETA {format_seconds(eta)}"
    return text

  def update(self, done: int) -> None:
    now = self._clock()
    self._now, self._done = now, int(done)
    if not self._points:
      self._points.append((now, self._done))
    if now - self._last_log >= self._every_s or self._done >= self._total:
      self._last_log = now
      if self._points[-1] != (now, self._done):
        self._points.append((now, self._done))
      logging.info("%s", self.line())

  def close(self) -> None:
    logging.info("%s (done)", self.line())
