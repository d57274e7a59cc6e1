r"""CUB-200-2011 (paper table 1): E-BigBiGAN latents from CUB train embeddings.

  python -m gansseg_jax.main --config=configs/cub.py --workdir=runs/cub \
    --config.eval.data_dir=$HOME/tensorflow_datasets

Embeddings: the `embed` stage encodes CUB's train split (ReDO split, see the
README's "Reproduce the paper's tables"); latents z = E(I) + 0.2 * N(0, I)
(docs/method.md section 5).
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,embed,discover,score,train,eval,report"
  c.embed.dataset = "cub"
  c.synth.latents = "embeddings"
  c.synth.embedding_noise = 0.2
  c.eval.datasets = "cub"
  return c
