"""Stage `export`: the trained U-Net as ONNX and a TF SavedModel."""
from gansseg_jax.infra import artifacts
from gansseg_jax.infra.stage_spec import Stage, fixed

STAGE = Stage(name="export",
              run="gansseg_jax.export.stage:run",
              reads=("model_export", "eval.image_size", "eval.max_long_side",
                     "eval.pad_multiple", "segment.threshold"),
              after=("train",),
              inputs=fixed(artifacts.UNET),
              outputs=fixed(artifacts.EXPORT))
