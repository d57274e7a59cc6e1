r"""Training the demo's built-in generator (models/demo_gan.py) on the procedural scenes.

Not a pipeline config: it drives `gansseg_jax.train.gan`, which trains the
DCGAN and exports the EMA generator into the package:

  python -m gansseg_jax.train.gan --config=configs/demo_gan.py \
      --workdir=runs/demo_gan --export_dir=gansseg_jax/assets/demo_generator

Re-running resumes from the latest checkpoint in the workdir. `:tiny` shrinks
everything for a smoke run (`--config=configs/demo_gan.py:tiny`).
"""
import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Initialisation and latents; folded with the step number.
  c.data_seed = 1  # Scene stream: real batch n is scenes [n B, (n + 1) B) of this seed.

  c.model = ml_collections.ConfigDict()
  c.model.z_dim = 32  # Latent size (small, so direction discovery is easy).
  c.model.resolution = 32  # Image side; a power of two >= 8.
  c.model.g_channels = 64  # Generator width at the last upsampling (x2 per level below).
  c.model.d_channels = 64  # Discriminator width at its first convolution (x2 per level).
  c.model.g_norm = "modulated"  # Generator hidden-layer norm: 'batch' (DCGAN), 'pixel' or 'modulated' (pixel norm, gain and bias linear in z).

  c.train = ml_collections.ConfigDict()
  c.train.steps = 16000  # Steps of `d_steps` discriminator updates and one generator update.
  c.train.d_steps = 1  # Discriminator updates per step, each on its own real batch.
  c.train.batch_size = 32  # Real and fake images per step.
  c.train.g_learning_rate = 2e-4  # Adam, generator.
  c.train.d_learning_rate = 4e-4  # Adam, discriminator.
  c.train.adam_b1 = 0.0  # Adam beta1 (both networks).
  c.train.adam_b2 = 0.9  # Adam beta2 (both networks).
  c.train.ema_decay = 0.999  # EMA of generator weights: decay min(this, (1 + s) / (10 + s)).
  c.train.standing_batches = 64  # Batches of the exported batch-norm statistics.
  c.train.log_every = 50  # Steps between metric lines.
  c.train.sample_every = 500  # Steps between sample grids (EMA generator) in workdir/samples/.
  c.train.checkpoint_every = 250  # Steps between checkpoints.
  c.train.keep_checkpoints = 2  # Checkpoints kept.
  c.train.num_samples = 64  # Images in a sample grid (a square number).

  c.log = ml_collections.ConfigDict()
  c.log.progress_every_s = 30.0  # Seconds between progress lines (rate, ETA).

  if variant == "tiny":
    c.model.resolution = 16
    c.model.g_channels = 4
    c.model.d_channels = 4
    c.model.z_dim = 8
    c.model.g_norm = "batch"  # Exercises the standing statistics of the export.
    c.train.steps = 6
    c.train.batch_size = 4
    c.train.log_every = 2
    c.train.sample_every = 3
    c.train.checkpoint_every = 3
    c.train.num_samples = 4
    c.train.standing_batches = 2
    c.log.progress_every_s = 1.0
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return c
