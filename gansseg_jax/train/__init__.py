"""Training the segmentation U-Net on synthetic pairs (docs/method.md section 7).

The mesh, checkpoints and finite-step guard it uses live in gansseg_jax/infra/.

Modules:
  holdout        the fixed synthetic hold-out set and its loss / IoU / accuracy.
  segmentation   the fused jitted step (synthesis + U-Net + Adam) and the loop.
  stage          the `train` stage: W/ inputs -> W/unet/.
  load           `load_predictor(config, workdir)`: the trained U-Net, jitted.
  gan            training the demo's small GAN (a separate tool, not a stage).
"""
