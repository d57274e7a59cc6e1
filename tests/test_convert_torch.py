"""The authors' PyTorch checkpoint path (BigBiGAN_x1.pth, BigGAN-PyTorch keys).

A tiny state dict is fabricated from TF-layout variables the way the authors
built theirs (their tf_tools: transpose to [out, in, k, k], HyperBN inputs
reordered to [class, z], first linear layer reshaped NCHW), so converting it
must give exactly the params the TF-Hub path gives for the same variables.
Reading a real .pth needs torch, which the tests skip when it is absent.
"""
import numpy as np
import pytest

from configs import default
from gansseg_jax.infra import errors
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import load
from gansseg_jax.convert import stage
from gansseg_jax.convert import torch_checkpoint
from gansseg_jax.models import biggan

TINY = biggan.BigGANSpec(resolution=32, z_dim=24, ch=4, shared_dim=8,
                         attention_resolution=16, bn_eps=1e-4)
EMA = "/" + bigbigan_names.EMA_SUFFIX


def tf_values(seed=0):
  """TF-layout variables of TINY (statistics already averaged: counter 1)."""
  rng = np.random.default_rng(seed)
  values = {}
  for line in bigbigan_names.manifest_lines(TINY):
    name, shape = line.split(" ", 1)
    shape = tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())
    if name.endswith("accumulation_counter"):
      values[name] = np.ones(shape, np.float32)
    elif name.endswith("accumulated_var"):
      values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      values[name] = rng.normal(size=shape).astype(np.float32)
  return values


def authors_state_dict(values, n_classes=3):
  """What the authors' TF -> BigGAN-PyTorch conversion makes of `values`."""
  def v(name):
    return values[name + EMA]
  chunk, shared = TINY.chunk_size, TINY.shared_dim
  c0 = TINY.block_channels[0][0]
  state = {"shared.weight": np.repeat(v("Generator/linear/w"), n_classes, 0)}

  def sn(prefix, scope, kind):
    w = v(f"{scope}/w")
    u0 = values[f"{scope}/u0"]
    if kind == "conv":
      w = w.transpose(3, 2, 0, 1)
    elif kind == "hyper":  # [z, class] rows -> [class, z] columns.
      w = np.concatenate([w[chunk:], w[:chunk]]).T
    elif kind == "linear":  # Outputs (h, w, c) -> (c, h, w).
      w = w.T.reshape(4, 4, c0, chunk).transpose(2, 0, 1, 3).reshape(-1, chunk)
      u0 = u0.reshape(4, 4, c0).transpose(2, 0, 1).reshape(1, -1)
    state[f"{prefix}.weight"], state[f"{prefix}.u0"] = w, u0
    state[f"{prefix}.sv0"] = np.ones(1, np.float32)
    if f"{scope}/b{EMA}" in values:
      b = v(f"{scope}/b")
      state[f"{prefix}.bias"] = (b.reshape(4, 4, c0).transpose(2, 0, 1)
                                 .reshape(-1) if kind == "linear" else b)

  sn("linear", "Generator/GenZ/G_linear", "linear")
  for i in range(TINY.num_blocks):
    scope = "Generator/GBlock" + (f"_{i}" if i else "")
    for tf_bn, bn in (("BatchNorm", "bn1"), ("BatchNorm_1", "bn2")):
      sn(f"blocks.{i}.0.{bn}.gain", f"{scope}/{tf_bn}/scale", "hyper")
      sn(f"blocks.{i}.0.{bn}.bias", f"{scope}/{tf_bn}/offset", "hyper")
      state[f"blocks.{i}.0.{bn}.stored_mean"] = values[
          f"{scope}/{tf_bn}/accumulated_mean"]
      state[f"blocks.{i}.0.{bn}.stored_var"] = values[
          f"{scope}/{tf_bn}/accumulated_var"]
    for tf_conv, conv in (("conv0", "conv1"), ("conv1", "conv2"),
                          ("conv_sc", "conv_sc")):
      sn(f"blocks.{i}.0.{conv}", f"{scope}/{tf_conv}", "conv")
  a = f"blocks.{TINY.attention_block}.1"
  for tf_name, name in (("theta", "theta"), ("phi", "phi"), ("g", "g"),
                        ("o_conv", "o")):
    sn(f"{a}.{name}", f"Generator/attention/{tf_name}", "conv")
  state[f"{a}.gamma"] = v("Generator/attention/gamma")
  state["output_layer.0.gain"] = v("Generator/BatchNorm/scale")
  state["output_layer.0.bias"] = v("Generator/BatchNorm/offset")
  state["output_layer.0.stored_mean"] = values[
      "Generator/BatchNorm/accumulated_mean"]
  state["output_layer.0.stored_var"] = values[
      "Generator/BatchNorm/accumulated_var"]
  sn("output_layer.2", "Generator/conv_2d", "conv")
  return state


def flat(tree, prefix=""):
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flat(value, f"{prefix}{key}/"))
    else:
      out[f"{prefix}{key}"] = np.asarray(value)
  return out


def test_torch_layout_gives_the_tfhub_params():
  values = tf_values()
  state = authors_state_dict(values)
  params, unused = torch_checkpoint.convert(TINY, state, 1e-4, "ckpt")
  want = bigbigan_names.assemble(TINY, values, use_ema=True, bn_stats="raw",
                                 sn_mode="max", sn_eps=1e-4)
  got_flat, want_flat = flat(params), flat(want)
  assert sorted(got_flat) == sorted(want_flat)
  for key in want_flat:
    np.testing.assert_allclose(got_flat[key], want_flat[key], rtol=1e-5,
                               atol=1e-6, err_msg=key)
  assert all(key.endswith(".sv0") for key in unused) and unused


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("blocks.1.0.bn2.stored_var"),
     "blocks.1.0.bn2.stored_var is missing"),
    (lambda s: s.update({"blocks.0.0.conv1.weight": np.zeros((16, 16, 3, 2))}),
     "blocks.0.0.conv1.weight has shape"),
    (lambda s: s.update({"blocks.9.0.conv1.weight": np.zeros(1)}),
     "blocks.9.0.conv1.weight is not mapped"),
    (lambda s: s.pop("shared.weight"), "shared.weight missing"),
])
def test_bad_state_dict_names_the_key(change, message):
  state = authors_state_dict(tf_values())
  change(state)
  with pytest.raises(errors.UserError, match=message):
    torch_checkpoint.convert(TINY, state, 1e-4, "ckpt")


def test_missing_checkpoint_is_a_user_error(tmp_path):
  c = default.get_config()
  c.generator.source = "torch"
  c.generator.torch_checkpoint = str(tmp_path / "absent.pth")
  with pytest.raises(errors.UserError, match="torch_checkpoint"):
    stage.run(c, str(tmp_path))


def test_pth_file_through_the_convert_stage(tmp_path):
  torch = pytest.importorskip("torch")
  values = tf_values(1)
  state = authors_state_dict(values)
  path = str(tmp_path / "BigBiGAN_x1.pth")
  torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
             path)
  c = default.get_config()
  c.generator.source, c.generator.torch_checkpoint = "torch", path
  c.generator.resolution, c.generator.z_dim, c.generator.ch = 32, 24, 4
  c.generator.shared_dim, c.generator.attention_resolution = 8, 16
  stage.run(c, str(tmp_path / "work"))
  _, params = load.load_generator(c, str(tmp_path / "work"))
  want = bigbigan_names.assemble(TINY, values, use_ema=True, bn_stats="raw",
                                 sn_mode="max", sn_eps=1e-4)
  got_flat, want_flat = flat(params), flat(want)
  for key in want_flat:
    np.testing.assert_allclose(got_flat[key], want_flat[key], rtol=1e-5,
                               atol=1e-6, err_msg=key)
