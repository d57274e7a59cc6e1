"""The `train` stage: the U-Net on endless synthetic pairs (docs/method.md §7).

run(config, workdir):
  Inputs:  W/generator/ (through gansseg_jax.convert.load.load_generator)
           and what gansseg_jax.synth.inputs.load_arrays reads: the
           background direction (stage `score`), the embeddings when
           config.synth.latents='embeddings' (stage `embed`), the affine
           maps when config.synth.mask_rule='affine' (stage `score`).
  Before training, the filters' pass rates for the direction are measured
  on config.synth.pass_rate_samples pairs (gansseg_jax.synth.pass_rates);
  below config.train.min_kept_fraction kept by every filter, the stage
  stops with an error naming the filter and the setting to change; when the
  kept masks cover more than config.train.max_border of the image border
  (not objects), it stops with an error naming that field.
  OUTPUTS: W/filter_rates.json (those rates and the filter settings), W/unet/ (orbax: {'params', 'batch_stats'} of the final U-Net, read
           by gansseg_jax.train.load.load_predictor),
           W/checkpoints/train/<step>/ (the last config.train.keep_checkpoints
           training states; a rerun resumes from the latest),
           'train' scalars in W/metrics.jsonl and W/tensorboard/train/
           (loss, kept_fraction, learning_rate, samples_per_s, synth/* with
           synth/rounds and synth/filled_fraction, and
           holdout/{loss,iou,accuracy,samples}).
"""
import os

from absl import logging
import jax
import ml_collections
import numpy as np

from gansseg_jax.infra import fileio
from gansseg_jax.infra import keys
from gansseg_jax.convert import load as convert_load
from gansseg_jax.synth import batch as synth_batch
from gansseg_jax.synth import inputs as synth_inputs
from gansseg_jax.synth import latents as synth_latents
from gansseg_jax.synth import pass_rates
from gansseg_jax.train import load
from gansseg_jax.train import segmentation

def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Trains the U-Net and writes W/unet/ (module docstring)."""
  direction, embeddings, affine_maps = synth_inputs.load_arrays(config,
                                                                workdir)
  generate, gen_params = convert_load.load_generator(config, workdir)
  _check_filters(config, workdir, generate, gen_params, direction, embeddings,
                 affine_maps)
  state = segmentation.train(config, workdir, generate, gen_params, direction,
                             embeddings, affine_maps)
  load.save_unet(workdir, state)


def _check_filters(config: ml_collections.ConfigDict, workdir: str, generate,
                   gen_params, direction: np.ndarray, embeddings,
                   affine_maps) -> None:
  """Measures the pass rates, refuses a starved run, writes the rates."""
  num_samples = config.synth.pass_rate_samples
  if not num_samples:
    return
  key = keys.stage_key(config.seed, "filter_rates")
  sampler = synth_latents.make_sampler(config.synth, config.generator.z_dim,
                                       embeddings)
  spec = synth_batch.SynthSpec.from_config(config.synth)
  rates = pass_rates.measure(key, generate, gen_params, direction, sampler,
                             spec, num_samples, affine_maps)
  logging.info("train: %s of %d pairs.", pass_rates.describe(rates),
               rates.samples)
  pass_rates.check_keep_rate(rates, config.train.min_kept_fraction)
  pass_rates.check_border(rates, config.train.max_border)
  if jax.process_index() == 0:
    fileio.write_json(os.path.join(workdir, pass_rates.RATES_FILE), {
        "rates": rates.as_dict(),
        "settings": pass_rates.filter_settings(config.synth)})
