"""Stage `synth`: synthetic pairs written to inspect (export.py)."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage
from gansseg_jax.synth import inputs


def pair_inputs(config):
  """The generator and what mask synthesis reads (direction, embeddings,
  maps): the inputs of every stage that makes pairs."""
  return (artifacts.GENERATOR,) + inputs.input_paths(config)


STAGE = Stage(name="synth",
              run="gansseg_jax.synth.export:run",
              reads=("synth", "export"),
              after=("score", "embed"),
              inputs=pair_inputs,
              outputs=lambda config: (config.export.output_dir,),
              ignores=("synth.pass_rate_samples",))
