r"""ImageNet BigGAN-128 (class-conditional): Voynov & Babenko's comparison GAN.

  python -m gansseg_jax.main --config=configs/biggan_imagenet.py \
    --workdir=runs/biggan_imagenet \
    --config.generator.checkpoint=biggan-128.pth

The checkpoint is a BigGAN-PyTorch generator state dict (ajbrock's
`G_ema.pth`, or the TF-Hub port `biggan-128.pth` its repository links); or
the TF-Hub module itself with --config.generator.source=tfhub
--config.generator.handle=https://tfhub.dev/deepmind/biggan-128/2
(docs/generators.md lists the formats). Latents: z ~ t N(0, 1) cut to [-2, 2]
(t = config.generator.truncation) and one ImageNet class per latent, from
config.generator.classes ('' = all 1000; e.g. '207' or '1,5,9'). Directions
move z only, never the class.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,discover,score,synth,train,export,eval,report"
  c.generator.arch = "biggan_imagenet"
  c.generator.source = "torch"
  c.generator.checkpoint = ""  # BigGAN-PyTorch G_ema.pth / biggan-128.pth.
  c.generator.resolution = 128
  c.generator.z_dim = 120  # 6 chunks of 20, as BigBiGAN.
  c.generator.classes = ""  # All 1000 ImageNet classes.
  c.generator.truncation = 1.0
  c.eval.datasets = "ecssd,duts_te,dut_omron"
  return c
