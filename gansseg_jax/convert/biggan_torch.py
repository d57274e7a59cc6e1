"""PyTorch ImageNet BigGAN / BigGAN-deep state dicts -> Flax params.

Two formats, both plain state dicts (read with numpy by
convert/torch_state_dict.py: no code in the file runs, torch is not needed):

BigGAN-PyTorch (ajbrock) `G.pth` / `G_ema.pth` / the TF-Hub ports
`biggan-{128,256,512}.pth`: the keys of its `Generator` (listed in
gansseg_jax/convert/torch_checkpoint.py, which converts BigBiGAN's copy of it)
with `shared.weight` [n_classes, shared_dim] the class embedding. Its eval-mode
spectral norm is one power iteration from u0 with F.normalize; the epsilons
are not in the file: the TF-Hub ports use BN_eps = SN_eps = 1e-4, ajbrock's own
trained networks BN_eps 1e-5 and SN_eps 1e-6; the output BN is always 1e-5
(layers.bn's default, which Generator never overrides).

pytorch-pretrained-biggan (BigGAN-deep) `pytorch_model.bin` + `config.json`:
  embeddings.weight                      [z_dim, n_classes]    (Linear, no bias)
  generator.gen_z.{weight_orig,weight_u,weight_v,bias}    out in H,W,C order
  generator.layers.{j}.bn_{0..3}.{running_means,running_vars}  [n_stats, C]
  generator.layers.{j}.bn_{0..3}.{scale,offset}.{weight_orig,weight_u,weight_v}
  generator.layers.{j}.conv_{0..3}.{weight_orig,weight_u,weight_v,bias}
  generator.layers.{a}.snconv1x1_{theta,phi,g,o_conv}.{weight_orig,...}, .gamma
  generator.bn.{running_means,running_vars,weight,bias}
  generator.conv_to_rgb.{weight_orig,weight_u,weight_v,bias}   [ch, ch, 3, 3]
where layer a is the attention and GenBlock i is layer i (+1 after it). Its
spectral norm is torch.nn.utils.spectral_norm in eval mode: no iteration,
sigma = u . (W v) with the stored u, v. conv_to_rgb has ch outputs of which
the generator keeps the first 3: the kernel is cut after dividing by sigma.
"""
import json
import os
from typing import Any, Mapping

import numpy as np

from gansseg_jax.infra import errors
from gansseg_jax.convert import bigbigan_names
from gansseg_jax.convert import torch_checkpoint
from gansseg_jax.models import biggan
from gansseg_jax.models import biggan_deep
from gansseg_jax.models import imagenet_biggan

# Epsilons of the two families of BigGAN-PyTorch checkpoints (module doc).
TFHUB_PORT_EPS = {"bn_eps": 1e-4, "sn_eps": 1e-4}
TRAINED_EPS = {"bn_eps": 1e-5, "sn_eps": 1e-6}
OUTPUT_BN_EPS = 1e-5
DEEP_CONFIG_NAME = "config.json"
DEEP_WEIGHTS_NAME = "pytorch_model.bin"
# The config field both formats are read from (torch's errors name it).
CHECKPOINT_FIELD = "config.generator.checkpoint"


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """{key: float32 array} of a torch state dict file (numpy only)."""
  if not os.path.isfile(path):
    raise errors.UserError(f"{path}: no such checkpoint file")
  return torch_checkpoint.read_state_dict(path, CHECKPOINT_FIELD)


# ---------------------------------------------------------------- BigGAN ---

def biggan_spec_from_state(state: Mapping[str, np.ndarray], where: str,
                           bn_eps: float = TFHUB_PORT_EPS["bn_eps"]
                           ) -> imagenet_biggan.ImageNetBigGANSpec:
  """The architecture a BigGAN-PyTorch state dict holds, read off its shapes."""
  try:
    n_classes, shared_dim = state["shared.weight"].shape
    linear_out, chunk = state["linear.weight"].shape
  except (KeyError, ValueError) as e:
    raise errors.UserError(f"{where}: not a BigGAN-PyTorch generator state "
                           "dict (needs shared.weight [n_classes, shared] and "
                           "linear.weight [16 C0, chunk])") from e
  num_blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
  resolution = biggan.BOTTOM_WIDTH * 2 ** num_blocks
  if resolution not in biggan.CHANNEL_MULTIPLIERS:
    raise errors.UserError(
        f"{where}: {num_blocks} blocks make {resolution} px, not one of "
        f"{sorted(biggan.CHANNEL_MULTIPLIERS)}")
  first_mult = biggan.CHANNEL_MULTIPLIERS[resolution][0][0]
  ch = linear_out // (biggan.BOTTOM_WIDTH ** 2 * first_mult)
  attention = [int(k.split(".")[1]) for k in state
               if k.startswith("blocks.") and k.endswith(".1.gamma")]
  side = (biggan.BOTTOM_WIDTH * 2 ** (attention[0] + 1)) if attention else 0
  try:
    return imagenet_biggan.ImageNetBigGANSpec(
        resolution=resolution, z_dim=chunk * (num_blocks + 1), ch=ch,
        shared_dim=shared_dim, n_classes=n_classes,
        attention_resolution=side, bn_eps=bn_eps, output_bn_eps=OUTPUT_BN_EPS)
  except ValueError as e:
    raise errors.UserError(f"{where}: {e}") from e


def convert_biggan(spec: imagenet_biggan.ImageNetBigGANSpec,
                   state: Mapping[str, np.ndarray], sn_eps: float, where: str
                   ) -> tuple[dict[str, Any], dict[str, str]]:
  """(Flax params, {unused key: reason}) of a BigGAN-PyTorch state dict.

  The block layers convert as BigBiGAN's (torch_checkpoint.convert: TF
  layouts, [z, class] HyperBN rows, NHWC first layer, W / sigma); the class
  embedding is the whole shared.weight matrix.
  """
  params, unused = torch_checkpoint.convert(spec.backbone, state, sn_eps, where)
  shared = state["shared.weight"]
  if shared.shape[0] != spec.n_classes:
    raise errors.UserError(f"{where}: key shared.weight has {shared.shape[0]} "
                           f"classes, expected {spec.n_classes}")
  del params["embedding"]
  params["shared"] = np.asarray(shared, np.float32)
  return params, unused


def read_biggan_pytorch(path: str, bn_eps: float = TFHUB_PORT_EPS["bn_eps"],
                        sn_eps: float = TFHUB_PORT_EPS["sn_eps"]
                        ) -> tuple[imagenet_biggan.ImageNetBigGANSpec,
                                   dict[str, Any]]:
  """(spec, params) of a BigGAN-PyTorch `G*.pth`; UserError names the file."""
  state = read_state_dict(path)
  spec = biggan_spec_from_state(state, path, bn_eps)
  params, _ = convert_biggan(spec, state, sn_eps, path)
  return spec, params


# ----------------------------------------------------------- BigGAN-deep ---

def deep_spec_from_config(config: Mapping[str, Any], where: str
                          ) -> biggan_deep.BigGANDeepSpec:
  """BigGANDeepSpec of a pytorch-pretrained-biggan config.json's values."""
  try:
    resolution = int(config["output_dim"])
    ch = int(config["channel_width"])
    position = int(config["attention_layer_position"])
    spec = biggan_deep.BigGANDeepSpec(
        resolution=resolution, z_dim=int(config["z_dim"]), ch=ch,
        n_classes=int(config["num_classes"]),
        attention_resolution=(biggan.BOTTOM_WIDTH * 2 ** (position // 2)
                              if position >= 0 else 0),
        eps=float(config["eps"]), n_stats=int(config["n_stats"]))
    layers = [(bool(up), ch * cin, ch * cout)
              for up, cin, cout in config["layers"]]
  except KeyError as e:
    raise errors.UserError(f"{where}: field {e} is missing") from e
  except (TypeError, ValueError) as e:
    raise errors.UserError(f"{where}: {e}") from e
  expected = [(up, cin, cout) for cin, cout, up in spec.block_layout]
  if layers != expected:
    raise errors.UserError(f"{where}: field layers {config['layers']} is not "
                           f"the BigGAN-deep layout for output_dim "
                           f"{resolution} ({expected} channels)")
  if position % 2 and position >= 0:
    raise errors.UserError(f"{where}: field attention_layer_position "
                           f"{position} is not before a side's first block")
  if int(config.get("class_embed_dim", spec.z_dim)) != spec.z_dim:
    raise errors.UserError(f"{where}: field class_embed_dim must equal z_dim "
                           "(the package embeds classes to z_dim)")
  return spec


def _torch_sn(state, prefix: str) -> np.ndarray:
  """weight_orig / (u . W v) in TF layout ([k, k, in, out] or [in, out])."""
  w = np.asarray(state[f"{prefix}.weight_orig"], np.float64)
  mat = w.reshape(w.shape[0], -1)
  sigma = float(np.asarray(state[f"{prefix}.weight_u"], np.float64)
                @ mat @ np.asarray(state[f"{prefix}.weight_v"], np.float64))
  w = w / sigma
  w = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T
  return w.astype(np.float32)


def _deep_expected(spec: biggan_deep.BigGANDeepSpec) -> dict[str, tuple]:
  """{key: shape} of the package's state dict for `spec`."""
  keys: dict[str, tuple] = {}

  def sn(prefix, shape, bias=True):
    keys[f"{prefix}.weight_orig"] = shape
    keys[f"{prefix}.weight_u"] = (shape[0],)
    keys[f"{prefix}.weight_v"] = (int(np.prod(shape[1:])),)
    if bias:
      keys[f"{prefix}.bias"] = (shape[0],)

  keys["embeddings.weight"] = (spec.z_dim, spec.n_classes)
  bottom = spec.block_layout[0][0]
  sn("generator.gen_z", (biggan.BOTTOM_WIDTH ** 2 * bottom, spec.cond_dim))
  for i, (cin, cout, _) in enumerate(spec.block_layout):
    p = f"generator.layers.{_layer_index(spec, i)}"
    mid = cin // biggan_deep.BOTTLENECK
    for k, (a, b, kernel) in enumerate(((cin, mid, 1), (mid, mid, 3),
                                        (mid, mid, 3), (mid, cout, 1))):
      keys[f"{p}.bn_{k}.running_means"] = (spec.n_stats, a)
      keys[f"{p}.bn_{k}.running_vars"] = (spec.n_stats, a)
      sn(f"{p}.bn_{k}.scale", (a, spec.cond_dim), bias=False)
      sn(f"{p}.bn_{k}.offset", (a, spec.cond_dim), bias=False)
      sn(f"{p}.conv_{k}", (b, a, kernel, kernel))
  if spec.attention_position >= 0:
    c, p = spec.attention_channels, (
        f"generator.layers.{spec.attention_position}")
    for name, cout, cin in (("theta", c // 8, c), ("phi", c // 8, c),
                            ("g", c // 2, c), ("o_conv", c, c // 2)):
      sn(f"{p}.snconv1x1_{name}", (cout, cin, 1, 1), bias=False)
    keys[f"{p}.gamma"] = (1,)
  last = spec.block_layout[-1][1]
  for name in ("running_means", "running_vars"):
    keys[f"generator.bn.{name}"] = (spec.n_stats, last)
  keys["generator.bn.weight"] = (last,)
  keys["generator.bn.bias"] = (last,)
  sn("generator.conv_to_rgb", (last, last, 3, 3))
  return keys


def _layer_index(spec: biggan_deep.BigGANDeepSpec, block: int) -> int:
  """Position of GenBlock `block` in generator.layers (attention is one)."""
  after = 0 <= spec.attention_position <= block
  return block + (1 if after else 0)


def convert_deep(spec: biggan_deep.BigGANDeepSpec,
                 state: Mapping[str, np.ndarray], where: str
                 ) -> dict[str, Any]:
  """Flax params of a pytorch-pretrained-biggan state dict; UserError names a
  missing, misshapen or unknown key."""
  expected = _deep_expected(spec)
  for key, shape in expected.items():
    if key not in state:
      raise errors.UserError(f"{where}: key {key} is missing (expected shape "
                             f"{list(shape)} for {spec})")
    if not bigbigan_names.same_shape(np.shape(state[key]), shape):
      raise errors.UserError(f"{where}: key {key} has shape "
                             f"{list(np.shape(state[key]))}, expected "
                             f"{list(shape)}")
  unknown = sorted(set(state) - set(expected))
  if unknown:
    raise errors.UserError(f"{where}: key {unknown[0]} is not part of the "
                           f"BigGAN-deep generator ({len(unknown)} unknown)")

  def stats(prefix):
    return {"mean": np.asarray(state[f"{prefix}.running_means"], np.float32),
            "var": np.asarray(state[f"{prefix}.running_vars"], np.float32)}

  def conv(prefix):
    return {"kernel": _torch_sn(state, prefix),
            "bias": np.asarray(state[f"{prefix}.bias"], np.float32)}

  params: dict[str, Any] = {
      "embedding": np.asarray(state["embeddings.weight"], np.float32).T,
      "z_linear": conv("generator.gen_z"),
      "blocks": {},
  }
  for i in range(len(spec.block_layout)):
    p = f"generator.layers.{_layer_index(spec, i)}"
    block = {}
    for k in range(4):
      block[f"bn{k}"] = {
          "gamma_kernel": _torch_sn(state, f"{p}.bn_{k}.scale"),
          "beta_kernel": _torch_sn(state, f"{p}.bn_{k}.offset"),
          **stats(f"{p}.bn_{k}")}
      block[f"conv{k}"] = conv(f"{p}.conv_{k}")
    params["blocks"][i] = block
  if spec.attention_position >= 0:
    p = f"generator.layers.{spec.attention_position}"
    params["attention"] = {
        name: {"kernel": _torch_sn(state, f"{p}.snconv1x1_{name}")}
        for name in ("theta", "phi", "g", "o_conv")}
    params["attention"]["gamma"] = np.asarray(
        state[f"{p}.gamma"], np.float32).reshape(())
  params["out_bn"] = {
      "scale": np.asarray(state["generator.bn.weight"], np.float32),
      "offset": np.asarray(state["generator.bn.bias"], np.float32),
      **stats("generator.bn")}
  rgb = conv("generator.conv_to_rgb")
  params["out_conv"] = {"kernel": rgb["kernel"][..., :3],
                        "bias": rgb["bias"][:3]}
  return params


def read_deep_config(path: str) -> biggan_deep.BigGANDeepSpec:
  """The spec of a pytorch-pretrained-biggan config.json file."""
  try:
    with open(path, encoding="utf-8") as f:
      config = json.load(f)
  except OSError as e:
    raise errors.UserError(f"{path}: cannot read ({e.strerror})") from e
  except json.JSONDecodeError as e:
    raise errors.UserError(f"{path}: not JSON ({e})") from e
  if not isinstance(config, dict):
    raise errors.UserError(f"{path}: not a JSON object")
  return deep_spec_from_config(config, path)


def read_pretrained_biggan(path: str) -> tuple[biggan_deep.BigGANDeepSpec,
                                               dict[str, Any]]:
  """(spec, params) of a pytorch-pretrained-biggan model.

  `path` is the folder holding pytorch_model.bin and config.json (as the
  package's from_pretrained takes it) or the .bin file with config.json
  beside it.
  """
  folder = path if os.path.isdir(path) else os.path.dirname(path)
  weights = (os.path.join(path, DEEP_WEIGHTS_NAME) if os.path.isdir(path)
             else path)
  spec = read_deep_config(os.path.join(folder, DEEP_CONFIG_NAME))
  return spec, convert_deep(spec, read_state_dict(weights), weights)
