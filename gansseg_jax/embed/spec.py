"""Stage `embed` (a dataset's encoder latents, W/embeddings.npy)."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage, fixed

EMBED = Stage(name="embed",
              run="gansseg_jax.embed.stage:run",
              reads=("embed",),
              after=("convert",),
              outputs=fixed(artifacts.EMBEDDINGS),
              scratch=fixed(artifacts.EMBEDDINGS_PARTIAL))
STAGES = (EMBED,)
