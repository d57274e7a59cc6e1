"""Resizing, cropping, padding (docs/method.md s. 7) and batched inference."""
import numpy as np
import pytest

from gansseg_jax.data import example as example_lib
from gansseg_jax.data import preprocess
from gansseg_jax.eval import inference


def test_model_size_keeps_aspect_and_caps_long_side():
  assert preprocess.model_size(37, 53, 128, 1024) == (128, 183)
  assert preprocess.model_size(300, 200, 128, 1024) == (192, 128)
  assert preprocess.model_size(8, 4000, 128, 1024) == (2, 1024)
  assert preprocess.model_size(128, 128, 128, 1024) == (128, 128)


def _affine_on_centres(height, width, source_height, source_width):
  """a*y + b*x + c at the pixel centres of a (height, width) grid, expressed
  in the coordinates of a (source_height, source_width) image."""
  y = (np.arange(height) + 0.5) * source_height / height - 0.5
  x = (np.arange(width) + 0.5) * source_width / width - 0.5
  return (0.01 * y[:, None] + 0.004 * x[None, :] + 0.2).astype(np.float32)


@pytest.mark.parametrize("size", [(37, 53), (301, 451), (129, 97)])
def test_resize_back_to_odd_sizes_is_exact_for_affine_maps(size):
  """Bilinear resampling reproduces affine maps away from the border."""
  height, width = size
  small = preprocess.model_size(height, width, 128, 1024)
  probs = _affine_on_centres(*small, height, width)
  back = preprocess.resize_map(probs, size)
  assert back.shape == size
  expected = _affine_on_centres(height, width, height, width)
  margin = int(np.ceil(max(height / small[0], width / small[1]))) + 1
  inner = (slice(margin, height - margin), slice(margin, width - margin))
  # The map changes by at most 0.01 per pixel, so 1.5e-3 allows 0.15 px of
  # Pillow's resampling approximation; a half-pixel shift (5e-3) fails.
  np.testing.assert_allclose(back[inner], expected[inner], atol=1.5e-3)


def test_resize_map_upsampling_matches_numpy_bilinear():
  """Half-pixel-centre bilinear with edge clamping, written out in numpy."""
  rng = np.random.default_rng(0)
  small = rng.random((5, 7)).astype(np.float32)
  height, width = 13, 22
  ys = np.clip((np.arange(height) + 0.5) * 5 / height - 0.5, 0, 4)
  xs = np.clip((np.arange(width) + 0.5) * 7 / width - 0.5, 0, 6)
  y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
  y1, x1 = np.minimum(y0 + 1, 4), np.minimum(x0 + 1, 6)
  wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
  expected = ((1 - wy) * (1 - wx) * small[np.ix_(y0, x0)]
              + (1 - wy) * wx * small[np.ix_(y0, x1)]
              + wy * (1 - wx) * small[np.ix_(y1, x0)]
              + wy * wx * small[np.ix_(y1, x1)])
  np.testing.assert_allclose(preprocess.resize_map(small, (height, width)),
                             expected, atol=1e-5)


def test_center_crop_resize_moves_mask_and_boxes_together():
  image = np.zeros((60, 100, 3), np.uint8)
  mask = np.zeros((60, 100), bool)
  mask[10:40, 30:50] = True
  image[mask] = 255
  boxes = np.array([[10, 30, 40, 50],    # Inside the crop.
                    [0, 0, 60, 25],      # Partly outside (crop starts at x=20).
                    [0, 0, 10, 10]], np.float32)  # Entirely outside: dropped.
  example = example_lib.Example("a", image, mask, boxes)
  out = preprocess.center_crop_resize(example, 30)
  assert out.image.shape == (30, 30, 3) and out.mask.shape == (30, 30)
  expected_mask = np.zeros((30, 30), bool)
  expected_mask[5:20, 5:15] = True
  np.testing.assert_array_equal(out.mask, expected_mask)
  np.testing.assert_array_equal(out.image[..., 0] > 127, expected_mask)
  np.testing.assert_allclose(out.boxes, [[5, 5, 20, 15], [0, 0, 30, 2.5]])


def test_pad_to_multiple_reflects_bottom_right():
  image = np.arange(5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)
  padded = preprocess.pad_to_multiple(image, 4)
  assert padded.shape == (8, 8, 3)
  np.testing.assert_array_equal(padded[:5, :7], image)
  np.testing.assert_array_equal(
      padded, np.pad(image, ((0, 3), (0, 1), (0, 0)), mode="reflect"))
  assert preprocess.pad_to_multiple(image[:4, :4], 4) is not None


def test_model_input_range():
  image = np.array([[[0, 255, 128]]], np.uint8).repeat(128, 0).repeat(128, 1)
  x = preprocess.model_input(image, 128, 1024)
  np.testing.assert_allclose(x[0, 0], [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)


def brightness(images):
  """A pixel-wise predictor: mean channel value mapped to [0, 1]."""
  return (np.asarray(images).mean(axis=-1) + 1.0) / 2.0


def test_bucketed_predictor_crops_back_each_image():
  rng = np.random.default_rng(1)
  shapes = [(128, 183), (128, 170), (183, 128), (128, 128), (128, 183)]
  calls = []

  def predict(batch):
    calls.append(batch.shape)
    return brightness(batch)

  engine = inference.BucketedPredictor(predict, batch_size=2, pad_multiple=32)
  images = {i: rng.uniform(-1, 1, s + (3,)).astype(np.float32)
            for i, s in enumerate(shapes)}
  results = []
  for i, image in images.items():
    results += engine.submit(i, image)
  results += engine.flush()
  assert sorted(tag for tag, _ in results) == list(range(len(shapes)))
  for tag, probs in results:
    np.testing.assert_allclose(probs, brightness(images[tag]), atol=1e-6)
  # (128,183) and (128,170) share the padded shape (128,192): one full batch
  # of 2, then a partial one; partial batches are padded to a power of two.
  assert sorted(calls) == sorted([(2, 128, 192, 3), (1, 128, 192, 3),
                                  (1, 192, 128, 3), (1, 128, 128, 3)])


def test_bucketed_predictor_checks_output_shape():
  engine = inference.BucketedPredictor(lambda b: b, 1, 16)
  with pytest.raises(ValueError, match="expected"):
    engine.submit(0, np.zeros((16, 16, 3), np.float32))
