"""Import-only smoke of one install: run by tools/install_check.py in each venv.

`python install_smoke.py --extras=tf,test,torch` checks what the README
promises for those extras, through gansseg_jax's own entry points:
- always: gansseg_jax and its command line import;
- tf: `import tensorflow_hub` (the real one) and `hub.load` of a tiny TF1-format
  module written here, through `convert.tfhub.opened` from its folder and from
  a .tar.gz, variables and a signature checked against numpy; the TFDS builders
  import and build their info; clu's TensorBoard writer writes an events file;
- no tf: TF-Hub conversion fails with the one-line 'not installed' error and
  metrics fall back to metrics.jsonl;
- torch: `torch_checkpoint.read_state_dict` and `direction_file` read a .pth
  torch wrote;
- export (with its jax2onnx step): a small U-Net through the export stage's
  ONNX writer (jax2onnx), run by onnxruntime at another size than traced,
  matches JAX to 1e-4;
- test: the test extra's modules import.
Prints one JSON line per check and exits 1 when any failed.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

import numpy as np


def check_package(tmp):
  del tmp
  import gansseg_jax  # pylint: disable=g-import-not-at-top,unused-import
  from gansseg_jax import main  # pylint: disable=g-import-not-at-top,unused-import
  return "gansseg_jax and gansseg_jax.main import"


def _write_tiny_module(path, weights):
  """TF1-format SavedModel (tags []): variable Generator/w, `generate`: z @ w."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph = tf.Graph()
  with graph.as_default():
    w = tf.compat.v1.get_variable("Generator/w",
                                  initializer=tf.constant(weights))
    z = tf.compat.v1.placeholder(tf.float32, [None, weights.shape[0]],
                                 name="z")
    out = tf.matmul(z, w)
    signature = tf.compat.v1.saved_model.signature_def_utils
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      builder = tf.compat.v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(session, tags=[], signature_def_map={
          "generate": signature.predict_signature_def({"z": z},
                                                      {"default": out})})
      builder.save()


def check_tfhub(tmp):
  from gansseg_jax.convert import tfhub  # pylint: disable=g-import-not-at-top
  _, hub = tfhub._import_hub()  # pylint: disable=protected-access
  rng = np.random.default_rng(0)
  weights = rng.normal(size=(3, 2)).astype(np.float32)
  z = rng.normal(size=(4, 3)).astype(np.float32)
  folder = os.path.join(tmp, "module")
  _write_tiny_module(folder, weights)
  archive = shutil.make_archive(os.path.join(tmp, "module"), "gztar",
                                root_dir=folder)
  for handle in (folder, archive):
    with tfhub.opened(handle) as module:
      variables = tfhub.read_variables(module)
      out = tfhub.run_signature(module, "generate", z)["default"]
    assert sorted(variables) == ["Generator/w"], sorted(variables)
    np.testing.assert_array_equal(variables["Generator/w"], weights)
    np.testing.assert_allclose(out, z @ weights, rtol=1e-5, atol=1e-6)
  return f"tensorflow_hub {hub.__version__}: hub.load of a folder and a .tar.gz"


def check_tfds(tmp):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from gansseg_jax.data import sources  # pylint: disable=g-import-not-at-top
  names = ("ecssd", "duts_te", "duts_tr", "dut_omron", "flowers")
  for name in names:
    builder = sources._builder_class(name)(  # pylint: disable=protected-access
        data_dir=os.path.join(tmp, "tfds"))
    assert "mask" in builder.info.features, name
  return f"tensorflow_datasets {tfds.__version__}: {len(names)} builders"


def check_clu_writer(tmp):
  from gansseg_jax.infra import monitoring  # pylint: disable=g-import-not-at-top
  writer = monitoring.MetricsWriter(tmp, "smoke")
  writer.write_scalars(1, {"loss": 0.5})
  writer.close()
  events = os.listdir(os.path.join(tmp, "tensorboard", "smoke"))
  assert any(n.startswith("events.out.tfevents") for n in events), events
  return "clu SummaryWriter wrote an events file"


def check_without_tf(tmp):
  from gansseg_jax.infra import errors  # pylint: disable=g-import-not-at-top
  from gansseg_jax.infra import monitoring  # pylint: disable=g-import-not-at-top
  from gansseg_jax.convert import tfhub  # pylint: disable=g-import-not-at-top
  try:
    tfhub._import_hub()  # pylint: disable=protected-access
  except errors.UserError as e:
    assert "which is not installed" in str(e), str(e)
  else:
    raise AssertionError("tensorflow imported without the tf extra")
  writer = monitoring.MetricsWriter(tmp, "smoke")
  writer.write_scalars(1, {"loss": 0.5})
  writer.close()
  assert os.path.exists(os.path.join(tmp, "metrics.jsonl"))
  assert not os.path.exists(os.path.join(tmp, "tensorboard", "smoke"))
  return "no tf: 'not installed' error, metrics.jsonl only"


def check_torch(tmp):
  import torch  # pylint: disable=g-import-not-at-top
  from gansseg_jax.convert import torch_checkpoint  # pylint: disable=g-import-not-at-top
  from gansseg_jax.directions import direction_file  # pylint: disable=g-import-not-at-top
  weights = np.arange(6, dtype=np.float32).reshape(2, 3)
  path = os.path.join(tmp, "state.pth")
  torch.save({"linear.weight": torch.from_numpy(weights)}, path)
  state = torch_checkpoint.read_state_dict(path, "state.pth")
  np.testing.assert_array_equal(state["linear.weight"], weights)
  direction = os.path.join(tmp, "direction.pth")
  torch.save(torch.from_numpy(weights[0]), direction)
  np.testing.assert_array_equal(
      direction_file.load_directions(direction, weights.shape[1]), weights[:1])
  return (f"torch {torch.__version__}: the .pth state dict and direction "
          "it wrote read back")


def check_test_extra(tmp):
  del tmp
  # pylint: disable=g-import-not-at-top,unused-import
  import hypothesis
  import py_sod_metrics
  import pytest
  import skimage
  import xdist
  return f"pytest {pytest.__version__}, xdist, hypothesis, pysodmetrics, skimage"


def check_export(tmp):
  # pylint: disable=g-import-not-at-top
  from flax import nnx
  import jax.numpy as jnp
  import jax2onnx
  import onnx
  import onnxruntime
  from gansseg_jax.export import function
  from gansseg_jax.export import onnx_file
  from gansseg_jax.models import unet
  probabilities = function.model_probabilities(
      unet.UNet(4, bn_momentum=0.9, bn_eps=1e-5, rngs=nnx.Rngs(0)))
  path = os.path.join(tmp, "unet.onnx")
  onnx_file.write(probabilities, path, 23, {"output": {"meaning": "smoke"}},
                  jax2onnx, onnx)
  images = np.random.default_rng(0).uniform(-1, 1, (2, 48, 32, 3)).astype(
      np.float32)
  got = onnx_file.run(onnx_file.session(path, onnxruntime), images)
  difference = float(np.abs(got - np.asarray(probabilities(
      jnp.asarray(images)))).max())
  assert difference <= 1e-4, difference
  return (f"onnxruntime {onnxruntime.__version__} ran jax2onnx's file: "
          f"|ONNX - JAX| {difference:.1e}")


def checks_for(extras):
  checks = [check_package]
  if "tf" in extras:
    checks += [check_tfhub, check_tfds, check_clu_writer]
  else:
    checks.append(check_without_tf)
  if "torch" in extras:
    checks.append(check_torch)
  if "export" in extras:
    checks.append(check_export)
  if "test" in extras:
    checks.append(check_test_extra)
  return checks


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--extras", default="",
                      help="comma-separated extras of this install")
  extras = set(filter(None, parser.parse_args().extras.split(",")))
  failed = 0
  for check in checks_for(extras):
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
      try:
        detail, ok = check(tmp), True
      except Exception as e:  # pylint: disable=broad-except
        detail, ok = f"{type(e).__name__}: {e}", False
        traceback.print_exc()
    failed += not ok
    print(json.dumps({"check": check.__name__[len("check_"):], "ok": ok,
                      "seconds": round(time.time() - start, 1),
                      "detail": detail}), flush=True)
  sys.exit(1 if failed else 0)


if __name__ == "__main__":
  main()
