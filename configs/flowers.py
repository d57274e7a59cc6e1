r"""Oxford 102 Flowers (paper table 1): own embeddings, `mean_thr` masks, no size filter.

  python -m gansseg_jax.main --config=configs/flowers.py --workdir=runs/flowers \
    --config.eval.data_dir=$HOME/tensorflow_datasets
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,embed,discover,score,synth,train,export,eval,report"
  c.embed.dataset = "datasets/flowers/train"
  c.synth.latents = "embeddings"
  c.synth.embedding_noise = 0.2
  c.synth.mask_rule = "mean_thr"  # docs/method.md section 4: used for Flowers.
  c.synth.size_filter = False  # docs/method.md section 6: not for Flowers.
  c.eval.datasets = "flowers"
  return c
