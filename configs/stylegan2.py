r"""StyleGAN2 on LSUN-Church in W space: the paper's colour-shift direction.

  python -m gansseg_jax.main --config=configs/stylegan2.py \
    --workdir=runs/stylegan2 \
    --config.generator.checkpoint=stylegan2-church-config-f.pkl

The checkpoint is NVlabs' stylegan2-church-config-f.pkl (the original
TensorFlow pickle; PyTorch pickles of stylegan2-ada-pytorch / stylegan3 are
read too) or, with --config.generator.source=rosinality, a rosinality
stylegan2-pytorch .pt (docs/generators.md).
Directions live in W (w = mapping(z), one w for every layer). The direction
the paper shows raises the foreground's red channel rather than lighting it,
so the masks come from the two affine colour maps that scoring fits
(synth.mask_rule 'affine', docs/method.md sections 3-4) instead of the
brightness rule.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,discover,score,synth,train,export,eval,report"
  c.generator.arch = "stylegan2"
  c.generator.source = "pkl"
  c.generator.checkpoint = ""  # stylegan2-church-config-f.pkl.
  c.generator.latent_space = "w"
  c.generator.resolution = 256
  c.generator.z_dim = 512  # The direction space: w_dim.
  c.generator.truncation = 1.0  # psi; 1 = untruncated w.
  c.directions.num_directions = 512  # One per coordinate of w (ortho).
  c.synth.mask_rule = "affine"
  c.eval.datasets = "ecssd,duts_te,dut_omron"
  return c
