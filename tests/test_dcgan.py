"""The 'dcgan' kind against torch: golden images of DCGAN-tutorial generators
(tests/fixtures/dcgan/, made by tools/make_dcgan_golden.py with torch) and of
the pretrained gan-face-generate wheel; the sources it reads (plain, nested,
legacy, wheel), the refusals, and read_torch_state_dict. No torch needed."""
import collections
import os
import shutil
import zipfile

import numpy as np
import pytest

from configs import test as test_config
from gansseg_jax.infra import errors
from gansseg_jax.convert import dcgan_torch
from gansseg_jax.convert import load
from gansseg_jax.convert import read_torch_state_dict
from gansseg_jax.convert import stage
from gansseg_jax.generators import dcgan as dcgan_kind
from gansseg_jax.models import dcgan
from gansseg_jax.generator_interface import kinds

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "dcgan")
# Where `make test` puts the wheel (Makefile); never downloaded by a test.
WHEEL = os.path.join(REPO, "weights", "gan_face_generate-1.1.1-py3-none-any.whl")
TOLERANCE = 1e-5  # Max |flax - torch| in float32.


@pytest.fixture(scope="module")
def golden():
  return dict(np.load(os.path.join(FIXTURES, "golden.npz")))


def fixture(name):
  return os.path.join(FIXTURES, name)


def _images(spec, params, z):
  network = dcgan_kind.build(spec.to_dict(), kinds.BuildOptions())
  return np.asarray(network(params, z))


@pytest.mark.parametrize("name,file,output,where", [
    ("seq32", "seq32.pt", "tanh", "(top level)"),
    ("seq32", "seq32.pt", "sigmoid", "(top level)"),
    ("named64", "named64.tar", "tanh", "netG_state_dict"),
    ("gray32", "gray32.pth", "tanh", "(top level)"),
])
def test_images_match_torch(golden, name, file, output, where):
  spec, params, found = dcgan_torch.read_dcgan(fixture(file), output)
  assert found == where
  expected = golden[f"{name}_{output}"]
  if output == "sigmoid":
    expected = 2.0 * expected - 1.0
  if expected.shape[-1] == 1:  # Gray, shown as RGB.
    expected = np.repeat(expected, 3, axis=-1)
  images = _images(spec, params, golden[f"{name}_z"])
  assert images.shape == expected.shape
  assert np.abs(images - expected).max() <= TOLERANCE


def test_bfloat16_activations_stay_close(golden):
  spec, params, _ = dcgan_torch.read_dcgan(fixture("named64.tar"))
  network = dcgan_kind.build(spec.to_dict(),
                             kinds.BuildOptions(dtype="bfloat16"))
  images = np.asarray(network(params, golden["named64_z"]))
  assert images.dtype == np.float32
  error = np.abs(images - golden["named64_tanh"])
  assert 1e-4 < error.max() < 0.1 and error.mean() < 0.01


def test_shapes_are_inferred():
  cases = {"seq32.pt": (16, (32, 16, 8), 3, 32),
           "named64.tar": (16, (32, 16, 8, 4), 3, 64),
           "gray32.pth": (8, (16, 8, 4), 1, 32)}
  for file, (nz, widths, channels, side) in cases.items():
    spec, params, _ = dcgan_torch.read_dcgan(fixture(file))
    assert (spec.z_dim, spec.widths, spec.out_channels,
            spec.resolution) == (nz, widths, channels, side)
    # The gray network's BN has no affine tensors: scale 1, offset 0.
    if channels == 1:
      np.testing.assert_array_equal(params["norms"][0]["scale"], 1.0)


def test_pretrained_wheel_matches_torch():
  if not os.path.isfile(WHEEL):
    pytest.skip(f"{WHEEL} is absent (`make test` fetches it)")
  spec, params, where = dcgan_torch.read_dcgan(WHEEL)
  assert where.endswith("!gan_face_generate/weights.tar:netG_state_dict")
  assert spec == dcgan.DCGANSpec(z_dim=100, widths=(512, 256, 128, 64))
  real = np.load(fixture("gan_face_generate.npz"))
  images = _images(spec, params, real["z"])
  assert images.shape == (2, 64, 64, 3)
  assert np.abs(images).max() <= 1.0 and images.std() > 0.1
  assert np.abs(images - real["images"]).max() <= TOLERANCE


def _wheel(tmp_path, members):
  path = tmp_path / "pkg-1.0-py3-none-any.whl"
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("pkg/__init__.py", "")
    archive.writestr("pkg/notes.pt", b"not a torch file")
    for member, source in members.items():
      archive.write(fixture(source), member)
  return str(path)


def test_wheel_source(tmp_path, golden):
  path = _wheel(tmp_path, {"pkg/weights.tar": "named64.tar"})
  spec, params, where = dcgan_torch.read_dcgan(path)
  assert where == f"{path}!pkg/weights.tar:netG_state_dict"
  images = _images(spec, params, golden["named64_z"])
  assert np.abs(images - golden["named64_tanh"]).max() <= TOLERANCE

  two = _wheel(tmp_path, {"pkg/a.pt": "seq32.pt", "pkg/b.tar": "named64.tar"})
  with pytest.raises(errors.UserError, match=(
      r"several state dicts are DCGAN generators \(.*a\.pt:\(top level\), "
      r".*b\.tar:netG_state_dict\)")):
    dcgan_torch.read_dcgan(two)


def _seq32():
  return read_torch_state_dict(fixture("seq32.pt"))


def _refusal(state):
  with pytest.raises(dcgan_torch.NotDCGAN) as e:
    dcgan_torch.parse(state)
  return str(e.value)


def test_refuses_an_extra_conv_at_the_end():
  state = _seq32()
  state["main.13.weight"] = np.zeros((3, 3, 4, 4), np.float32)
  assert _refusal(state).startswith("main.13.weight: no running_mean")


def test_refuses_an_extra_3x3_conv_in_the_middle():
  state = _seq32()
  items = list(state.items())
  at = [k for k, _ in items].index("main.3.weight")
  items.insert(at, ("main.2.weight", np.zeros((32, 32, 3, 3), np.float32)))
  assert _refusal(collections.OrderedDict(items)).startswith(
      "main.2.weight has shape [32, 32, 3, 3]; DCGAN layer 2 is a "
      "ConvTranspose2d weight [32, out, 4, 4]")


def test_refuses_a_wrong_shaped_batch_norm():
  state = _seq32()
  state["main.4.running_var"] = np.ones(15, np.float32)
  assert _refusal(state).startswith(
      "main.4.running_var has shape [15]; expected [16]")


def test_refuses_other_networks():
  linear_first = {"fc.weight": np.zeros((512, 16), np.float32),
                  "fc.bias": np.zeros(512, np.float32)}
  assert _refusal(linear_first).startswith("fc.weight has shape [512, 16]")
  disc = read_torch_state_dict(fixture("named64.tar"), key="netD_state_dict")
  assert _refusal(disc).startswith("2.weight: no running_mean")
  no_output = {k: v for k, v in _seq32().items()
               if not k.startswith("main.9.")}  # The output layer.
  assert _refusal(no_output).startswith(
      "main.7.weight: the state dict ends with a BatchNorm2d")


def test_convert_errors_are_one_line_user_errors(tmp_path):
  config = _config(str(tmp_path / "d.pt"))
  bad = tmp_path / "d.pt"
  shutil.copy(fixture("named64.tar"), bad)
  config.generator.output_activation = "relu"
  with pytest.raises(errors.UserError, match=(
      r"^config\.generator\.output_activation: 'relu' is not one of")):
    dcgan_kind.convert(config, str(tmp_path))
  config.generator.output_activation = "tanh"
  (tmp_path / "junk.pt").write_bytes(b"\x80\x04junk")
  config.generator.checkpoint = str(tmp_path / "junk.pt")
  with pytest.raises(errors.UserError, match=r"junk\.pt: not a readable"):
    dcgan_kind.convert(config, str(tmp_path))


def _config(checkpoint, side=32, nz=16):
  config = test_config.get_config()
  config.generator.arch = "dcgan"
  config.generator.source = "torch"
  config.generator.checkpoint = checkpoint
  config.generator.resolution = side
  config.generator.z_dim = nz
  return config


def test_convert_stage_round_trip(tmp_path, golden):
  config = _config(fixture("seq32.pt"))
  stage.run(config, str(tmp_path))
  network, params = load.load_generator(config, str(tmp_path))
  description = load.read_description(str(tmp_path / "generator"))
  assert description["arch"] == "dcgan"
  assert description["conversion"]["state_dict"] == "(top level)"
  assert len(description["conversion"]["verification"]["bn_mean_gap"]) == 3
  assert network.latent_dim == 16 and network.resolution == 32
  images = np.asarray(network(params, golden["seq32_z"]))
  assert np.abs(images - golden["seq32_tanh"]).max() <= TOLERANCE
  # SeFa's W: output (i, j, o) of the first layer is sum_c z_c W[(i,j,o), c].
  projection = network.latent_projection(params)
  assert projection.shape == (16 * 32, 16)
  z = golden["seq32_z"][:1]
  first = np.einsum("c,ijco->ijo", z[0], np.asarray(
      params["convs"][0]["kernel"]))
  np.testing.assert_allclose(projection @ z[0], first.reshape(-1), atol=1e-5)


def test_read_torch_state_dict():
  state = _seq32()
  assert list(state)[:6] == ["main.0.weight", "main.1.weight", "main.1.bias",
                             "main.1.running_mean", "main.1.running_var",
                             "main.1.num_batches_tracked"]
  assert state["main.0.weight"].shape == (16, 32, 4, 4)
  assert state["main.0.weight"].dtype == np.float32
  # Planted by the golden script: 1000 batches, variances in [0.5, 1.5).
  assert state["main.1.num_batches_tracked"] == 1000
  assert state["main.1.num_batches_tracked"].dtype == np.int64
  assert 0.5 <= state["main.1.running_var"].min() < 1.5
  legacy = read_torch_state_dict(fixture("gray32.pth"))
  assert legacy["main.0.bias"].shape == (16,)
  generator = read_torch_state_dict(fixture("named64.tar"),
                                    key="netG_state_dict")
  assert list(generator)[0] == "deconv1.weight"
  with pytest.raises(errors.UserError, match=(
      r"named64\.tar: 2 state dicts \(\['netG_state_dict', "
      r"'netD_state_dict'\]\); name one with key=")):
    read_torch_state_dict(fixture("named64.tar"))
  with pytest.raises(errors.UserError, match=r"no state dict under key 'G'"):
    read_torch_state_dict(fixture("named64.tar"), key="G")
