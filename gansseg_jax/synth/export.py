"""Stage `synth`: synthetic (image, mask) pairs written to disk.

For inspection, or for training a segmenter elsewhere. Candidates are made
exactly as in training (`batch.make_candidates`: G(z), G(z + h), mask rule,
components, size and histogram filters); the filter-passing ones are written
(all of them with `config.export.include_rejected`), until
`config.export.num_pairs` pairs are on disk.

INPUTS (W = workdir):
  W/generator/          via gansseg_jax.convert.load.load_generator.
  the background direction, the embeddings (config.synth.latents=
  'embeddings') and the affine maps (config.synth.mask_rule='affine'), read
  and checked by synth.inputs.load.
OUTPUTS:
  W/<config.export.output_dir>/, written atomically (temp folder, rename):
    images/<row>.png    G(z), RGB, (x + 1) * 127.5 rounded.
    masks/<row>.png     the mask, 8-bit gray, 255 = foreground.
    index.csv           per pair: file, key_index, kept, size_filter,
                        histogram_filter ('pass', 'fail' or 'off'),
                        pruned_pixels (by the components filter; 'off'),
                        foreground_fraction.
    summary.json        counts, rejection counts per filter, and the rules used.

Reproducing a row: its latent is latent.draw(generate, params,
fold_in(stage_key, key_index), (), z_dim, base=sample), with stage_key =
fold_in(key(config.seed), crc32('synth')) and `sample` from
`latents.make_sampler(config.synth, ...)`: the noise, mapped by the
generator's prior where it has one (StyleGAN2's w), then its trailing
class id and noise seed where the generator takes them
(generator_interface/latent.py).

Only process 0 writes; the other processes of a multi-host run return at once
(the stage has no collectives).
"""
import csv
import dataclasses
import functools
import io
import json
import math
import os

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from gansseg_jax.infra import fileio
from gansseg_jax.infra import keys
from gansseg_jax.infra import monitoring
from gansseg_jax.infra.errors import UserError
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import batch as batch_lib
from gansseg_jax.synth import inputs as inputs_lib

STAGE = "synth"
INDEX_COLUMNS = ("file", "key_index", "kept", "size_filter",
                 "histogram_filter", "pruned_pixels", "foreground_fraction")


def _check_export_config(export: ml_collections.ConfigDict) -> None:
  for field in ("num_pairs", "batch_size"):
    value = export[field]
    if not isinstance(value, int) or value < 1:
      raise UserError(f"config.export.{field}: must be an integer >= 1, got "
                      f"{value!r}")
  if not export.max_candidates_factor >= 1:
    raise UserError(f"config.export.max_candidates_factor: must be >= 1, got "
                    f"{export.max_candidates_factor!r}")
  name = export.output_dir
  if not name or os.path.isabs(name) or ".." in name.split(os.sep):
    raise UserError(f"config.export.output_dir: must be a folder name inside "
                    f"the workdir, got {name!r}")


@functools.partial(jax.jit,
                   static_argnames=("generate", "sample_latents", "spec"))
def candidates_for_keys(key, key_indices, generate, gen_params, direction,
                sample_latents, spec, affine_maps):
  """Candidates for latents z_i = sample(fold_in(key, i), 1)[0]."""
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(key_indices)
  z = jax.vmap(lambda k: latent.draw(
      generate, gen_params, k, (), direction.shape[-1], base=sample_latents))(
          keys)
  return batch_lib.make_candidates(z, generate, gen_params, direction, spec,
                                   affine_maps)


def _to_uint8(image: np.ndarray) -> np.ndarray:
  return np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _outcome(passed: bool, enabled: bool) -> str:
  if not enabled:
    return "off"
  return "pass" if passed else "fail"


def _starved_message(written, num_pairs, generated, rejected, factor) -> str:
  worst = max(batch_lib.REJECTING_FILTERS, key=lambda name: rejected[name])
  switch, knob = batch_lib.REJECTING_FILTERS[worst]
  return (f"{switch}: only {written} of {num_pairs} pairs passed the filters "
          f"in {generated} candidates (num_pairs x config.export."
          f"max_candidates_factor={factor}); this filter rejected "
          f"{rejected[worst]}; relax {knob}, turn the filter off, or set "
          f"config.export.include_rejected=True")


class _PairWriter:
  """Writes chosen candidates as PNG pairs into `folder`; tallies outcomes."""

  def __init__(self, folder: str, spec: batch_lib.SynthSpec, num_pairs: int,
               include_rejected: bool):
    self._folder = folder
    self._spec = spec
    self._num_pairs = num_pairs
    self._include_rejected = include_rejected
    self.rows = []
    self.generated = 0
    self.kept = 0
    self.rejected = dict.fromkeys(batch_lib.REJECTING_FILTERS, 0)
    os.makedirs(os.path.join(folder, "images"))
    os.makedirs(os.path.join(folder, "masks"))

  @property
  def done(self) -> bool:
    return len(self.rows) >= self._num_pairs

  def add(self, cand: batch_lib.Candidates, count: int) -> None:
    """Tallies the first `count` candidates (host arrays); writes the chosen."""
    spec = self._spec
    for i in range(count):
      key_index = self.generated + i
      self.rejected["rejected_size"] += int(not cand.size_ok[i])
      self.rejected["rejected_histogram"] += int(not cand.histogram_ok[i])
      self.kept += int(cand.keep[i])
      if self.done or not (cand.keep[i] or self._include_rejected):
        continue
      name = f"{len(self.rows):06d}.png"
      Image.fromarray(_to_uint8(cand.images[i])).save(
          os.path.join(self._folder, "images", name))
      Image.fromarray(cand.masks[i].astype(np.uint8) * 255).save(
          os.path.join(self._folder, "masks", name))
      self.rows.append((
          name, key_index, int(cand.keep[i]),
          _outcome(cand.size_ok[i], spec.size_filter),
          _outcome(cand.histogram_ok[i], spec.histogram_filter),
          int(cand.pruned_pixels[i]) if spec.components_filter else "off",
          f"{float(np.mean(cand.masks[i])):.6f}"))
    self.generated += count

  def write_index(self, config: ml_collections.ConfigDict) -> None:
    """index.csv and summary.json (counts and the rules this run used)."""
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    writer.writerows(self.rows)
    with open(os.path.join(self._folder, "index.csv"), "w") as f:
      f.write(table.getvalue())
    spec = self._spec
    summary = {
        "pairs": len(self.rows), "candidates": self.generated,
        "kept": self.kept, **self.rejected, "seed": config.seed,
        "key": "fold_in(fold_in(key(seed), crc32('synth')), key_index)",
        "include_rejected": self._include_rejected,
        "latents": config.synth.latents,
        **{field.name: getattr(spec, field.name)
           for field in dataclasses.fields(spec)},
    }
    with open(os.path.join(self._folder, "summary.json"), "w") as f:
      f.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes W/<config.export.output_dir>/ (see the module docstring)."""
  export = config.export
  _check_export_config(export)
  if jax.process_index() != 0:
    return
  spec, direction, sample_latents, affine_maps = inputs_lib.load(
      config, workdir)
  # Imported on use: the converter pulls in checkpoint libraries that the
  # rest of the synth package never needs.
  from gansseg_jax.convert import load  # pylint: disable=g-import-not-at-top
  generate, gen_params = load.load_generator(config, workdir)

  key = keys.stage_key(config.seed, STAGE)
  chunk = export.batch_size
  max_candidates = int(math.ceil(export.num_pairs
                                 * export.max_candidates_factor))
  progress = monitoring.Progress(export.num_pairs, "synth: pairs written",
                                 every_s=config.log.progress_every_s)
  destination = os.path.join(workdir, export.output_dir)
  with fileio.atomic_path(destination) as tmp:
    pairs = _PairWriter(tmp, spec, export.num_pairs, export.include_rejected)
    while not pairs.done and pairs.generated < max_candidates:
      start = pairs.generated
      indices = jnp.arange(start, start + chunk, dtype=jnp.uint32)
      cand = jax.device_get(candidates_for_keys(
          key, indices, generate, gen_params, direction, sample_latents, spec,
          affine_maps))
      pairs.add(cand, min(chunk, max_candidates - start))
      progress.update(len(pairs.rows))
    progress.close()
    if not pairs.done:
      raise UserError(_starved_message(
          len(pairs.rows), export.num_pairs, pairs.generated, pairs.rejected,
          export.max_candidates_factor))
    pairs.write_index(config)
  logging.info("synth: wrote %d pairs (%d candidates, %d kept) to %s",
               len(pairs.rows), pairs.generated, pairs.kept, destination)
