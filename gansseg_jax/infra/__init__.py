"""What every stage that computes on devices or saves state builds on.

Below the stage packages (directions/, train/, ...) and the runner (run/),
above nothing of the project: a stage package imports these, never another
stage package, for its mesh, checkpoints, records or finite-step guard.

Modules:
  errors         UserError -> one "error:" line and exit 2.
  fileio         atomic writes (a temporary name, then a rename).
  optional       optional dependencies imported with an error naming the fix.
  workdir        config.json, done-markers, config hashes: the workdir's
                 records that stages and the runner share.
  monitoring     metrics.jsonl and TensorBoard writers, progress lines.
  runtime        log filtering, jax.distributed start, the device log line.
  machine        the one-line machine description of logs and benchmarks.
  config_files   config files from any cwd (the CLI, benchmarks, tests).
  fingerprints   sizes and SHA-256 of a stage's files.
  artifacts      every file and folder a stage writes in the workdir, named
                 once.
  keys           a stage's PRNG key: the seed with its name folded in.
  sharding       the 'data' device mesh, global-batch checks, multi-host help.
  checkpointing  orbax CheckpointManager wrapper: async, keep N, SIGTERM;
                 single-tree save / restore (final params).
  finite         the on-device check that an update is finite, and the
                 select that keeps the old state when it is not.
"""
