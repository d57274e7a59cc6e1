r"""Saliency benchmarks (paper table 2): ImageNet embeddings, alpha = 0.

Evaluated on ECSSD, DUTS-TE and DUT-OMRON. Needs the ImageNet-train embeddings
from `configs/imagenet.py` (or the authors' .npy) copied to W/embeddings.npy:

  python -m gansseg_jax.main --config=configs/saliency.py --workdir=runs/saliency \
    --config.eval.data_dir=$HOME/tensorflow_datasets
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,embed,discover,score,synth,train,export,eval,report"
  c.embed.dataset = "imagenet2012"
  c.synth.latents = "embeddings"
  c.synth.embedding_noise = 0.0  # docs/method.md section 5: alpha = 0 for ImageNet.
  c.eval.datasets = "ecssd,duts_te,dut_omron"
  return c
