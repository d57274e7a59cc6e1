r"""ImageNet: encode the train split once (E-BigBiGAN latents for saliency runs).

  python -m gansseg_jax.main --config=configs/imagenet.py --workdir=runs/imagenet \
    --config.embed.split=train

Its W/embeddings.npy is what `configs/saliency.py` samples from.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,embed"
  c.embed.dataset = "imagenet2012"
  c.synth.latents = "embeddings"
  c.synth.embedding_noise = 0.0
  return c
