"""The record a stage package declares its stage with (its `spec.py`).

The runner (run/stages.py) plans and runs the stages from these records
alone: what a stage runs, which config sections shape its outputs, which
stages' outputs it reads, and the workdir paths it reads and writes.
"""
import dataclasses
import importlib
from typing import Callable, Sequence

import ml_collections

Paths = Callable[[ml_collections.ConfigDict], Sequence[str]]


def fixed(*paths: str) -> Paths:
  """The same workdir-relative paths whatever the config."""
  return lambda config: paths


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stage:
  """One stage of the pipeline, declared once: what it runs, reads, writes."""
  name: str
  run: str  # "module:function", imported when the stage runs.
  reads: tuple[str, ...]  # Config sections (dotted) that shape its outputs.
  after: tuple[str, ...] = ()  # Stages whose outputs it reads.
  inputs: Paths = fixed()  # Workdir-relative paths it reads.
  outputs: Paths = fixed()  # Workdir-relative paths it writes.
  ignores: tuple[str, ...] = ()  # Dotted fields inside `reads` left unhashed.
  scratch: Paths = fixed()  # Resumable state (checkpoints) it keeps.
  # Finished stages whose recorded outputs it reads besides `inputs`
  # (verified when present, not required).
  verifies: tuple[str, ...] = ()
  # Fingerprints of files outside the workdir it reads (a dataset folder),
  # recorded in its marker: when they change, the stage runs again.
  watches: Callable[[ml_collections.ConfigDict], dict] = lambda config: {}

  def function(self) -> Callable[[ml_collections.ConfigDict, str], None]:
    module, name = self.run.split(":")
    return getattr(importlib.import_module(module), name)
