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
  c.stages = "convert,discover,score,synth,train,export,eval,report"
  c.generator.arch = "dcgan"
  c.generator.source = "torch"
  c.generator.checkpoint = ""  # weights/gan_face_generate-1.1.1-py3-none-any.whl.
  c.generator.output_activation = "tanh"
  c.generator.z_dim = 100
  c.generator.resolution = SIDE
  c.directions.source = "sefa"
  c.directions.num_directions = 32
  # Rank 1 of the shortlist by D_h, the paper's own description of its
  # BigBiGAN choice ("the highest D with a small L"; docs/method.md section 3),
  # as in the demo: the lowest-L_h candidate of this GAN changes colours
  # everywhere, the highest-D_h one lights the face and darkens the rest.
  c.score.order_by = "separation"
  c.score.steps = 100
  c.score.heldout_batches = 2
  c.export.num_pairs = 256  # Kept pairs only: the report shows kept ones.
  # One round of 6 x the batch instead of refilling rounds: the filters keep
  # ~20% of this GAN's pairs (most faces cover over half of the frame), so 96
  # candidates fill 16 slots on average, and with one round the generator
  # runs outside any XLA loop, where XLA:CPU keeps its fast convolutions.
  c.synth.max_rounds = 1
  c.synth.oversample = 6.0
  c.unet.width = 16
  c.train.steps = 300
  c.train.batch_size = 16
  c.train.decay_steps = (200,)
  c.train.log_every = 50
  c.train.eval_every = 100
  c.train.checkpoint_every = 100
  c.train.holdout_size = 64
  c.eval.datasets = f"scenes:1000:200:{SIDE}"
  c.eval.optional_datasets = f"folder:{demo.PASCAL_S}"
  c.eval.image_size = SIDE
  return c
