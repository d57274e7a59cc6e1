"""What every stage that computes on devices or saves state builds on.

Below the stage packages (directions/, train/, ...) and above nothing of the
project but errors.py and fileio.py: a stage package imports these, never
another stage package, for its mesh, checkpoints or finite-step guard.

Modules:
  sharding       the 'data' device mesh, global-batch checks, multi-host help.
  checkpointing  orbax CheckpointManager wrapper: async, keep N, SIGTERM;
                 single-tree save / restore (final params).
  finite         the on-device check that an update is finite, and the
                 select that keeps the old state when it is not.
"""
