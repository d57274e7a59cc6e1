"""Golden outputs of ImageNet BigGAN and BigGAN-deep from their reference code.

Writes tests/fixtures/biggan/ (3.5 MB), read without torch by
tests/test_imagenet_biggan.py:

  biggan/state.npz   state dict of BigGAN-PyTorch's `Generator` (random
                     weights; keys as in G.state_dict(), e.g.
                     blocks.0.0.conv1.u0)
  biggan/kwargs.json the Generator's constructor arguments
  biggan/io.npz      z [B, dim_z], y [B, 1000] (one-hot rows and one mixture),
                     images [B, 3, H, W] = G(z, y @ shared.weight)
  deep/state.npz     state dict of pytorch-pretrained-biggan's `BigGAN`
                     (random weights; keys as in pytorch_model.bin)
  deep/config.json   its BigGANConfig (the config.json that ships beside it)
  deep/io.npz        z [T, B, z_dim] (one z times each truncation), y,
                     truncations [T], images [T, B, 3, H, W]

Upstream code, exactly:
  ajbrock/BigGAN-PyTorch at 98459431a5d618d644d54cd1e9fceb1e5045648d (BigGAN.py,
  layers.py, sync_batchnorm/), its TFHub/converter.py settings for the TF-Hub
  ports (BN_eps 1e-4, SN_eps 1e-4, G_shared, hier, shared_dim 128);
  pytorch-pretrained-biggan 0.1.1 (PyPI), torch 2.13.0 (CPU).

Both networks are small (32 / 64 px, narrow channels) with 1000 classes; every
buffer the forward pass reads is randomised (BN statistics, SN vectors, biases,
attention gamma) so that no part of the mapping is tested against a constant.

Usage (in a separate venv, never the project's):
  python -m venv /tmp/bgvenv
  /tmp/bgvenv/bin/pip install torch==2.13.0 \
      pytorch-pretrained-biggan==0.1.1 scipy
  git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/bgref
  git -C /tmp/bgref checkout 98459431a5d618d644d54cd1e9fceb1e5045648d
  /tmp/bgvenv/bin/python tools/make_biggan_golden.py --biggan_pytorch=/tmp/bgref
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

BATCH = 4
N_CLASSES = 1000
BIGGAN_KWARGS = dict(  # TFHub/converter.py's get_config, at 32 px and G_ch 16.
    G_ch=16, dim_z=20, bottom_width=4, resolution=32, G_attn="16",
    n_classes=N_CLASSES, G_shared=True, shared_dim=128, hier=True,
    BN_eps=1e-4, SN_eps=1e-4, num_G_SVs=1, num_G_SV_itrs=1, G_init="ortho",
    skip_init=False, no_optim=True, G_param="SN", norm_style="bn")
DEEP_CONFIG = dict(  # BigGAN-deep's layout at 64 px, channel_width 4.
    output_dim=64, z_dim=32, class_embed_dim=32, channel_width=4,
    num_classes=N_CLASSES,
    layers=[[False, 16, 16], [True, 16, 8], [False, 8, 8], [True, 8, 4],
            [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1]],
    attention_layer_position=6, eps=1e-4, n_stats=51)
TRUNCATIONS = (0.4, 0.55, 1.0)  # On the statistics grid, between, the end.


def _randomise(module: torch.nn.Module, gen: torch.Generator) -> None:
  """Every floating tensor of the state dict drawn afresh (see module doc)."""
  with torch.no_grad():
    for name, tensor in module.state_dict().items():
      if not tensor.is_floating_point():
        continue
      leaf = name.split(".")[-1]
      if "var" in leaf:  # stored_var, running_vars
        tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
      elif "mean" in leaf:
        tensor.copy_(0.2 * torch.randn(tensor.shape, generator=gen))
      elif leaf == "u0":
        value = torch.randn(tensor.shape, generator=gen)
        tensor.copy_(value / value.norm())
      elif leaf == "gamma":
        tensor.copy_(torch.tensor(0.7))
      elif leaf == "bias" or leaf == "gain":
        tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen)
                     + (1.0 if leaf == "gain" else 0.0))
      elif leaf == "weight" and tensor.ndim == 1:  # Unconditional BN scale.
        tensor.copy_(1.0 + 0.1 * torch.randn(tensor.shape, generator=gen))
      elif leaf in ("weight", "weight_orig"):
        tensor.copy_(torch.randn(tensor.shape, generator=gen)
                     / np.sqrt(np.prod(tensor.shape[1:])))


def _settle_power_vectors(module: torch.nn.Module, gen: torch.Generator,
                          iterations: int = 3) -> None:
  """torch's spectral_norm (eval: sigma = u W v, no iteration) gets u, v a few
  power iterations from random, as a trained network's are: sigma > 0."""
  with torch.no_grad():
    for sub in module.modules():
      if not hasattr(sub, "weight_orig"):
        continue
      w = sub.weight_orig.reshape(sub.weight_orig.shape[0], -1)
      v = torch.randn(w.shape[1], generator=gen)
      for _ in range(iterations):
        u = torch.nn.functional.normalize(w @ v, dim=0)
        v = torch.nn.functional.normalize(w.T @ u, dim=0)
      sub.weight_u.copy_(u)
      sub.weight_v.copy_(v)


def _labels(gen: torch.Generator) -> torch.Tensor:
  """One-hot rows for classes [0, 999, random], then a 0.3 / 0.7 mixture."""
  y = torch.zeros(BATCH, N_CLASSES)
  classes = [0, N_CLASSES - 1, int(torch.randint(N_CLASSES, (1,),
                                                 generator=gen))]
  for row, c in enumerate(classes):
    y[row, c] = 1.0
  y[3, 207], y[3, 933] = 0.3, 0.7
  return y


def _state_npz(module: torch.nn.Module, path: str) -> None:
  np.savez(path, **{k: v.detach().numpy() for k, v in
                    module.state_dict().items() if v.is_floating_point()})


def make_biggan(biggan_pytorch: str, out: str, gen: torch.Generator) -> None:
  sys.path.insert(0, biggan_pytorch)
  import BigGAN  # pylint: disable=import-outside-toplevel,import-error
  G = BigGAN.Generator(**BIGGAN_KWARGS).eval()  # pylint: disable=invalid-name
  _randomise(G, gen)
  z = torch.randn(BATCH, G.dim_z, generator=gen)
  y = _labels(gen)
  with torch.no_grad():
    images = G(z, y @ G.shared.weight)
  os.makedirs(out, exist_ok=True)
  _state_npz(G, os.path.join(out, "state.npz"))
  with open(os.path.join(out, "kwargs.json"), "w") as f:
    json.dump(BIGGAN_KWARGS, f, indent=1)
  np.savez(os.path.join(out, "io.npz"), z=z.numpy(), y=y.numpy(),
           images=images.numpy())
  print("BigGAN", images.shape, float(images.std()))


def make_deep(out: str, gen: torch.Generator) -> None:
  # pylint: disable-next=import-outside-toplevel
  import pytorch_pretrained_biggan as ppb
  config = ppb.BigGANConfig.from_dict(DEEP_CONFIG)
  model = ppb.BigGAN(config).eval()
  _randomise(model, gen)
  _settle_power_vectors(model, gen)
  z = torch.randn(BATCH, config.z_dim, generator=gen)
  zs = torch.stack([z * t for t in TRUNCATIONS])
  y = _labels(gen)
  with torch.no_grad():
    images = torch.stack([model(zt, y, t) for zt, t in zip(zs, TRUNCATIONS)])
  os.makedirs(out, exist_ok=True)
  _state_npz(model, os.path.join(out, "state.npz"))
  with open(os.path.join(out, "config.json"), "w") as f:
    f.write(config.to_json_string())
  np.savez(os.path.join(out, "io.npz"), z=zs.numpy(), y=y.numpy(),
           truncations=np.asarray(TRUNCATIONS), images=images.numpy())
  print("BigGAN-deep", images.shape, float(images.std()))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--biggan_pytorch", required=True,
                      help="checkout of ajbrock/BigGAN-PyTorch at the commit "
                      "named in this file")
  parser.add_argument("--out", default="tests/fixtures/biggan")
  args = parser.parse_args()
  torch.manual_seed(0)
  make_biggan(args.biggan_pytorch, os.path.join(args.out, "biggan"),
              torch.Generator().manual_seed(1))
  make_deep(os.path.join(args.out, "deep"), torch.Generator().manual_seed(2))


if __name__ == "__main__":
  main()
