"""The runner: a run planned from (config, workdir records), then executed.

Above the stage packages (convert/, directions/, synth/, train/, eval/,
report/), which it calls through the STAGES table; main.py is a thin shell
over it (flags -> config -> plan -> execute).

Modules:
  stages          the stage table (name, function, config sections, inputs,
                  outputs), planning and execution.
  workdir_inputs  the recorded fingerprints a stage's inputs are checked
                  against while planning.
  lock            one run per workdir (an OS lock on W/.lock).
  config_checks   every config field's range, files and device counts,
                  checked before anything is written.
  recorded_config a later run with the same config file keeps the fields
                  earlier runs set by hand (W/config_source.json).
"""
