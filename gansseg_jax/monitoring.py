"""Metrics and progress: `metrics.jsonl` + TensorBoard events, and ETA lines.

`MetricsWriter` appends one JSON object per call to `workdir/metrics.jsonl`
(always) and writes TensorBoard events through clu's metric writers when the
`tf` extra is installed (clu's summary writer imports tensorflow and
tensorboard). Only process 0 writes; other processes only log.

`Progress` logs `desc: done/total (pct) rate/s, ETA h:mm:ss` at most every
`every_s` seconds, for every loop that runs longer than a few seconds.
"""
import importlib
import json
import os
import time
from typing import Mapping, Optional

from absl import logging
import jax
import numpy as np

from gansseg_jax import optional


def _clu_writer(logdir: str):
  """A clu TensorBoard writer, or None when clu's writers cannot be imported.

  Without the `tf` extra (tensorflow or tensorboard not installed) that is
  expected and logged as info; any other import failure is a warning that
  names the module at fault.
  """
  module = "clu.metric_writers"
  try:
    metric_writers = importlib.import_module(module)
  except ImportError as e:
    expected = e.name in ("tensorflow", "tensorboard")
    (logging.info if expected else logging.warning)(
        "TensorBoard events off (%s is %s); metrics.jsonl only.", module,
        optional.failure(module, e, optional.TF_EXTRA))
    return None
  return metric_writers.SummaryWriter(logdir)


class MetricsWriter:
  """Scalars of one stage to `metrics.jsonl` and `tensorboard/<stage>/`."""

  def __init__(self, workdir: str, stage: str, tensorboard: bool = True):
    self._stage = stage
    self._is_writer = jax.process_index() == 0
    self._jsonl_path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
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
              **values}
    with open(self._jsonl_path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      self._tb.write_scalars(int(step), values)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.flush()
      self._tb.close()
      self._tb = None


def format_seconds(seconds: float) -> str:
  seconds = max(0, int(round(seconds)))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h:d}:{m:02d}:{s:02d}"


class Progress:
  """Rate and ETA of a loop of `total` units, logged every `every_s` seconds.

  Usage: `p = Progress(total, 'train'); ...; p.update(done); ...; p.close()`.
  The rate is measured from the first `update` call (so compilation in the
  first step does not distort the ETA for long).
  """

  def __init__(self, total: int, desc: str, every_s: float = 10.0,
               start: int = 0, clock=time.monotonic):
    self._total = int(total)
    self._desc = desc
    self._every_s = every_s
    self._clock = clock
    self._t0: Optional[float] = None
    self._done0 = int(start)
    self._done = int(start)
    self._last_log = -float("inf")

  def line(self) -> str:
    """The progress line for the current state."""
    pct = 100.0 * self._done / max(self._total, 1)
    text = f"{self._desc}: {self._done}/{self._total} ({pct:.1f}%)"
    if self._t0 is None:
      return text
    elapsed = self._clock() - self._t0
    counted = self._done - self._done0
    if elapsed > 0 and counted > 0:
      rate = counted / elapsed
      eta = (self._total - self._done) / rate
      text += f" {rate:.3g}/s, ETA {format_seconds(eta)}"
    return text

  def update(self, done: int) -> None:
    now = self._clock()
    if self._t0 is None:
      self._t0, self._done0 = now, int(done)
    self._done = int(done)
    if now - self._last_log >= self._every_s or self._done >= self._total:
      self._last_log = now
      logging.info("%s", self.line())

  def close(self) -> None:
    logging.info("%s (done)", self.line())
