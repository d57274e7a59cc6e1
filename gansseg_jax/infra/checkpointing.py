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

Each complete checkpoint gets its fingerprints (infra/fingerprints.py) in
`<stage>/<step>.files.json` (written by process 0 once the save is complete:
at the next save, `wait` or exit), and `restore` checks them first: a
checkpoint whose files changed is an error naming the file, never loaded and
never silently skipped for an older one. A checkpoint without fingerprints
(saved before they were recorded, or the run was killed between orbax's
commit and the record) is restored with one warning line. The record also
holds the run that saved it (`run`: the runner's W/stages/<stage>.started.json,
config hash and values) and a seal, so the runner resumes a checkpoint only
under the config that saved it (gansseg_jax/run/stages.py, `_check_saved_by`).

`save_tree` / `restore_tree`: one pytree in one folder (final params).
"""
import json
import os
import signal
import threading
from typing import Any, Optional

from absl import logging
import jax
import orbax.checkpoint as ocp

from gansseg_jax.infra import errors
from gansseg_jax.infra import fileio
from gansseg_jax.infra import workdir as wd
from gansseg_jax.infra import fingerprints

FINGERPRINTS_SUFFIX = ".files.json"  # <step>.files.json beside <step>/.


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


def fingerprints_path(directory: str, step: int) -> str:
  return os.path.join(directory, f"{step}{FINGERPRINTS_SUFFIX}")


def saved_steps(directory: str) -> list[int]:
  """Steps of the complete checkpoints in `directory` (orbax's step folders)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory)
                if name.isdigit() and os.path.isdir(os.path.join(directory,
                                                                 name)))


def _recorded_steps(directory: str) -> set[int]:
  """Steps that have a `<step>.files.json` in `directory`."""
  names = [name[:-len(FINGERPRINTS_SUFFIX)] for name in os.listdir(directory)
           if name.endswith(FINGERPRINTS_SUFFIX)]
  return {int(name) for name in names if name.isdigit()}


def _run_of(directory: str) -> Optional[dict]:
  """The record of the run saving into W/checkpoints/<stage>: the runner's
  W/stages/<stage>.started.json (config hash and values, seed included),
  or None outside a workdir's checkpoints folder."""
  parent = os.path.dirname(os.path.normpath(directory))
  if os.path.basename(parent) != "checkpoints":
    return None
  return wd.read_started(os.path.dirname(parent),
                         os.path.basename(os.path.normpath(directory)))


def record_fingerprints(directory: str, step: int) -> None:
  """Writes `<step>.files.json`: the fingerprints of checkpoint `step` and
  the run that saved it (`_run_of`)."""
  wd.write_sealed(fingerprints_path(directory, step),
                  {"algorithm": fingerprints.ALGORITHM,
                   "files": fingerprints.record(directory, [str(step)]),
                   "run": _run_of(directory)})


def _manifest(directory: str, step: int) -> Optional[dict]:
  """`<step>.files.json`, or None when there is none; UserError if it is
  unreadable or not a manifest."""
  path = fingerprints_path(directory, step)
  if not os.path.lexists(path):
    return None
  step_dir = os.path.join(directory, str(step))
  try:
    manifest = json.loads(fileio.read_text(path))
  except (OSError, ValueError) as e:
    manifest, why = None, fileio.why(e)
  else:
    why = wd.record_shape_problem(manifest)
    run = manifest.get("run") if isinstance(manifest, dict) else None
    if not why and run is not None:
      why = wd.record_shape_problem(run)
    if not why and manifest.get(wd.SEAL) not in (None, wd.seal_of(manifest)):
      why = f"changed since it was written: its {wd.SEAL} does not match"
  if why or "files" not in manifest:
    raise errors.UserError(
        f"{path}: not a checkpoint's record ({why or 'no files'}); delete "
        f"it and {step_dir} to resume from the checkpoint before")
  return manifest


def saved_by(directory: str, step: int) -> Optional[dict]:
  """The run record (`_run_of`) of checkpoint `step`: None when it has no
  manifest or one written before runs were recorded."""
  manifest = _manifest(directory, step)
  return None if manifest is None else manifest.get("run")


def verify(directory: str, step: int) -> bool:
  """UserError naming the file when checkpoint `step` is not as saved.

  The stage is the folder's name (W/checkpoints/<stage>). A checkpoint
  without fingerprints passes with a warning (module docstring): False.
  """
  stage = os.path.basename(os.path.normpath(directory))
  step_dir = os.path.join(directory, str(step))
  manifest = _manifest(directory, step)
  if manifest is None:
    logging.warning("%s: no fingerprints (saved before they were recorded, or "
                    "killed as the save completed); restored unverified",
                    step_dir)
    return False
  problem = fingerprints.first_problem(directory, [str(step)],
                                       manifest["files"])
  if problem:
    name, what = problem
    raise errors.UserError(
        f"{os.path.join(directory, name)}: {what} (checkpoint of step {step} "
        f"saved by stage '{stage}'); delete {step_dir} to resume from the one "
        f"before, or start over with --config.stages={stage} "
        "--config.force=True")
  return True


def verify_latest(directory: str) -> None:
  """`verify` of the checkpoint a resumed run restores (none: nothing)."""
  steps = saved_steps(directory)
  if steps:
    verify(directory, steps[-1])


def abstract_like(tree: Any, sharding) -> Any:
  """ShapeDtypeStructs of `tree` placed with `sharding` (restore targets)."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      tree)


class StepCheckpoints:
  """orbax CheckpointManager of one stage: keep N, async saves, SIGTERM.

  Use as a context manager: entering installs the SIGTERM handler (one
  process, main thread), leaving waits for pending saves and restores it.
  `fingerprints=False` neither records nor checks `<step>.files.json` (the
  demo GAN's W/checkpoints/ holds step folders only).
  """

  def __init__(self, directory: str, keep: int, fingerprints: bool = True):
    self.directory = directory
    self._fingerprints = fingerprints
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=True,
            cleanup_tmp_directories=True))
    self._sigterm = threading.Event()
    self._previous_handler = None
    self._unrecorded: list[int] = []  # Saved steps without fingerprints yet.

  def __enter__(self) -> "StepCheckpoints":
    if (jax.process_count() == 1
        and threading.current_thread() is threading.main_thread()):
      self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc_info) -> None:
    try:
      self.wait()
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
    """The checkpoint of `step`, placed as `abstract_state`'s shardings say.

    Its fingerprints are checked first (`verify`); one without them that
    orbax cannot read is a UserError naming it.
    """
    verified = not self._fingerprints or verify(self.directory, step)
    try:
      return self._manager.restore(
          step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:  # pylint: disable=broad-except
      if verified:
        raise
      # Unverified: damage shows only as orbax's or TensorStore's error.
      step_dir = os.path.join(self.directory, str(step))
      raise errors.UserError(
          f"{step_dir}: unreadable ({type(e).__name__}: "
          f"{str(e).splitlines()[0] if str(e) else ''}); delete it to resume "
          "from the checkpoint before") from e

  def save(self, step: int, state: Any, force: bool = False) -> None:
    """Starts an async save of `state` as `step` (no-op if it exists)."""
    if step in self._manager.all_steps():
      return
    self.wait()  # orbax's save waits for the previous one too.
    self._manager.save(step, args=ocp.args.StandardSave(state), force=force)
    self._unrecorded.append(step)

  def wait(self) -> None:
    """Blocks until every started save is complete on disk; fingerprints them.

    Process 0 records each newly complete checkpoint and drops the records
    of those orbax removed (keep N).
    """
    self._manager.wait_until_finished()
    steps, self._unrecorded = self._unrecorded, []
    if jax.process_index() != 0 or not self._fingerprints:
      return
    kept = saved_steps(self.directory)
    for step in steps:
      if step in kept:
        record_fingerprints(self.directory, step)
    for step in _recorded_steps(self.directory) - set(kept):
      os.remove(fingerprints_path(self.directory, step))

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
