r"""Tiny CPU config for tests and smoke runs: small generator, small U-Net.

  python -m gansseg_jax.main --config=configs/test.py --workdir=/tmp/gansseg_test
"""
from configs import default


def get_config():
  c = default.get_config()
  c.stages = "convert,discover,score,synth,train,eval,report"
  c.generator.source = "random"
  c.generator.resolution = 32
  c.generator.ch = 4
  c.generator.shared_dim = 8
  c.generator.attention_resolution = 0
  c.directions.num_directions = 8
  c.directions.reconstructor = "lenet"
  c.directions.steps = 20
  c.directions.batch_size = 8
  c.directions.checkpoint_every = 10
  c.directions.strip_every = 10
  c.directions.log_every = 10
  c.score.steps = 20
  c.score.heldout_batches = 1
  c.export.num_pairs = 8
  c.synth.pass_rate_samples = 32  # Filter pass rates (score, train): one call.
  c.export.include_rejected = True  # A random generator fails the filters.
  c.unet.width = 4
  c.train.steps = 6
  c.train.batch_size = 8
  c.train.decay_steps = (4,)
  c.train.log_every = 2
  c.train.eval_every = 3
  c.train.checkpoint_every = 3
  c.train.holdout_size = 16
  c.eval.datasets = "scenes:5:8:32"  # Procedural scenes with exact masks.
  c.report.num_samples = 4
  c.report.num_predictions = 4
  c.log.progress_every_s = 1.0
  return c
