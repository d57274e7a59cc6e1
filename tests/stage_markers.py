"""Done-markers for workdirs that tests make by hand."""
import os

from gansseg_jax.run import stages
from gansseg_jax.infra import workdir as wd
from gansseg_jax.infra import fingerprints


def mark_done(workdir, stage_name, config) -> None:
  """The marker stage `stage_name` of `config` writes when it finishes,
  recording those of its outputs that are in `workdir`."""
  workdir = str(workdir)
  stage = stages.BY_NAME[stage_name]
  outputs = [p for p in stage.outputs(config)
             if os.path.exists(os.path.join(workdir, p))]
  wd.write_marker(workdir, stage_name,
                  stages.stage_hash(stage, wd.config_to_dict(config)), {}, 0.0,
                  outputs, fingerprints.record(workdir, outputs))
