"""The generator plug-in interface (generator_interface/): resolving
config.generator.arch, classes and latent spaces, and the latent helpers that
every stage uses (`draw`, `shift`)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from examples import tiny_generator
from gansseg_jax.run import config_checks
from gansseg_jax.infra import errors
from gansseg_jax.convert import load
from gansseg_jax.convert import stage
from gansseg_jax.directions import strips
from gansseg_jax.models import demo_gan
from gansseg_jax.generator_interface import kinds
from gansseg_jax.generator_interface import latent
from gansseg_jax.synth import batch
from gansseg_jax.synth import latents as latents_lib

TINY = "examples.tiny_generator:KIND"


def tiny_spec(num_classes=4):
  return {"z_dim": 6, "channels": 3, "resolution": 8,
          "num_classes": num_classes}


def test_short_names_and_module_paths_resolve():
  assert tuple(kinds.resolve("biggan").sources) == ("tfhub", "torch", "random")
  assert kinds.resolve("builtin") is kinds.resolve("demo")
  assert kinds.resolve(TINY) is tiny_generator.KIND


@pytest.mark.parametrize("arch, message", [
    ("no_colon", "neither a built-in kind"),
    ("examples.no_such_module:KIND", "cannot import examples.no_such_module"),
    ("examples.tiny_generator:MISSING", "has no attribute 'MISSING'"),
    ("examples.tiny_generator:init_params", "is a function, not a"),
])
def test_a_bad_arch_is_one_line_naming_the_field(arch, message):
  with pytest.raises(errors.UserError, match=message) as raised:
    kinds.resolve(arch)
  assert str(raised.value).startswith("config.generator.arch: ")
  assert "\n" not in str(raised.value)


def test_the_old_demo_spelling_still_means_the_demo():
  config = default.get_config().generator
  config.source = "builtin"  # arch keeps its default 'biggan'.
  assert kinds.kind_name(config) == "builtin"
  config.source = "random"
  assert kinds.kind_name(config) == "biggan"


@pytest.mark.parametrize("value, ids", [
    ("", ()), ("all", ()), (" all ", ()), ("207", (207,)), ("1, 5,9", (1, 5, 9)),
    (3, (3,)), ((2, 4), (2, 4)),
])
def test_classes_parse(value, ids):
  assert kinds.parse_classes(value) == ids


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "2,b"])
def test_bad_classes_name_the_field(value):
  with pytest.raises(errors.UserError, match="config.generator.classes"):
    kinds.parse_classes(value)


def test_options_are_validated_per_kind():
  config = default.get_config().generator
  config.latent_space = "w"
  with pytest.raises(errors.UserError, match="config.generator.latent_space"):
    kinds.check_options(kinds.resolve("biggan"), kinds.build_options(config))
  config.latent_space = "q"
  with pytest.raises(errors.UserError, match="config.generator.latent_space"):
    kinds.build_options(config)
  config.latent_space, config.classes = "z", "3"
  with pytest.raises(errors.UserError, match="not class-conditional"):
    kinds.check_options(kinds.resolve("biggan"), kinds.build_options(config))
  with pytest.raises(errors.UserError, match="config.generator.classes: 9"):
    kinds.build(tiny_generator.KIND, tiny_spec(),
                kinds.BuildOptions(classes=(1, 9)))


def test_shift_moves_the_directions_and_leaves_the_class():
  latents = jnp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])  # d = 2, class.
  moved = latent.shift(latents, jnp.asarray([10.0, 20.0]))
  np.testing.assert_array_equal(moved, [[11, 22, 3], [14, 25, 0]])
  per_row = latent.shift(latents, jnp.asarray([[1.0, 1.0], [2.0, 2.0]]))
  np.testing.assert_array_equal(per_row, [[2, 3, 3], [6, 7, 0]])
  np.testing.assert_array_equal(latent.shift(latents, jnp.ones(3)), latents + 1)


def test_draw_of_a_plain_function_is_the_old_normal_draw():
  key = jax.random.key(4)
  got = latent.draw(lambda p, z: z, None, key, (3, 5), 7)
  np.testing.assert_array_equal(got, jax.random.normal(key, (3, 5, 7)))
  sampler = latents_lib.make_sampler(default.get_config().synth, 7)
  np.testing.assert_array_equal(
      latent.draw(lambda p, z: z, None, key, (5,), 7, base=sampler),
      sampler(key, 5))


def test_draw_maps_by_the_prior_and_draws_only_the_chosen_classes():
  spec = tiny_spec()
  network = kinds.build(tiny_generator.KIND, spec,
                        kinds.BuildOptions(latent_space="w", classes=(1, 3)))
  params = tiny_generator.init_params(spec, 0)
  key = jax.random.key(0)
  drawn = np.asarray(latent.draw(network, params, key, (400,), 0))
  assert drawn.shape == (400, 7)
  noise_key, _ = jax.random.split(key)
  np.testing.assert_allclose(
      drawn[:, :6],
      tiny_generator.mapping(params, jax.random.normal(noise_key, (400, 6))),
      rtol=1e-6)
  counts = {c: int(np.sum(drawn[:, 6] == c)) for c in (0, 1, 2, 3)}
  assert counts[0] == counts[2] == 0 and min(counts[1], counts[3]) > 150
  every = kinds.build(tiny_generator.KIND, spec, kinds.BuildOptions())
  assert set(np.asarray(latent.draw(every, params, key, (400,), 0))[:, 6]) == {
      0.0, 1.0, 2.0, 3.0}


def class_painter():
  """A conditional network whose image is gray = class / 10, whatever z."""
  def generate(params, latents):
    del params
    _, labels = latent.split_latents(latents, 4)
    gray = labels.astype(jnp.float32)[:, None, None, None] / 10
    return jnp.broadcast_to(gray, (latents.shape[0], 8, 8, 3))
  return latent.Network(generate=generate, abstract_params={}, resolution=8,
                        direction_dim=4, num_classes=5)


def test_synthesis_pairs_share_their_class():
  """G(z) and G(z + h) of one latent have one class: nothing lightens."""
  network = class_painter()
  spec = batch.SynthSpec.from_config(default.get_config().synth)
  z = latent.draw(network, {}, jax.random.key(0), (16,), 0)
  assert len(set(np.asarray(z[:, 4]))) > 1
  cand = batch.make_candidates(z, network, {}, jnp.ones(4) * 9.0, spec)
  assert not np.asarray(cand.masks).any()
  strip = strips.shift_images(network, {}, z[:3], jnp.ones(4),
                              jnp.linspace(-50.0, 50.0, 5))
  np.testing.assert_array_equal(
      strip[:, :, 0, 0, 0], np.repeat(np.asarray(z[:3, 4:]) / 10, 5, axis=1))


def test_plug_in_converts_from_npz_and_reloads(tmp_path):
  spec = tiny_spec(num_classes=3)
  params = tiny_generator.init_params(spec, 5)
  np.savez(tmp_path / "tiny.npz", resolution=8, **params)
  config = default.get_config()
  config.generator.arch, config.generator.source = TINY, "npz"
  config.generator.checkpoint = str(tmp_path / "tiny.npz")
  config.generator.z_dim, config.generator.resolution = 6, 8
  stage.run(config, str(tmp_path / "w"))
  description = load.read_description(str(tmp_path / "w" / "generator"))
  assert description["arch"] == TINY and description["spec"] == spec
  network, loaded = load.load_generator(config, str(tmp_path / "w"))
  for name in tiny_generator.ARRAYS:
    np.testing.assert_array_equal(np.asarray(loaded[name]), params[name])
  latents = latent.draw(network, loaded, jax.random.key(1), (2,), 0)
  np.testing.assert_allclose(
      np.asarray(network(loaded, latents)),
      np.asarray(tiny_generator.make_generate(spec, "z")(params, latents)),
      atol=1e-6)
  config.generator.source = "tfhub"
  with pytest.raises(errors.UserError, match="config.generator.source: 'tfhub'"
                     ".*tiny_generator generator's"):
    stage.run(config, str(tmp_path / "x"))
  config.generator.source, config.generator.checkpoint = "npz", "missing.npz"
  with pytest.raises(errors.UserError, match="config.generator.checkpoint"):
    stage.run(config, str(tmp_path / "x"))
  assert not os.path.exists(tmp_path / "x" / "generator")


def test_a_source_checks_the_field_it_names_before_reading(tmp_path):
  """Source.check walks what the table declares: a file, a file or folder,
  an optional module (its install command in the line); a TF-Hub handle and
  a source that names no field are left to the runner and the reader."""
  def read(config, workdir):
    raise AssertionError("not reached")
  g = default.get_config().generator
  g.checkpoint = str(tmp_path)  # A folder.
  with pytest.raises(errors.UserError, match=(
      r"^config\.generator\.checkpoint: must be an existing file \(an npz\), "
      "got ")):
    kinds.Source(read, "checkpoint", "an npz").check(g)
  kinds.Source(read, "checkpoint", "a folder", kinds.FILE_OR_FOLDER).check(g)
  with pytest.raises(errors.UserError, match=(
      rf"^config\.generator\.checkpoint: reading {tmp_path} needs "
      r"no_such_reader_module, which is not installed \(pip install it\)$")):
    kinds.Source(read, "checkpoint", "a folder", kinds.FILE_OR_FOLDER,
                 module="no_such_reader_module",
                 install="pip install it").check(g)
  g.handle = ""
  kinds.Source(read, "handle", "a module", kinds.TFHUB_MODULE).check(g)
  kinds.Source(read).check(g)


def test_a_demo_workdir_from_before_the_interface_still_loads(tmp_path):
  _, params, info = demo_gan.load_builtin()
  load.save(str(tmp_path / "generator"),
            {"arch": "builtin", "source": "builtin", "info": info}, params)
  config = default.get_config()
  config.generator.source = "builtin"
  config.generator.z_dim = config.generator.resolution = 32
  network, loaded = load.load_generator(config, str(tmp_path))
  assert network.direction_dim == 32 and network.latent_projection
  z = jax.random.normal(jax.random.key(0), (1, 32))
  np.testing.assert_allclose(
      np.asarray(network(loaded, z)),
      np.asarray(demo_gan.load_builtin()[0](params, z)), atol=1e-6)



def test_the_docs_show_the_example_module_as_committed():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  with open(os.path.join(root, "docs", "generators.md")) as f:
    page = f.read()
  with open(tiny_generator.__file__) as f:
    module = f.read()
  section = page.split("## Your own generator", 1)[1]
  assert "```python\n" + module + "```" in section


def test_biggan_prior_is_the_truncated_normal_times_truncation():
  from scipy import stats  # pylint: disable=g-import-not-at-top
  from gansseg_jax.generators import imagenet_biggan as kind  # pylint: disable=g-import-not-at-top
  noise = jax.random.normal(jax.random.key(0), (20000, 4))
  z = np.asarray(kind.truncated_prior(0.5)({}, noise)).ravel()
  assert np.abs(z).max() <= 1.0
  reference = stats.truncnorm(-2, 2, scale=0.5)
  assert stats.kstest(z, reference.cdf).pvalue > 0.01
  np.testing.assert_allclose(np.quantile(z, [0.1, 0.5, 0.9]),
                             reference.ppf([0.1, 0.5, 0.9]), atol=0.01)


def test_conditional_biggans_read_the_class_coordinate():
  from gansseg_jax.models import biggan_deep  # pylint: disable=g-import-not-at-top
  spec = biggan_deep.BigGANDeepSpec(resolution=32, z_dim=8, ch=4,
                                    n_classes=5, attention_resolution=0)
  network = kinds.build(kinds.resolve("biggan_deep"), spec.to_dict(),
                        kinds.BuildOptions(classes=(2, 4), truncation=0.4))
  params = biggan_deep.init_params(spec, 0)
  latents = latent.draw(network, params, jax.random.key(3), (3,), 0)
  assert set(np.asarray(latents[:, 8])) <= {2.0, 4.0}
  direct = biggan_deep.make_generate(spec, truncation=0.4)(
      params, latents[:, :8], jax.nn.one_hot(latents[:, 8].astype(int), 5))
  np.testing.assert_allclose(np.asarray(network(params, latents)),
                             np.asarray(direct), atol=1e-6)
  assert network.latent_dim == 9 and network.direction_dim == 8


def test_workdirs_from_before_the_new_generator_fields_keep_their_hashes():
  from gansseg_jax.run import stages  # pylint: disable=g-import-not-at-top
  from gansseg_jax.infra import workdir  # pylint: disable=g-import-not-at-top
  new = workdir.config_to_dict(default.get_config())
  old = workdir.config_to_dict(default.get_config())
  for field in ("checkpoint", "latent_space", "num_classes", "classes",
                "truncation", "noise_mode"):
    del old["generator"][field]
  for stage in stages.STAGES:
    assert stages.stage_hash(stage, new) == stages.stage_hash(stage, old)
  new["generator"]["latent_space"] = "w"
  assert stages.stage_hash(stages.BY_NAME["convert"], new) != (
      stages.stage_hash(stages.BY_NAME["convert"], old))


def test_stylegan2_w_plus_repeats_w_and_splits_sefa_by_layer():
  from gansseg_jax.models import stylegan2  # pylint: disable=g-import-not-at-top
  spec = stylegan2.StyleGAN2Spec(resolution=16, z_dim=8, w_dim=8,
                                 mapping_layers=2, channel_base=64,
                                 channel_max=16)
  params = stylegan2.init_params(spec, jax.random.key(0))
  kind = kinds.resolve("stylegan2")
  w_net, plus_net = (
      kinds.build(kind, spec.to_dict(), kinds.BuildOptions(latent_space=space,
                                                           truncation=0.5))
      for space in ("w", "w+"))
  plus = np.asarray(latent.draw(plus_net, params, jax.random.key(2), (2,), 0))
  assert plus.shape == (2, spec.num_ws * 8)
  ws = plus.reshape(2, spec.num_ws, 8)
  np.testing.assert_array_equal(ws, np.repeat(ws[:, :1], spec.num_ws, axis=1))
  noise = jax.random.normal(jax.random.key(2), (2, spec.num_ws * 8))
  mapped = stylegan2.make_mapping(spec)(params, noise[:, :8])
  w_avg = np.asarray(params["w_avg"])
  np.testing.assert_allclose(ws[:, 0], w_avg + 0.5 * (mapped - w_avg),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(plus_net(params, plus)),
                             np.asarray(w_net(params, ws[:, 0])), atol=1e-5)
  blocks = plus_net.latent_projection(params).reshape(-1, spec.num_ws, 8)
  np.testing.assert_allclose(blocks.sum(axis=1),
                             stylegan2.latent_projection(params), atol=0)
  assert ((np.abs(blocks) > 0).sum(axis=1) <= 1).all()


def test_a_spec_json_that_misses_fields_is_one_line(tmp_path):
  load.save(str(tmp_path / "generator"),
            {"arch": "biggan", "spec": {"z_dim": 120, "resolution": 128}},
            {"x": np.zeros(1, np.float32)})
  with pytest.raises(errors.UserError, match=r"spec.json: its spec does not "
                     r"describe a biggan generator \(KeyError: 'ch'\)"):
    load.load_generator(default.get_config(), str(tmp_path))


def noisy_stylegan2():
  """A tiny random StyleGAN2 whose noise strengths are non-zero (an untrained
  network's are 0, which would hide the noise)."""
  from gansseg_jax.models import stylegan2  # pylint: disable=g-import-not-at-top
  spec = stylegan2.StyleGAN2Spec(resolution=16, z_dim=8, w_dim=8,
                                 mapping_layers=2, channel_base=64,
                                 channel_max=16)
  params = stylegan2.init_params(spec, jax.random.key(0))
  for layer in params["layers"].values():
    layer["noise_strength"] = np.float32(0.5)
  return spec, params


def stylegan2_network(spec, noise_mode):
  return kinds.build(
      kinds.resolve("stylegan2"), spec.to_dict(),
      kinds.BuildOptions(latent_space="w", noise_mode=noise_mode))


def test_random_noise_rows_follow_their_seed():
  """Row i of Network 'random' on [w, s] is the model's 'random' generate of
  w alone with noise_key = jax.random.key(s)."""
  from gansseg_jax.models import stylegan2  # pylint: disable=g-import-not-at-top
  spec, params = noisy_stylegan2()
  network = stylegan2_network(spec, "random")
  assert network.conditions == ("noise_seed",) and network.latent_dim == 9
  latents = latent.draw(network, params, jax.random.key(1), (3,), 0)
  seeds = np.asarray(latents[:, -1])
  assert (seeds == np.round(seeds)).all() and (seeds < 2**24).all()
  assert len(set(seeds)) == 3
  np.testing.assert_array_equal(
      latents[:, :8], latent.draw(stylegan2_network(spec, "const"), params,
                                  jax.random.split(jax.random.key(1))[0], (3,),
                                  0))
  images = np.asarray(jax.jit(network)(params, latents))
  model = jax.jit(stylegan2.make_generate(spec, latent_space="w",
                                          noise_mode="random"))
  for row, seed in enumerate(seeds):
    alone = model(params, latents[row:row + 1, :8],
                  jax.random.key(int(seed)))
    np.testing.assert_allclose(images[row], np.asarray(alone)[0], atol=1e-5)
  const = np.asarray(stylegan2_network(spec, "const")(params, latents[:, :8]))
  assert np.abs(images - const).max() > 0.05  # The noise shows.


def test_random_noise_is_shared_by_a_pair_and_not_across_seeds():
  from gansseg_jax.models import stylegan2  # pylint: disable=g-import-not-at-top
  spec, params = noisy_stylegan2()
  network = jax.jit(stylegan2_network(spec, "random"))
  latents = latent.draw(stylegan2_network(spec, "random"), params,
                        jax.random.key(3), (2,), 0)
  images = np.asarray(network(params, latents))
  np.testing.assert_array_equal(
      np.asarray(network(params, latent.shift(latents, jnp.zeros(8)))), images)
  h = jnp.linspace(-1.0, 1.0, 8)
  shifted = latent.shift(latents, h)
  np.testing.assert_array_equal(shifted[:, -1], latents[:, -1])
  model = jax.jit(stylegan2.make_generate(spec, latent_space="w",
                                          noise_mode="random"))
  keys = jax.vmap(jax.random.key)(latents[:, -1].astype(jnp.uint32))
  np.testing.assert_allclose(np.asarray(network(params, shifted)),
                             np.asarray(model(params, shifted[:, :8], keys)),
                             atol=1e-5)
  twin = latents.at[:, -1].set(latents[:, -1] + 1)  # Same w, other seeds.
  assert np.abs(np.asarray(network(params, twin)) - images).max() > 0.05


def test_synthesis_pairs_of_random_noise_differ_by_the_shift_only():
  """With h = 0 the pair is identical, so synth finds no lighting mask."""
  spec, params = noisy_stylegan2()
  network = stylegan2_network(spec, "random")
  synth_spec = batch.SynthSpec.from_config(default.get_config().synth)
  z = latent.draw(network, params, jax.random.key(0), (4,), 0)
  cand = batch.make_candidates(z, network, params, jnp.zeros(8), synth_spec)
  np.testing.assert_allclose(np.asarray(cand.images),
                             np.asarray(network(params, z)), atol=1e-5)
  assert not np.asarray(cand.masks).any()


def test_no_noise_is_the_models_none():
  from gansseg_jax.models import stylegan2  # pylint: disable=g-import-not-at-top
  spec, params = noisy_stylegan2()
  network = stylegan2_network(spec, "none")
  assert network.condition_dim == 0
  w = latent.draw(network, params, jax.random.key(5), (2,), 0)
  np.testing.assert_array_equal(
      np.asarray(network(params, w)),
      np.asarray(stylegan2.make_generate(spec, latent_space="w",
                                         noise_mode="none")(params, w)))


@pytest.mark.parametrize("arch, mode", [("stylegan2", "fresh"),
                                        ("biggan", "random"),
                                        ("builtin", "none"),
                                        (TINY, "random")])
def test_a_noise_mode_the_kind_lacks_names_the_field(arch, mode):
  config = default.get_config()
  config.generator.arch, config.generator.noise_mode = arch, mode
  with pytest.raises(errors.UserError,
                     match="config.generator.noise_mode") as raised:
    config_checks.check_values(config)
  assert "\n" not in str(raised.value)


def test_a_noise_mode_other_than_const_changes_the_generators_stages():
  from gansseg_jax.run import stages  # pylint: disable=g-import-not-at-top
  from gansseg_jax.infra import workdir  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.generator.arch, config.generator.source = "stylegan2", "random"
  old = workdir.config_to_dict(config)
  new = workdir.config_to_dict(config)
  new["generator"]["noise_mode"] = "random"
  for name in ("convert", "discover", "score", "synth", "train", "report"):
    assert stages.stage_hash(stages.BY_NAME[name], new) != (
        stages.stage_hash(stages.BY_NAME[name], old)), name
