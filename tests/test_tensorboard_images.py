"""The train stage's TensorBoard images, read back with TensorBoard's own
event reader: kept synthetic pairs and hold-out predictions at each hold-out
evaluation, beside the scalars, grouped train/, holdout/, synth/."""
import io
import os

from flax import nnx
import jax
import numpy as np
from PIL import Image
import pytest

import skips  # pylint: disable=g-bad-import-order
import test_train_fixtures as f

skips.import_unless_absent("tensorflow")
event_accumulator = skips.import_unless_absent(
    "tensorboard.backend.event_processing.event_accumulator")

from gansseg_jax.models import unet as unet_lib  # pylint: disable=g-import-not-at-top,g-bad-import-order
from gansseg_jax.train import segmentation  # pylint: disable=g-import-not-at-top
from gansseg_jax.train import summaries  # pylint: disable=g-import-not-at-top

PICTURES = ("synth/kept_pairs", "holdout/predictions")
CELL = f.RESOLUTION + 2  # A cell and the gap after it.


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """(events, final state) of a 6-step run evaluating at steps 0, 3, 6."""
  workdir = str(tmp_path_factory.mktemp("tb"))
  c = f.tiny_config()
  c.train.update(steps=6, decay_steps=(4,), log_every=3, eval_every=3,
                 checkpoint_every=3)
  state = segmentation.train(c, workdir, f.disc_generate, f.DISC_PARAMS,
                             f.background_direction())
  events = event_accumulator.EventAccumulator(
      os.path.join(workdir, "tensorboard", "train"),
      size_guidance={event_accumulator.TENSORS: 0})
  events.Reload()
  return events, state


def picture(events, tag: str, step: int) -> np.ndarray:
  """The PNG of image summary `tag` at `step`, decoded."""
  (event,) = [e for e in events.Tensors(tag) if e.step == step]
  width, height, png = event.tensor_proto.string_val  # tf.summary.image's.
  image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
  assert image.shape[:2] == (int(height), int(width))
  return image


def cells(image: np.ndarray) -> list[list[np.ndarray]]:
  """The picture's cells, [row][column]."""
  rows, cols = (image.shape[0] + 2) // CELL, (image.shape[1] + 2) // CELL
  return [[image[r * CELL:r * CELL + f.RESOLUTION,
                 c * CELL:c * CELL + f.RESOLUTION] for c in range(cols)]
          for r in range(rows)]


def test_pictures_and_scalars_at_every_evaluation_grouped_by_stream(run):
  events, _ = run
  tags = events.Tags()["tensors"]
  assert set(PICTURES) <= set(tags)
  assert {"train/loss", "train/kept_fraction", "holdout/iou",
          "synth/rounds"} <= set(tags)
  for tag in PICTURES:
    assert [e.step for e in events.Tensors(tag)] == [0, 3, 6]
  assert [e.step for e in events.Tensors("holdout/iou")] == [0, 3, 6]
  kept, predicted = (picture(events, tag, 3) for tag in PICTURES)
  assert np.array_equal(kept, predicted[:, :kept.shape[1]])  # The same pairs.


def test_each_row_is_an_image_with_its_mask_and_prediction(run):
  events, _ = run
  for tag, columns in zip(PICTURES, (2, 3)):
    rows = cells(picture(events, tag, 6))
    assert 1 <= len(rows) <= summaries.PREVIEW_SAMPLES
    discs = 0
    for row in rows:
      assert len(row) == columns
      image, mask = row[0].astype(np.float32), row[1][..., 0]
      assert set(np.unique(mask)) <= {0, 255}
      if 0 < mask.mean() < 255:  # Kept samples may have a vanishing disc.
        discs += 1
        # The planted mask is the disc, reddish; the background is bluish.
        redness = image[..., 0] - image[..., 2]
        assert redness[mask == 255].mean() > redness[mask == 0].mean()
    assert discs


def test_predictions_are_the_final_unets_on_the_pictured_images(run):
  events, state = run
  rows = cells(picture(events, "holdout/predictions", 6))
  images = np.stack([row[0] for row in rows]).astype(np.float32) / 127.5 - 1
  abstract = nnx.eval_shape(
      lambda: segmentation.new_unet(f.tiny_config().unet, nnx.Rngs(0)))
  graphdef, _, _ = nnx.split(abstract, nnx.Param, nnx.BatchStat)
  state = jax.device_get(state)
  model = nnx.merge(graphdef, state["params"], state["batch_stats"])
  model.eval()
  expected = np.asarray(jax.jit(
      lambda x: unet_lib.foreground_probability(model(x)))(images))
  shown = np.stack([row[2][..., 0] for row in rows]).astype(np.float32) / 255
  # The pictured images are 8-bit: the inputs differ by up to 1/255.
  np.testing.assert_allclose(shown, expected, atol=0.02)
