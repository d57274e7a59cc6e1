"""TF-Hub conversion, end to end, on a fabricated BigBiGAN module (no network).

The test writes its own TF1-format SavedModel with exactly the manifest's
generator variable names (tiny widths, random values), an encoder under names
the converter has never seen, `generate` and `encode` signatures implemented
independently in TF ops, and loads it the way the converter loads TF-Hub
modules (`hub.load(dir, tags=[])`). The full-size names and shapes are checked
against tests/bigbigan_generator_manifest.txt without allocating anything.

TensorFlow and tensorflow-hub are imported for real: the tests skip only when
their distributions are not installed; an installed one that fails to import
(e.g. tensorflow-hub without pkg_resources) fails them.
"""
import hashlib
import os
import shutil

import jax
import numpy as np
import pytest
import skips  # pylint: disable=g-bad-import-order
from PIL import Image

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.embed import stage as embed
from gansseg_jax.convert import load
from gansseg_jax.convert import spectral_norm
from gansseg_jax.convert import stage
from gansseg_jax.convert import tfhub
from gansseg_jax.data import images as images_lib
from gansseg_jax.models import biggan



tf = skips.import_unless_absent("tensorflow")
hub = skips.import_unless_absent("tensorflow_hub")
import tf_biggan_ops  # pylint: disable=g-import-not-at-top,g-bad-import-order

MANIFEST = os.path.join(os.path.dirname(__file__),
                        "bigbigan_generator_manifest.txt")
FULL = biggan.BigGANSpec(resolution=128, z_dim=120, ch=96, shared_dim=128,
                         attention_resolution=64, bn_eps=1e-4)
TINY = biggan.BigGANSpec(resolution=32, z_dim=24, ch=4, shared_dim=8,
                         attention_resolution=16, bn_eps=1e-4)
WRAPPER = "GenEncWrapper/"
COUNTER = 3.0  # The fake module's BN statistics are sums over 3 batches.
ENC_WIDTH, ENC_BLOCKS, ENC_HIDDEN, ENC_SIZE = 2, (1, 1, 1, 1), 16, 32
ENC_EPS = 1e-4
EXTRAS = {  # Variables that must land on the unused list.
    "GenEncWrapper/Generator/GBlock/conv0/u1": (1, 144),
    "GenEncWrapper/Discriminator/linear/w": (4, 1),
    "global_step": (),
}


def config_for(handle: str, **convert):
  c = default.get_config()
  g = c.generator
  g.source, g.handle = "tfhub", handle
  g.resolution, g.z_dim, g.ch, g.shared_dim = 32, 24, 4, 8
  g.attention_resolution = 16
  c.convert.verify_batch = 2
  c.convert.update(convert)
  c.embed.image_size = ENC_SIZE
  c.embed.batch_size = 2
  c.embed.output = "z_mean"
  c.log.progress_every_s = 1000.0
  return c


def test_manifest_is_the_converter_mapping_at_full_size():
  with open(MANIFEST) as f:
    lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
  assert lines == bigbigan_names.manifest_lines(FULL)
  assert len(lines) == 198
  shapes = {l.split(" ", 1)[0]: l.split(" ", 1)[1] for l in lines}
  assert shapes["Generator/GenZ/G_linear/w/ema_0.9999"] == "[20, 24576]"
  assert shapes["Generator/GBlock_4/BatchNorm_1/scale/w"] == "[148, 96]"
  assert shapes["Generator/attention/o_conv/w"] == "[1, 1, 96, 192]"
  assert shapes["Generator/linear/w"] == "[1, 128]"


def full_shapes(use_ema):
  required, optional = bigbigan_names.expected_variables(FULL, use_ema)
  shapes = dict(required)
  shapes.update({name: (1,) for name in optional})  # Shapes of unused: any.
  return shapes


def test_check_names_every_kind_of_bad_variable():
  shapes = full_shapes(True)
  unused = bigbigan_names.check(FULL, shapes, True, "where")
  assert unused["Generator/conv_2d/w"].startswith("raw weight")
  with_u1 = dict(shapes, **{"Generator/GBlock/conv0/u1": (1, 13824)})
  assert "u0" in bigbigan_names.check(FULL, with_u1, True, "where")[
      "Generator/GBlock/conv0/u1"]

  missing = dict(shapes)
  del missing["Generator/GBlock_2/conv_sc/u0"]
  with pytest.raises(errors.UserError, match="GBlock_2/conv_sc/u0 is missing"):
    bigbigan_names.check(FULL, missing, True, "where")
  wrong = dict(shapes, **{"Generator/attention/g/w/ema_0.9999": (1, 1, 192, 95)})
  with pytest.raises(errors.UserError, match=r"attention/g/w/ema_0.9999 has shape"):
    bigbigan_names.check(FULL, wrong, True, "where")
  # Size-1 axes do not count: [C] == [1, 1, 1, C].
  squeezable = dict(shapes, **{"Generator/conv_2d/b/ema_0.9999": (1, 1, 1, 3)})
  bigbigan_names.check(FULL, squeezable, True, "where")
  extra = dict(shapes, **{"Generator/GBlock/conv3/w": (3, 3, 4, 4)})
  with pytest.raises(errors.UserError, match="GBlock/conv3/w .* not mapped"):
    bigbigan_names.check(FULL, extra, True, "where")


def test_split_scopes():
  names = {"M/Generator/a": 0, "M/Encoder/b/w": 0, "M/Discriminator/c": 0,
           "global_step": 0}
  gen, enc, unused = tfhub.split_scopes(names, "h")
  assert gen == {"Generator/a": "M/Generator/a"}
  assert enc == {"Encoder/b/w": "M/Encoder/b/w"}
  assert set(unused) == {"M/Discriminator/c", "global_step"}
  with pytest.raises(errors.UserError, match="M/Other/x is in no known scope"):
    tfhub.split_scopes(dict(names, **{"M/Other/x": 0}), "h")


# ---------------------------------------------------------------- the module


def fake_generator_values(rng):
  """{generator-relative name: value} for TINY (raw and EMA copies differ)."""
  values = {}
  for line in bigbigan_names.manifest_lines(TINY):
    name, shape = line.split(" ", 1)
    shape = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
    leaf = name.replace("/" + bigbigan_names.EMA_SUFFIX, "").rsplit("/", 1)[1]
    if leaf == "accumulation_counter":
      value = np.full(shape, COUNTER)
    elif leaf == "accumulated_mean":
      value = rng.normal(0, 0.3, shape) * COUNTER
    elif leaf == "accumulated_var":
      value = rng.uniform(0.5, 1.5, shape) * COUNTER
    elif leaf == "gamma":
      value = rng.uniform(0.3, 0.7, shape)
    elif leaf == "scale" and name.startswith("Generator/BatchNorm/"):
      value = 1 + 0.1 * rng.normal(size=shape)
    elif leaf in ("b", "offset"):
      value = 0.1 * rng.normal(size=shape)
    else:
      value = rng.normal(size=shape)
    values[name] = value.astype(np.float32)
  return values


def fake_encoder_values(rng):
  """Encoder variables under names the converter has not seen; v2 ResNet."""
  values = {}

  def bn(scope, c):
    values[f"{scope}/gamma"] = 1 + 0.1 * rng.normal(size=c)
    values[f"{scope}/beta"] = 0.1 * rng.normal(size=c)
    values[f"{scope}/moving_mean"] = 0.1 * rng.normal(size=c)
    values[f"{scope}/moving_variance"] = rng.uniform(0.5, 1.5, c)

  def conv(scope, k, cin, cout):
    values[f"{scope}/w"] = rng.normal(0, (k * k * cin) ** -0.5,
                                      (k, k, cin, cout))

  conv("Encoder/stem_conv", 7, 3, ENC_WIDTH)
  cin = ENC_WIDTH
  for g, count in enumerate(ENC_BLOCKS):
    mid, cout = ENC_WIDTH * 2 ** g, 4 * ENC_WIDTH * 2 ** g
    for u in range(count):
      scope = f"Encoder/block_group_{g}/block_{u}"
      bn(f"{scope}/preact_bn", cin)
      conv(f"{scope}/conv_0", 1, cin, mid)
      bn(f"{scope}/bn_0", mid)
      conv(f"{scope}/conv_1", 3, mid, mid)
      bn(f"{scope}/bn_1", mid)
      conv(f"{scope}/conv_2", 1, mid, cout)
      if u == 0:
        conv(f"{scope}/shortcut_conv", 1, cin, cout)
      cin = cout
  bn("Encoder/final_bn", cin)
  bn("Encoder/bn_crelu", cin)
  for i, (a, b) in enumerate(((2 * cin, ENC_HIDDEN),
                              (ENC_HIDDEN, 2 * TINY.z_dim))):
    values[f"Encoder/head/linear_{i}/w"] = rng.normal(0, a ** -0.5, (a, b))
    values[f"Encoder/head/linear_{i}/b"] = 0.1 * rng.normal(size=b)
  return {k: v.astype(np.float32) for k, v in values.items()}


def tf_generate(z, var, spec):
  """BigBiGAN's generator in TF ops: SN from u0 in the graph ('add' normalize),
  BN statistics divided by the counter, EMA weights."""
  def ema(name):
    return var(f"{name}/{bigbigan_names.EMA_SUFFIX}")

  def sn(scope):
    return tf_biggan_ops.spectral_normalized(ema(f"{scope}/w"),
                                             var(f"{scope}/u0"))

  def stats(scope):
    count = var(f"{scope}/accumulation_counter")
    return (var(f"{scope}/accumulated_mean") / count,
            var(f"{scope}/accumulated_var") / count)

  def hyper_bn(x, cond, scope):
    gamma = 1.0 + tf.matmul(cond, sn(f"{scope}/scale"))
    beta = tf.matmul(cond, sn(f"{scope}/offset"))
    mean, variance = stats(scope)
    x = (x - mean) * tf.math.rsqrt(variance + 1e-4)
    return x * gamma[:, None, None, :] + beta[:, None, None, :]

  def conv(x, scope, bias=True):
    y = tf.nn.conv2d(x, sn(scope), 1, "SAME")
    return y + ema(f"{scope}/b") if bias else y

  up = tf_biggan_ops.upsample

  chunks = tf.split(z, spec.num_blocks + 1, axis=1)
  one_hot = tf.ones_like(z[:, :1])  # The single class of BigBiGAN.
  embedding = tf.matmul(one_hot, ema("Generator/linear/w"))
  h = tf.matmul(chunks[0], sn("Generator/GenZ/G_linear")) + ema(
      "Generator/GenZ/G_linear/b")
  h = tf.reshape(h, [-1, 4, 4, spec.block_channels[0][0]])
  for i in range(spec.num_blocks):
    scope = "Generator/GBlock" + (f"_{i}" if i else "")
    cond = tf.concat([chunks[i + 1], embedding], axis=1)
    x = h
    h = conv(up(tf.nn.relu(hyper_bn(h, cond, f"{scope}/BatchNorm"))),
             f"{scope}/conv0")
    h = conv(tf.nn.relu(hyper_bn(h, cond, f"{scope}/BatchNorm_1")),
             f"{scope}/conv1")
    h = h + conv(up(x), f"{scope}/conv_sc")
    if i == spec.attention_block:
      h = h + ema("Generator/attention/gamma") * tf_biggan_ops.attention(
          h, lambda x, scope: conv(x, scope, False))
  mean, variance = stats("Generator/BatchNorm")
  h = ((h - mean) * tf.math.rsqrt(variance + 1e-4)
       * ema("Generator/BatchNorm/scale") + ema("Generator/BatchNorm/offset"))
  return tf.tanh(conv(tf.nn.relu(h), "Generator/conv_2d"))


def tf_encode(x, var):
  """The fabricated encoder in TF ops (pre-activation ResNet + MLP head)."""
  def bn(t, scope):
    return tf.nn.batch_normalization(
        t, var(f"{scope}/moving_mean"), var(f"{scope}/moving_variance"),
        var(f"{scope}/beta"), var(f"{scope}/gamma"), ENC_EPS)

  def conv(t, scope, stride):
    return tf.nn.conv2d(t, var(f"{scope}/w"), stride, "SAME")

  h = tf.nn.max_pool2d(conv(x, "Encoder/stem_conv", 2), 3, 2, "SAME")
  for g, count in enumerate(ENC_BLOCKS):
    for u in range(count):
      scope = f"Encoder/block_group_{g}/block_{u}"
      stride = 2 if g and not u else 1
      p = tf.nn.relu(bn(h, f"{scope}/preact_bn"))
      shortcut = conv(p, f"{scope}/shortcut_conv", stride) if u == 0 else h
      r = tf.nn.relu(bn(conv(p, f"{scope}/conv_0", 1), f"{scope}/bn_0"))
      r = tf.nn.relu(bn(conv(r, f"{scope}/conv_1", stride), f"{scope}/bn_1"))
      h = conv(r, f"{scope}/conv_2", 1) + shortcut
  avepool = tf.reduce_mean(tf.nn.relu(bn(h, "Encoder/final_bn")), [1, 2])
  crelu = tf.nn.crelu(bn(avepool, "Encoder/bn_crelu"))
  hidden = tf.nn.relu(tf.matmul(crelu, var("Encoder/head/linear_0/w"))
                      + var("Encoder/head/linear_0/b"))
  out = tf.matmul(hidden, var("Encoder/head/linear_1/w")) + var(
      "Encoder/head/linear_1/b")
  z_mean, s = tf.split(out, 2, axis=1)
  z_stdev = tf.nn.softplus(s)
  return {"default": avepool, "avepool_feat": avepool, "bn_crelu_feat": crelu,
          "z_mean": z_mean, "z_stdev": z_stdev,
          "z_sample": z_mean + z_stdev * tf.random.normal(tf.shape(z_mean))}


def write_module(path, generator_values, encoder_values):
  """A TF1-format SavedModel (tags []) with `generate` and `encode`."""
  everything = {**generator_values, **encoder_values}
  everything.update({k[len(WRAPPER):] if k.startswith(WRAPPER) else k:
                     np.zeros(s, np.float32) for k, s in EXTRAS.items()})

  def full(name):
    return name if name == "global_step" else WRAPPER + name

  def signatures(variable):
    var = lambda name: variable(full(name))
    z = tf.compat.v1.placeholder(tf.float32, [None, TINY.z_dim], name="z")
    x = tf.compat.v1.placeholder(tf.float32, [None, ENC_SIZE, ENC_SIZE, 3],
                                 name="x")
    return {"generate": ({"z": z}, {"default": tf_generate(z, var, TINY)}),
            "encode": ({"x": x}, tf_encode(x, var))}
  tf_biggan_ops.save_module(
      path, {full(name): value for name, value in everything.items()},
      signatures)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
  rng = np.random.default_rng(0)
  generator_values = fake_generator_values(rng)
  encoder_values = fake_encoder_values(rng)
  path = str(tmp_path_factory.mktemp("hub") / "bigbigan")
  write_module(path, generator_values, encoder_values)
  return path, generator_values


@pytest.fixture(scope="module")
def converted(module_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("work"))
  stage.run(config_for(module_dir[0]), workdir)
  return workdir


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory):
  """Five photos of odd sizes (one grayscale) in nested folders."""
  root = tmp_path_factory.mktemp("photos")
  rng = np.random.default_rng(1)
  for i, (h, w) in enumerate(((40, 50), (33, 33), (64, 40), (50, 36),
                              (45, 45))):
    folder = root / ("a" if i < 3 else "b")
    folder.mkdir(exist_ok=True)
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    (image.convert("L") if i == 4 else image).save(folder / f"{i}.png")
  return str(root)


class Interrupted(Exception):
  """Stands for the process being killed."""


def module_outputs(handle, signature, value):
  with tfhub.opened(handle) as module:
    return tfhub.run_signature(module, signature, value)


def test_generator_converted_verified_and_interpreted(converted):
  description = load.read_description(os.path.join(converted, "generator"))
  record = description["conversion"]
  assert description["arch"] == "biggan"
  assert biggan.BigGANSpec.from_dict(description["spec"]) == TINY
  # The module divides by accumulation_counter: 'auto' found it.
  assert record["bn_stats"] == "divide"
  assert record["counters"] == {"min": COUNTER, "max": COUNTER}
  # Its SN normalizes by ||x|| + eps; at these tiny widths the 'max' form is
  # off by more than the tolerance, so 'auto' had to try both.
  assert record["sn_normalize"] == "add"
  tried = record["verification"]
  assert [(t["bn_stats"], t["sn_normalize"]) for t in tried] == [
      ("raw", "max"), ("raw", "add"), ("divide", "max"), ("divide", "add")]
  assert tried[0]["max_abs_diff"] > 1e-2 and tried[-1]["max_abs_diff"] < 1e-4
  unused = record["unused"]
  for name in EXTRAS:
    assert name in unused
  assert "GenEncWrapper/Generator/conv_2d/w" in unused  # Raw copy; EMA used.


def test_every_parameter_landed_where_the_architecture_expects(
    module_dir, converted):
  _, values = module_dir
  generate, params = load.load_generator(config_for(module_dir[0]), converted)
  del generate
  def ema(name):
    return values[f"{name}/{bigbigan_names.EMA_SUFFIX}"]

  def sn(scope):
    return ema(f"{scope}/w") / spectral_norm.singular_value(
        ema(f"{scope}/w"), values[f"{scope}/u0"], 1e-4, "add")

  def close(got, want):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
  close(params["embedding"], ema("Generator/linear/w")[0])
  close(params["z_linear"]["kernel"], sn("Generator/GenZ/G_linear"))
  close(params["z_linear"]["bias"], ema("Generator/GenZ/G_linear/b"))
  for i in range(TINY.num_blocks):
    scope, block = "Generator/GBlock" + (f"_{i}" if i else ""), params[
        "blocks"][i]
    for tf_bn, bn in (("BatchNorm", "bn0"), ("BatchNorm_1", "bn1")):
      close(block[bn]["gamma_kernel"], sn(f"{scope}/{tf_bn}/scale"))
      close(block[bn]["beta_kernel"], sn(f"{scope}/{tf_bn}/offset"))
      close(block[bn]["mean"], values[f"{scope}/{tf_bn}/accumulated_mean"]
            / COUNTER)
      close(block[bn]["var"], values[f"{scope}/{tf_bn}/accumulated_var"]
            / COUNTER)
    for conv in ("conv0", "conv1", "conv_sc"):
      close(block[conv]["kernel"], sn(f"{scope}/{conv}"))
      close(block[conv]["bias"], ema(f"{scope}/{conv}/b"))
  for name in ("theta", "phi", "g", "o_conv"):
    close(params["attention"][name]["kernel"], sn(f"Generator/attention/{name}"))
  close(params["attention"]["gamma"], ema("Generator/attention/gamma"))
  close(params["out_bn"]["scale"], ema("Generator/BatchNorm/scale"))
  close(params["out_bn"]["offset"], ema("Generator/BatchNorm/offset"))
  close(params["out_bn"]["mean"],
        values["Generator/BatchNorm/accumulated_mean"] / COUNTER)
  close(params["out_conv"]["kernel"], sn("Generator/conv_2d"))
  close(params["out_conv"]["bias"], ema("Generator/conv_2d/b"))
  leaves = jax.tree_util.tree_leaves_with_path(params)
  want = jax.tree_util.tree_leaves_with_path(biggan.abstract_params(TINY))
  assert [(p, np.shape(v)) for p, v in leaves] == [
      (p, v.shape) for p, v in want]


def test_loaded_generator_matches_module_on_new_latents(module_dir, converted):
  z = np.random.default_rng(5).normal(size=(3, TINY.z_dim)).astype(np.float32)
  reference = module_outputs(module_dir[0], "generate", z)["default"]
  config = config_for(module_dir[0])
  generate, params = load.load_generator(config, converted)
  images = np.asarray(jax.jit(generate)(params, z))
  assert np.abs(images - reference).max() < 1e-4
  config.generator.dtype = "bfloat16"
  generate, params = load.load_generator(config, converted)
  assert np.abs(np.asarray(jax.jit(generate)(params, z)) - reference).max() < 0.1


def test_fixed_wrong_interpretation_fails_and_writes_nothing(module_dir,
                                                             tmp_path):
  config = config_for(module_dir[0], bn_stats="raw")
  with pytest.raises(errors.UserError, match="config.convert.tolerance"):
    stage.run(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "generator")
  with pytest.raises(errors.UserError, match="verify=False"):
    stage.run(config_for(module_dir[0], verify=False), str(tmp_path))


def test_encoder_mapped_by_structure_and_verified(converted):
  description = load.read_description(os.path.join(converted, "encoder"))
  assert description["verification"].startswith("verified")
  assert description["spec"]["version"] == "v2"
  assert tuple(description["spec"]["blocks"]) == ENC_BLOCKS


def test_embed_flax_and_tfhub_agree_with_module(module_dir, converted,
                                                images_dir, tmp_path):
  config = config_for(module_dir[0])
  config.embed.dataset = images_dir
  files = embed._folder_files(images_dir)  # pylint: disable=protected-access
  assert [os.path.basename(f) for f in files] == [f"{i}.png" for i in range(5)]
  batch = np.stack([embed.preprocess(images_lib.read_rgb(f), ENC_SIZE)
                    for f in files])
  reference = module_outputs(module_dir[0], "encode", batch)["z_mean"]

  config.embed.source = "flax"
  embed.run(config, converted)
  flax_table = np.load(os.path.join(converted, "embeddings.npy"))
  assert flax_table.shape == (5, TINY.z_dim)
  np.testing.assert_allclose(flax_table, reference, atol=1e-4)

  config.embed.source = "auto"  # No W/encoder here -> the module's `encode`.
  embed.run(config, str(tmp_path))
  np.testing.assert_allclose(np.load(tmp_path / "embeddings.npy"), reference,
                             atol=1e-5)


def test_unverifiable_encoder_falls_back_and_embed_resumes(
    module_dir, converted, images_dir, tmp_path, monkeypatch):
  workdir = str(tmp_path)
  shutil.copytree(os.path.join(converted, "encoder"),
                  os.path.join(workdir, "encoder"))  # A stale encoder.
  config = config_for(module_dir[0], encoder_bn_eps=0.1)  # Wrong epsilon.
  stage.run(config, workdir)
  record = load.read_description(os.path.join(workdir, "generator"))[
      "conversion"]
  assert record["encoder"].startswith("not converted: mapped by structure")
  assert not os.path.exists(os.path.join(workdir, "encoder"))

  config.embed.dataset = images_dir
  config.embed.parts_every = 1
  calls, fail_at_call = [], [2]
  real = tfhub.run_signature

  def flaky(module, signature, value):
    calls.append(len(value))
    if len(calls) in fail_at_call:
      fail_at_call.clear()
      raise Interrupted  # Killed during the second batch.
    return real(module, signature, value)

  monkeypatch.setattr(tfhub, "run_signature", flaky)
  with pytest.raises(Interrupted):
    embed.run(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, embed.PARTIAL_DIR))) == [
      "meta.json", "part-000000000.npy"]
  calls.clear()
  embed.run(config, workdir)  # Resumes: 3 images left, batches of 2.
  assert calls == [2, 1]
  resumed = np.load(os.path.join(workdir, "embeddings.npy"))
  monkeypatch.setattr(tfhub, "run_signature", real)
  embed.run(config, str(tmp_path / "fresh"))
  np.testing.assert_allclose(resumed, np.load(tmp_path / "fresh" /
                                              "embeddings.npy"), atol=1e-6)
  assert not os.path.exists(os.path.join(workdir, embed.PARTIAL_DIR))


def test_handle_can_be_a_tar_gz_and_must_exist(module_dir, tmp_path):
  archive = shutil.make_archive(str(tmp_path / "bigbigan"), "gztar",
                                root_dir=module_dir[0])
  with tfhub.opened(archive) as module:
    names = set(tfhub.read_variables(module))
  assert WRAPPER + "Generator/conv_2d/u0" in names and "global_step" in names
  with pytest.raises(errors.UserError, match="does not exist"):
    with tfhub.opened(str(tmp_path / "absent")):
      pass


# ------------------------------------------- handles as TF-Hub resolves them


def test_opened_uses_the_installed_tensorflow_hub():
  got_tf, got_hub = tfhub._import_hub()  # pylint: disable=protected-access
  assert got_tf is tf and got_hub is hub
  assert hub.load.__module__ == "tensorflow_hub.module_v2"


def test_file_url_names_a_local_tar_gz(module_dir, tmp_path):
  path, values = module_dir
  archive = shutil.make_archive(str(tmp_path / "big bigan"), "gztar",
                                root_dir=path)
  with tfhub.opened("file://" + archive.replace(" ", "%20")) as module:
    variables = tfhub.read_variables(module)
  np.testing.assert_array_equal(
      variables[WRAPPER + "Generator/conv_2d/w/ema_0.9999"],
      values["Generator/conv_2d/w/ema_0.9999"])
  with pytest.raises(errors.UserError, match="does not exist"):
    with tfhub.opened("file://" + str(tmp_path / "absent")):
      pass


def test_url_handle_resolves_offline_from_tfhub_cache(module_dir, tmp_path,
                                                      monkeypatch):
  """TF-Hub caches a URL's module in $TFHUB_CACHE_DIR/<sha1 of the URL>/."""
  path, values = module_dir
  handle = default.get_config().generator.handle
  assert handle.startswith("https://")  # A URL handle; nothing is fetched.
  cached = tmp_path / "cache" / hashlib.sha1(handle.encode()).hexdigest()
  shutil.copytree(path, cached)
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
  assert hub.resolve(handle) == str(cached)
  with tfhub.opened(handle) as module:
    variables = tfhub.read_variables(module)
    images = tfhub.run_signature(
        module, "generate", np.zeros((2, TINY.z_dim), np.float32))["default"]
  for name, value in values.items():
    np.testing.assert_array_equal(variables[WRAPPER + name], value)
  assert images.shape == (2, TINY.resolution, TINY.resolution, 3)


def test_convert_from_tar_gz_equals_convert_from_folder(module_dir, converted,
                                                        tmp_path):
  archive = shutil.make_archive(str(tmp_path / "bigbigan"), "gztar",
                                root_dir=module_dir[0])
  workdir = str(tmp_path / "work")
  config = config_for(archive, bn_stats="divide", sn_normalize="add",
                      encoder=False)
  stage.run(config, workdir)
  record = load.read_description(os.path.join(workdir, "generator"))[
      "conversion"]
  (verification,) = record["verification"]
  assert verification["max_abs_diff"] < 1e-4
  _, from_tar = load.load_generator(config, workdir)
  _, from_folder = load.load_generator(config_for(module_dir[0]), converted)
  jax.tree.map(np.testing.assert_array_equal, from_tar, from_folder)
