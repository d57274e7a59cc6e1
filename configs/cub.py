r"""CUB-200-2011 (paper table 1): E-BigBiGAN latents from CUB train embeddings.

  python -m gansseg_jax.main --config=configs/cub.py --workdir=runs/cub \
    --config.eval.data_dir=$HOME/tensorflow_datasets

Embeddings: the `embed` stage encodes the images of CUB's training split (ReDO
split) in datasets/cub/train/ (a folder, searched recursively; or point
--config.embed.dataset elsewhere, or pass precomputed latents with
--config.embed.source=file, see the README's "Reproduce the paper's tables");
latents z = E(I) + 0.2 * N(0, I) (docs/method.md section 5).
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,embed,discover,score,synth,train,export,eval,report"
  c.embed.dataset = "datasets/cub/train"
  c.synth.latents = "embeddings"
  c.synth.embedding_noise = 0.2
  c.eval.datasets = "cub"
  return c
