"""Stage `report`: one page of everything the run made."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage, fixed

STAGE = Stage(name="report",
              run="gansseg_jax.report.stage:run",
              reads=("report",),
              after=("score", "train", "eval"),
              outputs=fixed(artifacts.REPORT_HTML, artifacts.REPORT_MD),
              verifies=("score", "synth", "train", "eval"))
