"""Stages `convert` (checkpoint -> Flax generator) and `embed` (latents)."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage, fixed

CONVERT = Stage(name="convert",
                run="gansseg_jax.convert.stage:run",
                reads=("generator", "convert"),
                outputs=fixed(artifacts.GENERATOR))
EMBED = Stage(name="embed",
              run="gansseg_jax.convert.embed:run",
              reads=("embed",),
              after=("convert",),
              outputs=fixed(artifacts.EMBEDDINGS),
              scratch=fixed(artifacts.EMBEDDINGS_PARTIAL))
STAGES = (CONVERT, EMBED)
