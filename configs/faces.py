r"""A real pretrained GAN on a CPU: the DCGAN of the PyPI package gan-face-generate.

  pip download gan-face-generate==1.1.1 --no-deps -d weights/
  python -m gansseg_jax.main --config=configs/faces.py --workdir=runs/faces \
    --config.generator.checkpoint=weights/gan_face_generate-1.1.1-py3-none-any.whl

(`make weights` runs the first command and checks the wheel's sha256.)
gan-face-generate 1.1.1 (MIT) ships, inside its wheel, the generator of
PyTorch's DCGAN tutorial trained on the synthetic faces of DigiFace-1M: nz
100, ngf 64, 64 px, tanh. The 'dcgan' kind reads it from the wheel itself
with numpy (docs/generators.md); no torch. As in the demo, SeFa proposes
the candidates (the 32 strongest of its 100 directions), appendix-B scoring
picks one, and a small U-Net trains on the pairs. It is evaluated on
procedural scenes with exact masks at 64 px (a sanity check: they are not
faces), plus the PASCAL-S photos when they are in datasets/pascal-s/ of the
checkout. Sizes keep every stage within minutes on 2 CPU cores.
"""
from configs import default
from configs import demo

SIDE = 64  # The generator's output side.


def get_config():
  c = default.get_config()
  c.stages = "convert,discover,score,synth,train,eval,report"
  c.generator.arch = "dcgan"
  c.generator.source = "torch"
  c.generator.checkpoint = ""  # weights/gan_face_generate-1.1.1-py3-none-any.whl.
  c.generator.output_activation = "tanh"
  c.generator.z_dim = 100
  c.generator.resolution = SIDE
  # The paper's histogram rule rejects every sample of this generator (64 of
  # 64 candidates at its top-ranked direction); the authors' keeps 21 of 64.
  c.synth.histogram_rule = "authors"
  c.directions.source = "sefa"
  c.directions.num_directions = 32
  c.score.steps = 100
  c.score.heldout_batches = 2
  c.export.num_pairs = 64
  c.export.include_rejected = True  # The report shows rejected samples too.
  c.synth.max_rounds = 4  # Bounds the generator calls per step.
  c.unet.width = 16
  # Few steps: on a CPU the looped train program takes ~20-30 s a step here
  # (2 cores under load 10-20), against ~1.7 s for its synthesis and U-Net
  # update run as separate programs.
  c.train.steps = 100
  c.train.batch_size = 16
  c.train.decay_steps = (70,)
  c.train.log_every = 25
  c.train.eval_every = 50
  c.train.checkpoint_every = 50
  c.train.holdout_size = 64
  c.eval.datasets = f"scenes:1000:200:{SIDE}"
  c.eval.optional_datasets = f"folder:{demo.PASCAL_S}"
  c.eval.image_size = SIDE
  return c
