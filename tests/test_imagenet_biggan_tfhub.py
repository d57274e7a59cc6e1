"""TF-Hub biggan-*/2 conversion on a fabricated module with the real names.

The module is a TF1-format SavedModel (tags []) whose variables carry
deepmind/biggan-128/2's names (BigGAN-PyTorch's TFHub/converter.py reads the
same ones) at a tiny width, and whose `default` signature (z, y, truncation)
is the generator written again here in TF ops with the readings the converter
must discover: SN normalised x / (||x|| + eps) and BN statistics divided by
the accumulation counter, EMA weights.
"""

import numpy as np
import pytest
import skips  # pylint: disable=g-bad-import-order

from gansseg_jax.infra import errors
from gansseg_jax.convert import biggan_tfhub
from gansseg_jax.models import imagenet_biggan


tf = skips.import_unless_absent("tensorflow")
skips.import_unless_absent("tensorflow_hub")
import tf_biggan_ops  # pylint: disable=g-import-not-at-top,g-bad-import-order

TINY = imagenet_biggan.ImageNetBigGANSpec(
    resolution=32, z_dim=20, ch=4, shared_dim=8, n_classes=1000,
    attention_resolution=16, bn_eps=1e-4, output_bn_eps=1e-4)
COUNTER = 3.0
EMA = biggan_tfhub.EMA_SUFFIX


def fake_values(rng):
  """Every variable of the module, raw and EMA copies, plus unused u1s."""
  required, alternatives = biggan_tfhub.expected_variables(TINY, True)
  values = {}
  for name, shape in required.items():
    leaf = name.removesuffix(f"/{EMA}").split("/")[-1]
    if leaf == "accumulation_counter":
      value = np.full(shape, COUNTER)
    elif leaf == "accumulated_var":
      value = COUNTER * rng.uniform(0.5, 1.5, shape)
    elif leaf == "accumulated_mean":
      value = COUNTER * 0.2 * rng.normal(size=shape)
    elif leaf == "gamma" and "attention" in name:
      value = np.full(shape, 0.7)
    elif leaf == "gamma":
      value = 1.0 + 0.1 * rng.normal(size=shape)
    elif leaf in ("b", "beta"):
      value = 0.1 * rng.normal(size=shape)
    elif name.startswith("linear/w"):
      value = rng.normal(size=shape)
    else:  # w, u0
      value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]) or 1)
    values[name] = value.astype(np.float32)
  for name in alternatives:  # Raw copies differ from the EMA ones.
    if not name.endswith(EMA):
      values[name] = values[f"{name}/{EMA}"] + 1.0
  values["Generator/conv_2d/u1"] = np.ones((1, 12), np.float32)
  return values


def tf_generate(z, y, var):
  """The module's generator in TF ops (module docstring's readings)."""
  b = TINY.backbone

  def ema(name):
    return var(f"{name}/{EMA}")

  def sn(scope):
    return tf_biggan_ops.spectral_normalized(ema(f"{scope}/w"),
                                             var(f"{scope}/u0"))

  def normalized(x, scope):
    count = var(f"{scope}/accumulation_counter")
    mean = var(f"{scope}/accumulated_mean") / count
    variance = var(f"{scope}/accumulated_var") / count
    return (x - mean) * tf.math.rsqrt(variance + 1e-4)

  def hyper_bn(x, cond, scope, suffix):
    gamma = 1.0 + tf.matmul(cond, sn(f"{scope}/HyperBN{suffix}/gamma"))
    beta = tf.matmul(cond, sn(f"{scope}/HyperBN{suffix}/beta"))
    x = normalized(x, f"{scope}/CrossReplicaBN{suffix}")
    return x * gamma[:, None, None, :] + beta[:, None, None, :]

  def conv(x, scope, bias=True):
    out = tf.nn.conv2d(x, sn(scope), 1, "SAME")
    return out + ema(f"{scope}/b") if bias else out

  up = tf_biggan_ops.upsample

  chunks = tf.split(z, b.num_blocks + 1, axis=1)
  embedding = tf.matmul(y, ema("linear/w"))
  h = tf.matmul(chunks[0], sn("Generator/G_Z/G_linear")) + ema(
      "Generator/G_Z/G_linear/b")
  h = tf.reshape(h, [-1, 4, 4, b.block_channels[0][0]])
  for i in range(b.num_blocks):
    scope = "Generator/GBlock" + (f"_{i}" if i else "")
    cond = tf.concat([chunks[i + 1], embedding], axis=1)
    x = h
    h = conv(up(tf.nn.relu(hyper_bn(h, cond, scope, ""))), f"{scope}/conv0")
    h = conv(tf.nn.relu(hyper_bn(h, cond, scope, "_1")), f"{scope}/conv1")
    h = h + conv(up(x), f"{scope}/conv_sc")
    if i == b.attention_block:
      h = h + ema("Generator/attention/gamma") * tf_biggan_ops.attention(
          h, lambda x, scope: conv(x, scope, False))
  h = (normalized(h, "Generator/ScaledCrossReplicaBNbn")
       * ema("Generator/ScaledCrossReplicaBN/gamma")
       + ema("Generator/ScaledCrossReplicaBN/beta"))
  return tf.tanh(conv(tf.nn.relu(h), "Generator/conv_2d"))


def write_module(path, values):
  def signatures(var):
    z = tf.compat.v1.placeholder(tf.float32, [None, TINY.z_dim], name="z")
    y = tf.compat.v1.placeholder(tf.float32, [None, TINY.n_classes], name="y")
    truncation = tf.compat.v1.placeholder(tf.float32, [], name="truncation")
    return {"default": ({"z": z, "y": y, "truncation": truncation},
                        {"default": tf_generate(z, y, var)})}
  tf_biggan_ops.save_module(path, values, signatures)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
  values = fake_values(np.random.default_rng(0))
  path = str(tmp_path_factory.mktemp("hub") / "biggan-32")
  write_module(path, values)
  return path, values


def test_module_converted_verified_and_read(module_dir):
  path, values = module_dir
  spec, params, record = biggan_tfhub.convert_module(
      path, verify_batch=3, attention_resolution=16)
  assert spec == TINY
  assert (record["bn_stats"], record["sn_normalize"]) == ("divide", "add")
  assert record["max_abs_diff"] <= biggan_tfhub.VERIFY_TOLERANCE
  assert record["unused"]["Generator/conv_2d/u1"].startswith("second")
  assert "raw weight" in record["unused"]["linear/w"]
  np.testing.assert_array_equal(params["shared"], values[f"linear/w/{EMA}"])
  assert biggan_tfhub.read_tfhub_biggan(path, attention_resolution=16)[0] == (
      TINY)


def test_raw_weights_do_not_reproduce_the_module(module_dir):
  path, _ = module_dir
  with pytest.raises(errors.UserError,
                     match=f"^{path}: no reading .*bn_stats=divide"):
    biggan_tfhub.read_tfhub_biggan(path, use_ema=False, verify_batch=2,
                                   attention_resolution=16)


@pytest.mark.parametrize("change,message", [
    (lambda v: v.pop("Generator/GBlock_1/CrossReplicaBN_1/accumulated_var"),
     "GBlock_1/CrossReplicaBN_1/accumulated_var is missing"),
    (lambda v: v.update({"Generator/extra/w": np.zeros(2, np.float32)}),
     "Generator/extra/w is not part"),
    (lambda v: v.update({"Generator/conv_2d/b/" + EMA:
                         np.zeros(4, np.float32)}),
     "conv_2d/b/ema_b999900 has shape"),
])
def test_bad_variables_name_the_module_and_variable(change, message):
  values = fake_values(np.random.default_rng(1))
  change(values)
  shapes = {k: v.shape for k, v in values.items()}
  with pytest.raises(errors.UserError, match=f"^/hub/biggan: .*{message}"):
    spec = biggan_tfhub.spec_from_shapes(shapes, "/hub/biggan", 16)
    biggan_tfhub.check(spec, shapes, True, "/hub/biggan")


def test_full_size_names_and_shapes():
  """biggan-128/2's layout: 120-d z in 6 chunks, G_ch 96, 1000 x 128 classes."""
  spec = imagenet_biggan.ImageNetBigGANSpec.published(128)
  required, _ = biggan_tfhub.expected_variables(spec, True)
  assert required[f"linear/w/{EMA}"] == (1000, 128)
  assert required[f"Generator/G_Z/G_linear/w/{EMA}"] == (20, 16 * 16 * 96)
  assert required[f"Generator/GBlock_4/HyperBN_1/gamma/w/{EMA}"] == (148, 96)
  assert required[f"Generator/attention/theta/w/{EMA}"] == (1, 1, 192, 24)
  assert required["Generator/ScaledCrossReplicaBNbn/accumulated_var"] == (96,)
  shapes = {**required, **{n: (1,) for n in ("global_step",)}}
  assert biggan_tfhub.spec_from_shapes(
      {k.removesuffix(f"/{EMA}"): v for k, v in shapes.items()}, "m") == spec
  # 256 and 512: 7 and 8 chunks of z (140 / 128), attention at 128 / 64.
  for resolution, chunk, attention, width in ((256, 20, "GBlock_4", 192),
                                              (512, 16, "GBlock_3", 384)):
    spec = imagenet_biggan.ImageNetBigGANSpec.published(resolution)
    required, _ = biggan_tfhub.expected_variables(spec, False)
    assert required["Generator/G_Z/G_linear/w"] == (chunk, 16 * 16 * 96)
    assert required[f"Generator/{attention}/conv1/w"][-1] == width
    assert required["Generator/attention/theta/w"] == (1, 1, width,
                                                       width // 8)
    assert biggan_tfhub.spec_from_shapes(required, "m") == spec
  tiny = {k: v for k, v in fake_values(np.random.default_rng(0)).items()}
  with pytest.raises(errors.UserError, match="sides \\[8, 16, 32\\]"):
    biggan_tfhub.spec_from_shapes({k: v.shape for k, v in tiny.items()}, "m")
