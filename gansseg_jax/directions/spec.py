"""Stages `discover` (candidate directions) and `score` (appendix B)."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage, fixed


def _discover_inputs(config):
  """The generator, unless the candidates come from a file."""
  return () if config.directions.source == "file" else (artifacts.GENERATOR,)


DISCOVER = Stage(name="discover",
                 run="gansseg_jax.directions.stage:discover",
                 reads=("directions",),
                 after=("convert",),
                 inputs=_discover_inputs,
                 outputs=fixed(artifacts.DIRECTIONS),
                 scratch=fixed(artifacts.DISCOVER_CHECKPOINTS))
SCORE = Stage(name="score",
              run="gansseg_jax.directions.stage:score",
              reads=("score",),
              after=("discover",),
              inputs=fixed(artifacts.GENERATOR, artifacts.DIRECTIONS),
              outputs=fixed(artifacts.RANKING_CSV, artifacts.RANKING_MD,
                            artifacts.STRIPS, artifacts.BG_DIRECTION,
                            artifacts.BG_AFFINE))
STAGES = (DISCOVER, SCORE)
