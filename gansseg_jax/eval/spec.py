"""Stages `eval` (metrics on datasets) and `segment` (your photos)."""
from gansseg_jax.eval import layout
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage

# Fields that choose what eval evaluates (each dataset and predictor has its
# own output file, layout.py) or where data lives: changing them adds
# results instead of invalidating the stage.
SELECTIONS = ("eval.datasets", "eval.predictor", "eval.baselines",
              "eval.data_dir", "eval.manual_dir", "eval.allow_download",
              "eval.baseline_workers", "eval.real")
# Fields that choose what `segment` reads and where it writes: changing them
# re-runs it on the new inputs instead of being refused.
SEGMENT_SELECTIONS = ("segment.input_dir", "segment.recursive",
                      "segment.output_dir")


def _unet_inputs(config):
  """The U-Net when eval runs it (or self-trains from it); nothing for a
  baseline."""
  return ((artifacts.UNET,) if config.eval.predictor in ("unet", "selftrain")
          else ())


def _segment_inputs(config):
  """The U-Net segment runs: W/unet, or the export for the 'onnx' backend."""
  if config.eval.predictor != "unet":
    return ()
  return ((artifacts.EXPORT,) if config.segment.backend == "onnx"
          else (artifacts.UNET,))


EVAL = Stage(name="eval",
             run="gansseg_jax.eval.stage:evaluate",
             reads=("eval", "synth.latents"),
             after=("train",),
             inputs=_unet_inputs,
             outputs=lambda config: layout.output_paths(config.eval),
             ignores=SELECTIONS,
             watches=lambda config: layout.datasets_files(config.eval))
SEGMENT = Stage(name="segment",
                run="gansseg_jax.eval.stage:segment",
                reads=("segment", "eval"),
                after=("train",),
                inputs=_segment_inputs,
                outputs=lambda config: (config.segment.output_dir,),
                ignores=tuple(f for f in SELECTIONS if f != "eval.predictor"))
STAGES = (EVAL, SEGMENT)
