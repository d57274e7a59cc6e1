r"""Real portraits: a CelebA DCGAN, scored on CelebAMask-HQ photos it never saw.

  make weights      # weights/generateme-0.1.2-py3-none-any.whl (sha256-checked)
  python -m gansseg_jax.main --config=configs/celeba.py --workdir=runs/celeba

The generator is the one inside the wheel of the PyPI package generateme
0.1.2: PyTorch's DCGAN tutorial generator trained on CelebA (nz 100, ngf 64,
64 px, tanh), read from the wheel with numpy by the 'dcgan' kind. As in
configs/faces.py, SeFa proposes 32 candidate directions and appendix-B
scoring picks one (no index or sign chosen by hand), among candidates whose
kept masks also fill half of the central quarter (config.score.min_centre:
a portrait's face does). The U-Net trains on the (G(z), G(z + h)) pairs
with the holes of each synthetic mask filled (config.synth.fill_holes), each
image relit and recoloured at random (config.train.photometric_augment) and
each pair shifted by up to 35% of the side (config.train.shift_augment),
then self-trains, with the same augmentations, on the unlabelled photos of
the first half of the CelebAMask-HQ mini set (predictor 'selftrain'). None
of these is in the paper; experiments/ablation_celeba.py measured each
(docs/method.md section 10). All of it is evaluated on the second half
(sorted by name) of that set, in datasets/celebamask-hq-mini/ of the
checkout (images/NAME.jpg, labels/NAME.png class-id maps), for three
targets (face, head, person), beside the U-Net before self-training, the
centre prior, wCtr* and a supervised ceiling (the same U-Net trained on the
first half's real masks). Nothing trains on the second half:
config.eval.real.dataset (the first half) is checked disjoint from
config.eval.datasets.
"""
import os

from configs import default  # pylint: disable=unused-import  (tests find pipeline configs by it)
from configs import faces

WHEEL = "weights/generateme-0.1.2-py3-none-any.whl"
# <checkout>/datasets/celebamask-hq-mini/{images,labels} (not shipped).
CELEBAMASK = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "datasets", "celebamask-hq-mini")
TARGETS = ("face", "head", "person")
# The training photos: the first half, no target (self-training reads no
# mask; the supervised ceiling takes the target of the dataset it is scored on).
TRAIN_HALF = f"folder:{CELEBAMASK}/images:{CELEBAMASK}/labels:part=1/2"


def portraits(target: str, part: str) -> str:
  """The dataset entry of one target on one half of the mini set."""
  return (f"folder:{CELEBAMASK}/images:{CELEBAMASK}/labels:classes={target}"
          f":part={part}")


def get_config():
  c = faces.get_config()  # The same DCGAN kind, sizes and schedule.
  c.generator.checkpoint = WHEEL
  # ~90% of this GAN's pairs pass the filters (faces.py: ~20%), so one round
  # of 2 x the batch fills it.
  c.synth.oversample = 2.0
  c.synth.fill_holes = True  # Solid faces: eyes, nostrils, mouth kept in.
  # A direction lighting a small patch (seed 1: 27% of the centre) is not a
  # face; the face direction's masks fill 79% of it.
  c.score.min_centre = 0.5
  # The GAN lights skin from its own light; real portraits are lit from any
  # side and frame the face higher: relight and shift the pairs.
  c.train.photometric_augment = 1.0
  c.train.shift_augment = 0.35
  c.eval.datasets = ",".join(portraits(t, "2/2") for t in TARGETS)
  c.eval.optional_datasets = ""
  c.eval.predictor = "selftrain"
  c.eval.baselines = "unet,centre_prior,wctr,supervised"
  c.eval.real.dataset = TRAIN_HALF
  c.eval.real.steps = 300
  c.eval.real.photometric_augment = 1.0
  c.eval.real.shift_augment = 0.35
  return c
