"""A thin wrapper around orbax: periodic async checkpoints, resume, SIGTERM.

`StepCheckpoints` keeps the last N checkpoints of a stage in
`workdir/checkpoints/<stage>/<step>/` (docs/architecture.md, "Checkpoints and
runs"): saves are asynchronous (training goes on while the files are written),
a checkpoint appears only when complete (orbax writes to a temporary folder and
renames it), so a run killed at any moment resumes from the latest complete one;
leftover temporary folders are removed on start.

SIGTERM (preemption, `scancel`, `kill`): on one process a handler records it
and the training loop asks `stop_requested(n)` after every step or call of
steps (it waits for each to finish, so the signal stops the run after the
one running when it arrived); on several processes JAX's preemption service
(started by `jax.distributed.initialize`) catches it and orbax agrees on a
common n on all hosts (n must grow by one per call). The loop then saves and
raises `Preempted` (exit status 143).

`save_tree` / `restore_tree`: one pytree in one folder (final params).
"""
import os
import signal
import threading
from typing import Any, Optional

from absl import logging
import jax
import orbax.checkpoint as ocp


# Exit status of a run stopped by SIGTERM after saving: 128 + 15, what a shell
# reports for a process that SIGTERM ended (also when it arrives in a stage
# without checkpoints, where the default action ends the process).
PREEMPTED_EXIT = 128 + signal.SIGTERM


class Preempted(SystemExit):
  """SIGTERM arrived; a checkpoint of the current step was saved.

  Uncaught, the process exits with PREEMPTED_EXIT; `str(e)` is the message.
  """

  def __init__(self, message: str):
    super().__init__(message)
    self.code = PREEMPTED_EXIT


def abstract_like(tree: Any, sharding) -> Any:
  """ShapeDtypeStructs of `tree` placed with `sharding` (restore targets)."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      tree)


class StepCheckpoints:
  """orbax CheckpointManager of one stage: keep N, async saves, SIGTERM.

  Use as a context manager: entering installs the SIGTERM handler (one
  process, main thread), leaving waits for pending saves and restores it.
  """

  def __init__(self, directory: str, keep: int):
    self.directory = directory
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=True,
            cleanup_tmp_directories=True))
    self._sigterm = threading.Event()
    self._previous_handler = None

  def __enter__(self) -> "StepCheckpoints":
    if (jax.process_count() == 1
        and threading.current_thread() is threading.main_thread()):
      self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc_info) -> None:
    try:
      self._manager.wait_until_finished()
      self._manager.close()
    finally:
      if self._previous_handler is not None:
        signal.signal(signal.SIGTERM, self._previous_handler)
        self._previous_handler = None

  def _on_sigterm(self, signum, frame) -> None:
    del signum, frame
    logging.warning("SIGTERM: saving a checkpoint after the current step.")
    self._sigterm.set()

  def latest_step(self) -> Optional[int]:
    """The step of the newest complete checkpoint, or None."""
    return self._manager.latest_step()

  def restore(self, step: int, abstract_state: Any) -> Any:
    """The checkpoint of `step`, placed as `abstract_state`'s shardings say."""
    return self._manager.restore(
        step, args=ocp.args.StandardRestore(abstract_state))

  def save(self, step: int, state: Any, force: bool = False) -> None:
    """Starts an async save of `state` as `step` (no-op if it exists)."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def wait(self) -> None:
    """Blocks until every started save is complete on disk."""
    self._manager.wait_until_finished()

  def stop_requested(self, step: int) -> bool:
    """True once SIGTERM arrived (all hosts agree on the same `step`).

    `step` is a sequence number that grows by one per call (every host
    calls with the same numbers): the preemption service picks the one
    after the largest any host has reached.
    """
    if jax.process_count() > 1:
      return self._manager.reached_preemption(step)
    return self._sigterm.is_set()


def save_tree(path: str, tree: Any) -> None:
  """Writes `tree` to the folder `path` (atomic: orbax renames when done).

  A relative `path` is taken from the current directory (orbax itself
  accepts only absolute ones).
  """
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.abspath(path), tree, force=True)
    checkpointer.wait_until_finished()


def restore_tree(path: str, abstract_tree: Any) -> Any:
  """The tree `save_tree` wrote, shaped and placed as `abstract_tree`."""
  with ocp.StandardCheckpointer() as checkpointer:
    return checkpointer.restore(os.path.abspath(path), abstract_tree)
