"""Flax NNX modules only (no training code, nothing else of ours imported).

biggan.py       BigGAN/BigBiGAN generator, any resolution (docs/method.md s1)
encoder.py      BigBiGAN encoder: ResNet-50 trunk + MLP head (s1, s5)
demo_gan.py     the built-in demo generator
unet.py         the paper's U-Net (s7)
reconstructor.py  the direction-discovery reconstructors (s2)
"""
