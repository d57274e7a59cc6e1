"""The export stage: W/export/unet.onnx and W/export/saved_model/, each run in
its own runtime (onnxruntime, TensorFlow) on real photos at a batch size and
an image size other than the stage's own check, against the JAX predictor
that eval and segment use; segment's 'onnx' backend against its 'jax' one;
and the one-line error when the extra is missing."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

import file_listing
import photos
import skips  # pylint: disable=g-bad-import-order
import stage_markers

onnxruntime = skips.import_unless_absent("onnxruntime")
skips.import_unless_absent("jax2onnx")
tf = skips.import_unless_absent("tensorflow")

from configs import test as test_config  # pylint: disable=g-import-not-at-top,g-bad-import-order
from gansseg_jax.eval import segment as segment_lib  # pylint: disable=g-import-not-at-top
from gansseg_jax.eval import stage as eval_stage  # pylint: disable=g-import-not-at-top
from gansseg_jax.export import stage as export_stage  # pylint: disable=g-import-not-at-top
from gansseg_jax.train import load  # pylint: disable=g-import-not-at-top

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4


def save_random_unet(workdir: str, config) -> None:
  """W/unet: configs/test.py's U-Net with random weights (normal, 1.5 /
  sqrt(fan-in): probabilities spread over (0, 1) on photos) and non-trivial
  BatchNorm statistics."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from gansseg_jax.train import segmentation  # pylint: disable=g-import-not-at-top
  abstract = nnx.eval_shape(
      lambda: segmentation.new_unet(config.unet, nnx.Rngs(0)))
  _, params, stats = nnx.split(abstract, nnx.Param, nnx.BatchStat)
  rng = np.random.default_rng(0)
  params = jax.tree.map(
      lambda leaf: (1.5 * rng.standard_normal(leaf.shape) / np.sqrt(
          np.prod(leaf.shape[:-1]) if leaf.ndim > 1 else 1.0)
                    ).astype(leaf.dtype),
      nnx.to_pure_dict(params))
  stats = jax.tree_util.tree_map_with_path(
      lambda path, leaf: (rng.uniform(0.5, 2.0, leaf.shape)
                          if "var" in jax.tree_util.keystr(path)
                          else rng.uniform(-0.2, 0.2, leaf.shape)
                          ).astype(leaf.dtype),
      nnx.to_pure_dict(stats))
  load.save_unet(workdir, {"params": params, "batch_stats": stats})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """(config, workdir) after the export stage of a random test-size U-Net."""
  workdir = str(tmp_path_factory.mktemp("export"))
  config = test_config.get_config()
  save_random_unet(workdir, config)
  export_stage.run(config, workdir)
  return config, workdir


def model_inputs(indices, height: int, width: int) -> np.ndarray:
  """Photos resized to height x width, in [-1, 1], as one batch."""
  return np.stack([
      np.asarray(Image.fromarray(photos.photo(i)).resize((width, height),
                                                         Image.BILINEAR),
                 np.float32) / 127.5 - 1.0 for i in indices])


def test_the_folder_holds_both_exports_and_their_description(exported):
  config, workdir = exported
  folder = os.path.join(workdir, "export")
  assert sorted(os.listdir(folder)) == ["metadata.json", "saved_model",
                                        "unet.onnx"]
  metadata = json.load(open(os.path.join(folder, "metadata.json")))
  assert metadata["input"]["layout"] == "NHWC"
  assert metadata["input"]["range"] == [-1.0, 1.0]
  assert "P(foreground)" in metadata["output"]["meaning"]
  assert metadata["preprocessing"]["shorter_side"] == config.eval.image_size
  assert metadata["preprocessing"]["pad_multiple"] == config.eval.pad_multiple
  assert max(metadata["check"]["largest_difference"].values()) <= TOLERANCE
  import onnx  # pylint: disable=g-import-not-at-top
  model = onnx.load(os.path.join(folder, "unet.onnx"))
  props = {p.key: p.value for p in model.metadata_props}
  embedded = json.loads(props["gansseg_jax"])
  assert embedded["preprocessing"] == metadata["preprocessing"]
  dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
  assert dims == ["batch", "height", "width", ""]
  in_saved_model = json.load(open(os.path.join(
      folder, "saved_model", "assets.extra", "metadata.json")))
  assert in_saved_model["input"] == metadata["input"]


def test_onnx_in_onnxruntime_matches_jax_on_photos(exported):
  config, workdir = exported
  images = model_inputs([0, 1, 5], 48, 80)  # The stage checked 2 x 128 x 144.
  session = onnxruntime.InferenceSession(
      os.path.join(workdir, "export", "unet.onnx"),
      providers=["CPUExecutionProvider"])
  (probs,) = session.run(None, {"images": images})
  expected = np.asarray(load.load_predictor(config, workdir)(images))
  assert probs.shape == expected.shape == (3, 48, 80)
  assert 0.05 < expected.std()  # Not a constant map.
  np.testing.assert_allclose(probs, expected, rtol=0, atol=TOLERANCE)


def test_saved_model_in_tensorflow_matches_jax_on_photos(exported):
  config, workdir = exported
  images = model_inputs([2, 3, 4, 6, 7], 96, 64)
  serve = tf.saved_model.load(
      os.path.join(workdir, "export", "saved_model")).signatures[
          "serving_default"]
  probs = serve(images=tf.constant(images))["probabilities"].numpy()
  expected = np.asarray(load.load_predictor(config, workdir)(images))
  assert probs.shape == expected.shape == (5, 96, 64)
  np.testing.assert_allclose(probs, expected, rtol=0, atol=TOLERANCE)


def test_segment_with_the_onnx_backend_matches_jax(exported, tmp_path):
  config, workdir = exported
  paths = photos.write_photos(str(tmp_path / "photos"), 5)
  config.segment.input_dir = str(tmp_path / "photos")
  inputs, _ = segment_lib.collect_inputs(config.segment.input_dir, False)
  maps = {}
  for backend in ("jax", "onnx"):
    config.segment.backend = backend
    config.segment.output_dir = f"segment_{backend}"
    eval_stage.segment(config, workdir)
    predict = eval_stage._segment_predictor(config, workdir)  # pylint: disable=protected-access
    maps[backend] = {path: probs for path, _, _, probs in
                     segment_lib.probability_maps(
                         predict, inputs, config,
                         {"unreadable": [], "too_small": []})}
  assert sorted(maps["onnx"]) == sorted(paths)
  for path in paths:
    assert maps["onnx"][path].shape == photos.photo(
        paths.index(path)).shape[:2]
    np.testing.assert_allclose(maps["onnx"][path], maps["jax"][path],
                               rtol=0, atol=TOLERANCE)
    stem = os.path.splitext(os.path.basename(path))[0]
    pngs = [np.asarray(Image.open(os.path.join(
        workdir, f"segment_{b}", stem + "_prob.png")), np.int16)
            for b in ("jax", "onnx")]
    assert np.abs(pngs[0] - pngs[1]).max() <= 1  # 8-bit rounding.


def test_without_the_converter_the_stage_is_one_error_line(exported, tmp_path):
  """jax2onnx shadowed by a package that is 'not installed' on import."""
  _, workdir = exported
  shadow = tmp_path / "shadow" / "jax2onnx"
  shadow.mkdir(parents=True)
  (shadow / "__init__.py").write_text(
      "raise ModuleNotFoundError(\"No module named 'jax2onnx'\", "
      "name='jax2onnx')\n")
  fresh = tmp_path / "w"
  shutil.copytree(os.path.join(workdir, "unet"), fresh / "unet")
  stage_markers.mark_done(fresh, "train", test_config.get_config())
  before = file_listing.listing(fresh)
  env = dict(os.environ,
             PYTHONPATH=os.pathsep.join([str(tmp_path / "shadow"), ROOT]))
  proc = subprocess.run(
      [sys.executable, "-m", "gansseg_jax.main", "--config=configs/test.py",
       f"--workdir={fresh}", "--config.stages=export"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert errors == [
      "error: stage 'export' needs jax2onnx, which is not installed (pip "
      "install -e '.[export]' && pip install --no-deps jax2onnx==0.17.1)"]
  assert file_listing.listing(fresh) == before  # Nothing written.


def test_the_error_names_setup_pys_pin():
  from gansseg_jax.infra import optional  # pylint: disable=g-import-not-at-top
  setup = open(os.path.join(ROOT, "setup.py")).read()
  assert f'JAX2ONNX = "{optional.JAX2ONNX_PIN}"' in setup


DOCS = open(os.path.join(ROOT, "docs", "export.md")).read()
SNIPPET = re.compile(r"<!-- snippet: (\w+) -->\n```python\n(.*?)```", re.DOTALL)
SNIPPETS = dict(SNIPPET.findall(DOCS))


def test_the_docs_have_both_snippets_in_plain_python():
  assert set(SNIPPETS) == {"onnx", "tensorflow"}
  for code in SNIPPETS.values():
    assert "gansseg" not in code and "jax" not in code
    assert len(code.splitlines()) <= 20


@pytest.fixture(scope="module")
def segment_probabilities(exported, tmp_path_factory):
  """(photo folder, {file name: segment's probabilities}) of 20 photos."""
  config, workdir = exported
  folder = str(tmp_path_factory.mktemp("docs_photos"))
  photos.write_photos(folder, 20)
  inputs, _ = segment_lib.collect_inputs(folder, False)
  predict = load.load_predictor(config, workdir)
  maps = {os.path.basename(path): probs for path, _, _, probs in
          segment_lib.probability_maps(predict, inputs, config,
                                       {"unreadable": [], "too_small": []})}
  assert len(maps) == 20
  return folder, maps


@pytest.mark.parametrize("name", ["onnx", "tensorflow"])
def test_docs_snippet_matches_segment_on_20_photos(name, exported,
                                                  segment_probabilities,
                                                  tmp_path):
  _, workdir = exported
  folder, expected = segment_probabilities
  script = tmp_path / f"segment_{name}.py"
  script.write_text(SNIPPETS[name])
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run(
      [sys.executable, str(script), os.path.join(workdir, "export"), folder,
       str(tmp_path / "masks")],
      cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for file_name, probs in expected.items():
    stem = os.path.splitext(file_name)[0]
    got = np.load(tmp_path / "masks" / f"{stem}.npy")
    assert got.shape == probs.shape
    np.testing.assert_allclose(got, probs, rtol=0, atol=TOLERANCE)
    mask = np.asarray(Image.open(tmp_path / "masks" / f"{stem}_mask.png"))
    np.testing.assert_array_equal(mask > 0, got > 0.5)
