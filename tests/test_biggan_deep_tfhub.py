"""TF-Hub biggan-deep-*/1 conversion on a fabricated module with the real names.

The module is a TF1-format SavedModel (tags []) whose variables carry the
names pytorch-pretrained-biggan's convert_tf_to_pytorch.py reads from
deepmind/biggan-deep-128/1, at a tiny width, and whose batch-norm statistics
are constant graph tensors named as that converter fetches them
(`stack_<n>`, n = 10 i + 1, 3, 6, 8), interleaved with decoy stacks of the
same shapes at the other indices. Its `default` signature (z, y, truncation)
is BigGAN-deep written again here in TF ops (as pytorch-pretrained-biggan's
`BigGAN` computes it), reading the statistics by linear interpolation over
the truncation grid, with SN normalised x / (||x|| + eps) and EMA weights.
"""

import numpy as np
import pytest
import skips  # pylint: disable=g-bad-import-order

from configs import biggan_deep as biggan_deep_config
from gansseg_jax.infra import errors
from gansseg_jax.run import stages
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import biggan_deep_tfhub
from gansseg_jax.convert import biggan_tfhub
from gansseg_jax.convert import load
from gansseg_jax.models import biggan_deep


tf = skips.import_unless_absent("tensorflow")
skips.import_unless_absent("tensorflow_hub")
import tf_biggan_ops  # pylint: disable=g-import-not-at-top,g-bad-import-order

# 64 px: every side's first block has its own width, so the attention's
# side is read from its kernels.
TINY = biggan_deep.BigGANDeepSpec(resolution=64, z_dim=8, ch=4,
                                  n_classes=1000, attention_resolution=16)
EMA = bigbigan_names.EMA_SUFFIX
# The graph tensors pytorch-pretrained-biggan's extract_batch_norm_stats
# fetches, in order: sum(((i*10 + 1, i*10 + 3, i*10 + 6, i*10 + 8) ...), ()).
REFERENCE_STACKS = [f"stack_{n}:0" for i in range(50)
                    for n in (10 * i + 1, 10 * i + 3, 10 * i + 6, 10 * i + 8)]


def fake_values(rng):
  """Every variable of the module, raw and EMA copies, plus an unused u1."""
  required, alternatives = biggan_deep_tfhub.expected_variables(TINY, True)
  values = {}
  for name, shape in required.items():
    leaf = name.removesuffix(f"/{EMA}").split("/")[-1]
    if leaf == "gamma":  # Attention's.
      value = np.full(shape, 0.7)
    elif name.startswith("Generator/BatchNorm/scale"):
      value = 1.0 + 0.1 * rng.normal(size=shape)
    elif leaf in ("b", "offset"):
      value = 0.1 * rng.normal(size=shape)
    elif name.startswith("linear/w"):
      value = rng.normal(size=shape)
    else:  # w, u0
      value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]) or 1)
    values[name] = value.astype(np.float32)
  for name in alternatives:  # Raw copies differ from the EMA ones.
    values[name] = values[f"{name}/{EMA}"] + 1.0
  values["Generator/conv_to_rgb/u1"] = np.ones((1, 16), np.float32)
  return values


def fake_statistics(rng):
  """[(mean, var)] per BN in the module's order, each [n_stats, C]."""
  return [(0.2 * rng.normal(size=(TINY.n_stats, c)),
           rng.uniform(0.5, 1.5, (TINY.n_stats, c)))
          for _, c in biggan_deep_tfhub.statistics_layout(TINY)]


def statistics_graph(stats):
  """The statistics as the module's graph holds them: tf.stack of constant
  rows named stack_<n>, decoys (same shapes, other values) elsewhere."""
  tensors = [t for pair in stats for t in pair]
  wanted = {int(name[len("stack_"):-2]): i
            for i, name in enumerate(REFERENCE_STACKS[:len(tensors)])}
  out = []
  for n in range(max(wanted) + 1):
    value = tensors[wanted.get(n, min(len(tensors) - 1, n // 3))]
    if n not in wanted:
      value = 2.0 * value + 1.0
    stacked = tf.stack([tf.constant(row, tf.float32) for row in value],
                       name=f"stack_{n}")
    assert stacked.name == f"stack_{n}:0"
    if n in wanted:
      out.append(stacked)
  return [tuple(out[i:i + 2]) for i in range(0, len(out), 2)]


def tf_generate(z, y, truncation, var, stats):
  """The module's generator in TF ops (module docstring)."""
  ema = lambda name: var(f"{name}/{EMA}")

  def sn(scope):
    return tf_biggan_ops.spectral_normalized(ema(f"{scope}/w"),
                                             var(f"{scope}/u0"))

  def at_truncation(stack):
    position = truncation * (TINY.n_stats - 1)
    k = tf.minimum(tf.floor(position), TINY.n_stats - 2)
    f = position - k
    k = tf.cast(k, tf.int32)
    return stack[k] * (1.0 - f) + stack[k + 1] * f

  def normalized(x, pair):
    mean, variance = (at_truncation(s) for s in pair)
    return (x - mean) * tf.math.rsqrt(variance + biggan_tfhub.TFHUB_EPS)

  def cond_bn(x, cond, scope, pair):
    gain = 1.0 + tf.matmul(cond, sn(f"{scope}/scale"))
    bias = tf.matmul(cond, sn(f"{scope}/offset"))
    return (normalized(x, pair) * gain[:, None, None, :]
            + bias[:, None, None, :])

  def conv(x, scope, bias=True):
    out = tf.nn.conv2d(x, sn(scope), 1, "SAME")
    return out + ema(f"{scope}/b") if bias else out

  cond = tf.concat([z, tf.matmul(y, ema("linear/w"))], axis=1)
  h = tf.matmul(cond, sn("Generator/GenZ/G_linear")) + ema(
      "Generator/GenZ/G_linear/b")
  h = tf.reshape(h, [-1, 4, 4, TINY.block_layout[0][0]])
  pairs = iter(stats)
  for i, (cin, cout, up) in enumerate(TINY.block_layout):
    if i == TINY.attention_position:
      h = h + ema("Generator/attention/gamma") * tf_biggan_ops.attention(
          h, lambda x, scope: conv(x, scope, False))
    scope = "Generator/GBlock" + (f"_{i}" if i else "")
    x = h
    for k in range(4):
      h = tf.nn.relu(cond_bn(h, cond, scope + ("/BatchNorm_%d" % k if k
                                               else "/BatchNorm"),
                             next(pairs)))
      if k == 1 and up:
        h = tf_biggan_ops.upsample(h)
      h = conv(h, f"{scope}/conv{k}")
    x = x[..., :cout] if cin != cout else x
    h = h + (tf_biggan_ops.upsample(x) if up else x)
  h = (normalized(h, next(pairs)) * ema("Generator/BatchNorm/scale")
       + ema("Generator/BatchNorm/offset"))
  return tf.tanh(conv(tf.nn.relu(h), "Generator/conv_to_rgb")[..., :3])


def write_module(path, values, stats):
  def signatures(var):
    z = tf.compat.v1.placeholder(tf.float32, [None, TINY.z_dim], name="z")
    y = tf.compat.v1.placeholder(tf.float32, [None, TINY.n_classes], name="y")
    t = tf.compat.v1.placeholder(tf.float32, [], name="truncation")
    images = tf_generate(z, y, t, var, statistics_graph(stats))
    return {"default": ({"z": z, "y": y, "truncation": t},
                        {"default": images})}
  tf_biggan_ops.save_module(path, values, signatures)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
  rng = np.random.default_rng(0)
  values, stats = fake_values(rng), fake_statistics(rng)
  path = str(tmp_path_factory.mktemp("hub") / "biggan-deep-64")
  write_module(path, values, stats)
  return path, values, stats


@pytest.fixture(scope="module")
def converted(module_dir):
  return biggan_deep_tfhub.convert_module(module_dir[0], verify_batch=3)


def test_module_converted_verified_and_read(module_dir, converted):
  _, values, stats = module_dir
  spec, params, record = converted
  assert spec == TINY
  assert record["sn_normalize"] == "add"
  assert record["max_abs_diff"] <= biggan_tfhub.VERIFY_TOLERANCE
  assert record["unused"]["Generator/conv_to_rgb/u1"].startswith("second")
  assert "raw weight" in record["unused"]["linear/w"]
  np.testing.assert_array_equal(params["embedding"], values[f"linear/w/{EMA}"])
  np.testing.assert_allclose(params["blocks"][5]["bn3"]["var"], stats[23][1],
                             rtol=1e-6)
  np.testing.assert_allclose(params["out_bn"]["mean"], stats[-1][0],
                             rtol=1e-6)
  assert params["out_conv"]["kernel"].shape == (3, 3, 4, 3)


def test_converted_generator_matches_module_off_the_grid(module_dir,
                                                        converted):
  """t = 0.73 lies halfway between grid points 36 and 37, where the module's
  linear interpolation and the package's mix (models/biggan_deep.py) agree:
  rows other than the verified ones were read right too."""
  path, _, _ = module_dir
  spec, params, _ = converted
  assert biggan_deep.statistics_weights(0.73, spec.n_stats)[:2] == (36, 37)
  z, y = biggan_tfhub.verification_inputs(spec, 2, 0.73)
  module = tf.saved_model.load(path, tags=[])
  reference = module.signatures["default"](
      z=tf.constant(z), y=tf.constant(y), truncation=tf.constant(0.73))
  flax = biggan_deep.make_generate(spec, truncation=0.73)(params, z, y)
  np.testing.assert_allclose(np.asarray(flax),
                             np.asarray(reference["default"]), atol=1e-4)


def test_raw_weights_do_not_reproduce_the_module(module_dir):
  path, _, _ = module_dir
  with pytest.raises(errors.UserError,
                     match=f"^{path}: no reading .*sn_normalize=add"):
    biggan_deep_tfhub.convert_module(path, use_ema=False, verify_batch=2)


def test_module_without_statistics_names_the_tensors(tmp_path):
  values = fake_values(np.random.default_rng(2))

  def signatures(var):
    z = tf.compat.v1.placeholder(tf.float32, [None, TINY.z_dim], name="z")
    return {"default": ({"z": z}, {"default": tf.matmul(
        tf.concat([z, z], 1), var(f"Generator/GenZ/G_linear/w/{EMA}"))})}

  path = str(tmp_path / "no-stats")
  tf_biggan_ops.save_module(path, values, signatures)
  with pytest.raises(errors.UserError,
                     match=f"^{path}: the module's graph lacks the batch-norm "
                     "statistics tensors stack_1:0 .. stack_163:0"):
    biggan_deep_tfhub.convert_module(path)


@pytest.mark.parametrize("change,message", [
    (lambda v: v.pop(f"Generator/GBlock_3/BatchNorm_2/offset/w/{EMA}"),
     "GBlock_3/BatchNorm_2/offset/w/ema_0.9999 is missing"),
    (lambda v: v.update({"Generator/extra/w": np.zeros(2, np.float32)}),
     "Generator/extra/w is not part"),
    (lambda v: v.update({f"Generator/conv_to_rgb/b/{EMA}":
                         np.zeros(3, np.float32)}),
     "conv_to_rgb/b/ema_0.9999 has shape"),
])
def test_bad_variables_name_the_module_and_variable(change, message):
  values = fake_values(np.random.default_rng(1))
  change(values)
  shapes = {k: v.shape for k, v in values.items()}
  with pytest.raises(errors.UserError, match=f"^/hub/deep: .*{message}"):
    spec = biggan_deep_tfhub.spec_from_shapes(shapes, "/hub/deep")
    biggan_deep_tfhub.check(spec, shapes, True, "/hub/deep")


def test_full_size_names_shapes_and_statistics_tensors():
  """biggan-deep-128/1 as pytorch-pretrained-biggan's converter names it:
  10 GBlocks, ch 128, z 128, attention before GBlock_8 (side 64)."""
  spec = biggan_deep.BigGANDeepSpec(resolution=128)
  required, _ = biggan_deep_tfhub.expected_variables(spec, True)
  assert required[f"linear/w/{EMA}"] == (1000, 128)
  assert required[f"Generator/GenZ/G_linear/w/{EMA}"] == (256, 4 * 4 * 16 * 128)
  assert required["Generator/GenZ/G_linear/u0"] == (1, 32768)
  assert required[f"Generator/GBlock_9/BatchNorm_3/scale/w/{EMA}"] == (256, 64)
  assert required[f"Generator/GBlock_9/conv3/w/{EMA}"] == (1, 1, 64, 128)
  assert required[f"Generator/GBlock/conv1/w/{EMA}"] == (3, 3, 512, 512)
  assert required[f"Generator/attention/theta/w/{EMA}"] == (1, 1, 256, 32)
  assert required[f"Generator/attention/gamma/{EMA}"] == ()
  assert required[f"Generator/BatchNorm/offset/{EMA}"] == (128,)
  assert required[f"Generator/conv_to_rgb/w/{EMA}"] == (3, 3, 128, 128)
  assert "Generator/GBlock_10/conv0/b/" + EMA not in required
  assert len(required) == 1 + 3 + 10 * 4 * (2 * 2 + 3) + 4 * 2 + 1 + 2 + 3
  names = biggan_deep_tfhub.statistics_tensors(
      2 * len(biggan_deep_tfhub.statistics_layout(spec)))
  assert names == REFERENCE_STACKS[:82]
  assert biggan_deep_tfhub.spec_from_shapes(
      {k.removesuffix(f"/{EMA}"): v for k, v in required.items()}, "m") == spec
  small = biggan_deep.BigGANDeepSpec(resolution=32, ch=4, z_dim=8,
                                     attention_resolution=8)
  shapes, _ = biggan_deep_tfhub.expected_variables(small, False)
  with pytest.raises(errors.UserError, match="sides \\[4, 8\\]; give "):
    biggan_deep_tfhub.spec_from_shapes(shapes, "m")
  assert biggan_deep_tfhub.spec_from_shapes(shapes, "m", 8) == small


def test_convert_stage_writes_the_verified_generator(module_dir, tmp_path):
  """configs/biggan_deep.py with source 'tfhub': stage convert end to end."""
  path, values, _ = module_dir
  config = biggan_deep_config.get_config()
  config.stages = "convert"
  config.generator.update(source="tfhub", handle=path, resolution=64, z_dim=8)
  stages.run(config, str(tmp_path))
  network, params = load.load_generator(config, str(tmp_path))
  description = load.read_description(str(tmp_path / load.GENERATOR_DIR))
  assert description["spec"] == TINY.to_dict()
  assert description["conversion"]["sn_normalize"] == "add"
  np.testing.assert_array_equal(params["embedding"], values[f"linear/w/{EMA}"])
  assert network.num_classes == 1000 and network.direction_dim == 8
