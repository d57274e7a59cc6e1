"""Golden outputs of torch DCGAN generators for tests/test_dcgan.py.

Builds the generator of PyTorch's DCGAN tutorial (ConvTranspose2d 4x4 from
the 1x1 latent, stride 1 pad 0, then 4x4 stride 2 pad 1 layers, BatchNorm2d
and ReLU between, tanh or sigmoid at the end) with random weights and random
batch-norm running statistics, in eval mode, and writes under
tests/fixtures/dcgan/:

  seq32.pt       nn.Sequential numbering (main.0.weight, ...), nz 16, ngf 8,
                 32 px, the plain state dict (torch.save zip format)
  named64.tar    named layers (deconv1, bn1, ...), nz 16, ngf 4, 64 px,
                 nested: {netG_state_dict, netD_state_dict (the tutorial's
                 discriminator, ndf 2), epoch}, as training scripts save
  gray32.pth     one output channel, ConvTranspose2d with biases, BatchNorm2d
                 without affine parameters, nz 8, ngf 4, 32 px, torch's
                 legacy (pre-1.6, non-zip) format
  golden.npz     per network NAME: NAME_z [N, nz] and NAME_tanh (seq32 also
                 NAME_sigmoid): torch's images as NHWC float32
  gan_face_generate.npz  (with --wheel) z [N, 100] and images [N, 64, 64, 3]
                 of the pretrained generator in the PyPI wheel
                 gan-face-generate 1.1.1 (gan_face_generate/weights.tar,
                 {"netG_state_dict": ...}, nz 100, ngf 64, tanh); the weights
                 themselves are not copied

  /work/venv-torch/bin/python tools/make_dcgan_golden.py \
    --wheel=weights/gan_face_generate-1.1.1-py3-none-any.whl

torch 2.13.0 (CPU) made the committed files.
"""
import argparse
import io
import os
import zipfile

import numpy as np
import torch
from torch import nn

OUT_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "tests", "fixtures", "dcgan")
SAMPLES = 2  # Latents per network.
WHEEL_MEMBER = "gan_face_generate/weights.tar"
WHEEL_NZ, WHEEL_NGF = 100, 64


def tutorial_layers(nz, ngf, resolution, channels=3, bias=False, affine=True,
                    output=nn.Tanh):
  """The tutorial's layer list: widths ngf * 2^(n-1) ... ngf, then channels."""
  n = int(np.log2(resolution // 4))
  widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]
  layers = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=bias)]
  for cin, cout in zip(widths, widths[1:] + [channels]):
    layers += [nn.BatchNorm2d(cin, affine=affine), nn.ReLU(True),
               nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)]
  return layers + [output()]


class Tutorial(nn.Module):
  """The tutorial's Generator: the layers as `self.main` (main.0.weight, ...)."""

  def __init__(self, layers):
    super().__init__()
    self.main = nn.Sequential(*layers)

  def forward(self, x):
    return self.main(x)


class Named(nn.Module):
  """The same network with named layers (deconv1, bn1, ..., deconvN)."""

  def __init__(self, layers):
    super().__init__()
    self.order = []
    convs = bns = 0
    for layer in layers:
      if isinstance(layer, nn.ConvTranspose2d):
        convs += 1
        name = f"deconv{convs}"
      elif isinstance(layer, nn.BatchNorm2d):
        bns += 1
        name = f"bn{bns}"
      else:
        name = f"act{len(self.order)}"
      setattr(self, name, layer)
      self.order.append(name)

  def forward(self, x):
    for name in self.order:
      x = getattr(self, name)(x)
    return x


def discriminator(ndf, resolution):
  """The tutorial's discriminator (only its state dict is used)."""
  n = int(np.log2(resolution // 4))
  layers, cin = [], 3
  for i in range(n):
    cout = ndf * 2 ** i
    layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=False))
    if i:
      layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, True))
    cin = cout
  return nn.Sequential(*layers, nn.Conv2d(cin, 1, 4, 1, 0, bias=False),
                       nn.Sigmoid())


def randomize(net, generator):
  """Random weights, biases and running statistics (not torch's 1 / 0)."""
  with torch.no_grad():
    for module in net.modules():
      if isinstance(module, nn.ConvTranspose2d):
        fan_in = module.weight.shape[0] * 4  # Inputs per output pixel.
        module.weight.normal_(0, (2.0 / fan_in) ** 0.5, generator=generator)
        if module.bias is not None:
          module.bias.normal_(0, 0.1, generator=generator)
      if isinstance(module, nn.BatchNorm2d):
        c = module.num_features
        module.running_mean.copy_(torch.randn(c, generator=generator) * 0.3)
        module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
        module.num_batches_tracked.fill_(1000)
        if module.affine:
          module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
          module.bias.copy_(torch.randn(c, generator=generator) * 0.2)
  return net.eval()


def images(net, z):
  """NHWC float32 of net(z as [N, nz, 1, 1])."""
  with torch.no_grad():
    out = net(torch.from_numpy(z)[:, :, None, None])
  return out.permute(0, 2, 3, 1).numpy().astype(np.float32)


def latents(seed, nz):
  return np.random.default_rng(seed).standard_normal(
      (SAMPLES, nz)).astype(np.float32)


def golden_networks(golden):
  torch_gen = torch.Generator().manual_seed(0)

  seq = randomize(Tutorial(tutorial_layers(16, 8, 32)), torch_gen)
  torch.save(seq.state_dict(), os.path.join(OUT_DIR, "seq32.pt"))
  z = latents(1, 16)
  golden["seq32_z"] = z
  golden["seq32_tanh"] = images(seq, z)
  golden["seq32_sigmoid"] = images(
      nn.Sequential(*list(seq.main)[:-1], nn.Sigmoid()), z)

  named = randomize(Named(tutorial_layers(16, 4, 64)), torch_gen)
  disc = discriminator(2, 64)
  torch.save({"netG_state_dict": named.state_dict(),
              "netD_state_dict": disc.state_dict(), "epoch": 3},
             os.path.join(OUT_DIR, "named64.tar"))
  z = latents(2, 16)
  golden["named64_z"] = z
  golden["named64_tanh"] = images(named, z)

  gray = randomize(Tutorial(tutorial_layers(8, 4, 32, channels=1, bias=True,
                                            affine=False)), torch_gen)
  torch.save(gray.state_dict(), os.path.join(OUT_DIR, "gray32.pth"),
             _use_new_zipfile_serialization=False)
  z = latents(3, 8)
  golden["gray32_z"] = z
  golden["gray32_tanh"] = images(gray, z)


def wheel_golden(wheel):
  """z and images of the pretrained generator inside the wheel."""
  with zipfile.ZipFile(wheel) as archive:
    data = archive.read(WHEEL_MEMBER)
  state = torch.load(io.BytesIO(data), map_location="cpu",
                     weights_only=True)["netG_state_dict"]
  net = Tutorial(tutorial_layers(WHEEL_NZ, WHEEL_NGF, 64))
  net.load_state_dict(state)
  net.eval()
  z = latents(4, WHEEL_NZ)
  return {"z": z, "images": images(net, z)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--wheel", default="",
                      help="gan_face_generate-1.1.1-py3-none-any.whl")
  args = parser.parse_args()
  os.makedirs(OUT_DIR, exist_ok=True)
  torch.manual_seed(0)
  golden = {}
  golden_networks(golden)
  np.savez(os.path.join(OUT_DIR, "golden.npz"), **golden)
  for name, value in golden.items():
    if not name.endswith("_z"):
      print(f"{name}: {value.shape} range [{value.min():.3f}, "
            f"{value.max():.3f}] saturated {np.mean(np.abs(value) > 0.99):.3f}")
  if args.wheel:
    real = wheel_golden(args.wheel)
    np.savez(os.path.join(OUT_DIR, "gan_face_generate.npz"), **real)
    print(f"gan_face_generate: {real['images'].shape} range "
          f"[{real['images'].min():.3f}, {real['images'].max():.3f}]")


if __name__ == "__main__":
  main()
