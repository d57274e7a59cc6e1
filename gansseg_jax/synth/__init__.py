"""On-device mask synthesis: latents -> G(z), G(z+h) -> masks -> filters.

Modules (docs/method.md sections 3-6):
  affine   the two affine colour maps of section 3 and their pixel classes.
  latents  latent samplers: the prior N(0, I) or stored encoder embeddings.
  masks    mask rules: 'lighting', 'mean_thr', 'affine'.
  filters  size, histogram and connected-components filters (jitted, vmappable).
  batch    `synthesize`: oversample, filter, compact to a fixed-size batch;
           `StarvationGuard` for the training loop.
  inputs   the workdir files synthesis reads (direction, embeddings, maps).
  export   the `synth` stage: N (image, mask) pairs as PNG files + index.csv.
"""
