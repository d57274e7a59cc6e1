"""Stage `train`: the U-Net on endless synthetic pairs (stage.py)."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage, fixed
from gansseg_jax.synth import spec as synth_spec


def _outputs(config):
  """The U-Net, and the filters' pass rates when they are measured."""
  return (artifacts.UNET,) + ((artifacts.FILTER_RATES,)
                              if config.synth.pass_rate_samples else ())


STAGE = Stage(name="train",
              run="gansseg_jax.train.stage:run",
              reads=("synth", "unet", "train"),
              after=("score", "embed"),
              inputs=synth_spec.pair_inputs,
              outputs=_outputs,
              ignores=("train.steps_per_call", "synth.pass_rate_samples",
                       "train.min_kept_fraction", "train.max_border"),
              scratch=fixed(artifacts.TRAIN_CHECKPOINTS))
