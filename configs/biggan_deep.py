r"""BigGAN-deep 128 (class-conditional ImageNet).

  python -m gansseg_jax.main --config=configs/biggan_deep.py \
    --workdir=runs/biggan_deep \
    --config.generator.checkpoint=biggan-deep-128

The checkpoint is a pytorch-pretrained-biggan model: the folder holding its
pytorch_model.bin and config.json (docs/generators.md). Or read the TF-Hub
module: --config.generator.source=tfhub
--config.generator.handle=https://tfhub.dev/deepmind/biggan-deep-128/1 Latents: z ~ t N(0, 1)
cut to [-2, 2] and one ImageNet class per latent (config.generator.classes,
'' = all); t = config.generator.truncation also chooses the network's BN
statistics. Directions move z only, never the class.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,discover,score,synth,train,export,eval,report"
  c.generator.arch = "biggan_deep"
  c.generator.source = "torch"
  c.generator.checkpoint = ""  # Folder of pytorch_model.bin + config.json.
  c.generator.resolution = 128
  c.generator.z_dim = 128  # Not chunked; the class embedding is as wide.
  c.generator.classes = ""
  c.generator.truncation = 1.0
  c.directions.num_directions = 128
  c.eval.datasets = "ecssd,duts_te,dut_omron"
  return c
