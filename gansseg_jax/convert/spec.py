"""Stage `convert` (checkpoint -> Flax generator)."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage, fixed

CONVERT = Stage(name="convert",
                run="gansseg_jax.convert.stage:run",
                reads=("generator", "convert"),
                outputs=fixed(artifacts.GENERATOR))
STAGES = (CONVERT,)
