r"""The authors' training step (BigGANsAreWatching) as a small PyTorch program.

Runs only where torch is installed (never imported by the project or its
tests); experiments/bench_vs_authors.py drives it beside the JAX step:

  python experiments/authors_step_torch.py --save=/tmp/w   # writes the weights
  python experiments/authors_step_torch.py --load=/tmp/w --serve
      # then one line per command on stdin: 'step' -> one JSON line of
      # timings on stdout; 'quit' ends it

What one step does, as the authors' train_segmentation.py / gan_mask_gen.py
(anvoynov/BigGANsAreWatching) do it on one device, written here from their
description, not copied:
  rounds until `batch` samples are kept (their MaskGenerator.forward; with
  --rounds=1 one round, the U-Net then sees all `batch` images and the loss
  counts the kept ones):
    z ~ N(0, I) [batch, 120]; x = G(z), x' = G(z + r h)   (two forwards)
    mask = gray(x) < gray(x')   (ITU-R 601 weights 0.2989, 0.5870, 0.1140)
    connected components (8-connected, as skimage.measure.label's default):
      keep those with area > 0.2 x the largest; per component one pass over
      the mask, as their loop does
    keep samples whose mask covers < 0.5 of the image, then those whose
    shifted image's histogram (12 bins over [-1, 1], all channels, moving
    sum of 3) has >= 2 local maxima (their `maxes_filter`, on the host)
  U-Net (milesial Pytorch-UNet, width 64, bilinear, BatchNorm in training
  mode) forward, 2-class cross-entropy, backward, Adam (lr 1e-3).

The generator is BigGAN-128 as BigBiGAN uses it (BigGAN-PyTorch's layout:
G_ch 96, z 120 in 6 chunks of 20, hierarchical z + shared class embedding
128 into every conditional BatchNorm, attention at 64 px, BN eps 1e-4, eval
mode), random weights; its state dict uses BigBiGAN_x1.pth's keys (the
project's convert/torch_checkpoint.py reads them), saved as an .npz with the
direction so that the JAX side runs the same weights. Spectral norm: one
power iteration from u0 (F.normalize, eps 1e-4) at load time, as the
project's converter does (the authors' modules redo it every forward, a
few matrix-vector products).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

Z_DIM, CHUNK, SHARED, CH, EPS = 120, 20, 128, 96, 1e-4
# Input and output channels of the five GBlocks (x CH), 4 -> 128 px.
BLOCKS = ((16, 16), (16, 8), (8, 4), (4, 2), (2, 1))
ATTENTION_BLOCK = 3  # After the block that outputs 64 x 64.
GRAY = (0.2989, 0.5870, 0.1140)


def random_state(seed: int) -> dict[str, np.ndarray]:
  """A BigBiGAN_x1.pth-shaped state dict of random weights (float32).

  Conv and linear weights ~ N(0, 1) / sqrt(fan_in) (spectral norm rescales
  them anyway), biases small, BN statistics near (0, 1).
  """
  rng = np.random.default_rng(seed)
  state = {}

  def sn(prefix, shape, bias=True):
    fan_in = int(np.prod(shape[1:]))
    state[f"{prefix}.weight"] = rng.normal(size=shape) / math.sqrt(fan_in)
    u = rng.normal(size=(1, shape[0]))
    state[f"{prefix}.u0"] = u / np.linalg.norm(u)
    state[f"{prefix}.sv0"] = np.ones((1,))
    if bias:
      state[f"{prefix}.bias"] = 0.05 * rng.normal(size=shape[:1])

  def stats(prefix, c):
    state[f"{prefix}.stored_mean"] = 0.1 * rng.normal(size=(c,))
    state[f"{prefix}.stored_var"] = 1.0 + 0.2 * rng.random(size=(c,))

  state["shared.weight"] = rng.normal(size=(1000, SHARED))
  first = BLOCKS[0][0] * CH
  sn("linear", (16 * first, CHUNK))
  cond = SHARED + CHUNK
  for i, (cin, cout) in enumerate(BLOCKS):
    cin, cout, p = cin * CH, cout * CH, f"blocks.{i}.0"
    for bn, c in (("bn1", cin), ("bn2", cout)):
      sn(f"{p}.{bn}.gain", (c, cond), bias=False)
      sn(f"{p}.{bn}.bias", (c, cond), bias=False)
      stats(f"{p}.{bn}", c)
    sn(f"{p}.conv1", (cout, cin, 3, 3))
    sn(f"{p}.conv2", (cout, cout, 3, 3))
    sn(f"{p}.conv_sc", (cout, cin, 1, 1))
  c = BLOCKS[ATTENTION_BLOCK][1] * CH
  p = f"blocks.{ATTENTION_BLOCK}.1"
  for name, shape in (("theta", (c // 8, c, 1, 1)), ("phi", (c // 8, c, 1, 1)),
                      ("g", (c // 2, c, 1, 1)), ("o", (c, c // 2, 1, 1))):
    sn(f"{p}.{name}", shape, bias=False)
  state[f"{p}.gamma"] = np.array(0.5)
  last = BLOCKS[-1][1] * CH
  state["output_layer.0.gain"] = 1.0 + 0.1 * rng.normal(size=(last,))
  state["output_layer.0.bias"] = 0.1 * rng.normal(size=(last,))
  stats("output_layer.0", last)
  sn("output_layer.2", (3, last, 3, 3))
  return {k: np.asarray(v, np.float32) for k, v in state.items()}


def sn_weight(state, prefix):
  """W / sigma, sigma from one power iteration from u0 (BigGAN-PyTorch)."""
  w = torch.from_numpy(state[f"{prefix}.weight"])
  u = torch.from_numpy(state[f"{prefix}.u0"])
  mat = w.reshape(w.shape[0], -1)
  v = F.normalize(u @ mat, eps=EPS)
  u = F.normalize(v @ mat.t(), eps=EPS)
  sigma = ((v @ mat.t()) @ u.t()).squeeze()
  return w / sigma


class Generator(nn.Module):
  """BigGAN-128 (module docstring) from a state dict; z [B, 120] -> NCHW."""

  def __init__(self, state):
    super().__init__()
    t = lambda k: torch.from_numpy(state[k])
    self.embedding = t("shared.weight")[0]  # The authors' class 0.
    self.linear_w, self.linear_b = sn_weight(state, "linear"), t("linear.bias")
    self.blocks = []
    for i in range(len(BLOCKS)):
      p = f"blocks.{i}.0"
      block = {k: sn_weight(state, f"{p}.{k}") for k in (
          "bn1.gain", "bn1.bias", "bn2.gain", "bn2.bias", "conv1", "conv2",
          "conv_sc")}
      block.update({f"{k}.b": t(f"{p}.{k}.bias")
                    for k in ("conv1", "conv2", "conv_sc")})
      block.update({f"{bn}.{s}": t(f"{p}.{bn}.stored_{s}")
                    for bn in ("bn1", "bn2") for s in ("mean", "var")})
      self.blocks.append(block)
    p = f"blocks.{ATTENTION_BLOCK}.1"
    self.attention = {k: sn_weight(state, f"{p}.{k}")
                      for k in ("theta", "phi", "g", "o")}
    self.gamma = t(f"{p}.gamma")
    self.out_bn = {k: t(f"output_layer.0.{k}")
                   for k in ("gain", "bias", "stored_mean", "stored_var")}
    self.out_w, self.out_b = (sn_weight(state, "output_layer.2"),
                              t("output_layer.2.bias"))

  @staticmethod
  def _cond_bn(x, cond, block, name):
    """Class- and z-conditional BatchNorm with stored statistics."""
    gain = 1.0 + cond @ block[f"{name}.gain"].t()
    bias = cond @ block[f"{name}.bias"].t()
    x = F.batch_norm(x, block[f"{name}.mean"], block[f"{name}.var"],
                     training=False, eps=EPS)
    return x * gain[:, :, None, None] + bias[:, :, None, None]

  def _attend(self, x):
    """Self-attention over positions (queries all, keys/values pooled 2x2)."""
    b, c, h, w = x.shape
    a = self.attention
    theta = F.conv2d(x, a["theta"]).reshape(b, c // 8, h * w)
    phi = F.max_pool2d(F.conv2d(x, a["phi"]), 2).reshape(b, c // 8, -1)
    g = F.max_pool2d(F.conv2d(x, a["g"]), 2).reshape(b, c // 2, -1)
    weights = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)
    o = (g @ weights.transpose(1, 2)).reshape(b, c // 2, h, w)
    return x + self.gamma * F.conv2d(o, a["o"])

  @torch.no_grad()
  def forward(self, z):
    chunks = torch.split(z, CHUNK, dim=1)
    x = F.linear(chunks[0], self.linear_w, self.linear_b)
    x = x.reshape(z.shape[0], BLOCKS[0][0] * CH, 4, 4)
    embedding = self.embedding.expand(z.shape[0], -1)
    for i, block in enumerate(self.blocks):
      cond = torch.cat([embedding, chunks[i + 1]], dim=1)
      h = F.relu(self._cond_bn(x, cond, block, "bn1"))
      h = F.interpolate(h, scale_factor=2)
      h = F.conv2d(h, block["conv1"], block["conv1.b"], padding=1)
      h = F.relu(self._cond_bn(h, cond, block, "bn2"))
      h = F.conv2d(h, block["conv2"], block["conv2.b"], padding=1)
      x = h + F.conv2d(F.interpolate(x, scale_factor=2), block["conv_sc"],
                       block["conv_sc.b"])
      if i == ATTENTION_BLOCK:
        x = self._attend(x)
    bn = self.out_bn
    x = F.batch_norm(x, bn["stored_mean"], bn["stored_var"], bn["gain"],
                     bn["bias"], training=False, eps=EPS)
    return torch.tanh(F.conv2d(F.relu(x), self.out_w, self.out_b, padding=1))


def double_conv(cin, cout):
  return nn.Sequential(
      nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
      nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class UNet(nn.Module):
  """milesial's U-Net as the authors use it: width 64, bilinear, 2 logits."""

  def __init__(self, w=64):
    super().__init__()
    self.inc = double_conv(3, w)
    self.downs = nn.ModuleList([double_conv(a, b) for a, b in (
        (w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w), (8 * w, 8 * w))])
    self.ups = nn.ModuleList([double_conv(a, b) for a, b in (
        (16 * w, 4 * w), (8 * w, 2 * w), (4 * w, w), (2 * w, w))])
    self.head = nn.Conv2d(w, 2, 1)

  def forward(self, x):
    x = self.inc(x)
    skips = [x]
    for down in self.downs:
      x = down(F.max_pool2d(x, 2))
      skips.append(x)
    skips.pop()
    for up in self.ups:
      skip = skips.pop()
      x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
      dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
      x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
      x = up(torch.cat([skip, x], dim=1))
    return self.head(x)


def gray(x):
  return GRAY[0] * x[:, 0] + GRAY[1] * x[:, 1] + GRAY[2] * x[:, 2]


def label_8(mask: np.ndarray) -> np.ndarray:
  """8-connected labels of a [H, W] bool mask (0 = background): each pixel
  takes the smallest label in its 3x3 foreground neighbourhood until none
  changes."""
  h, w = mask.shape
  big = h * w + 1
  labels = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
  while True:
    padded = np.pad(labels, 1, constant_values=big)
    low = labels.copy()
    for dy in range(3):
      for dx in range(3):
        np.minimum(low, padded[dy:dy + h, dx:dx + w], out=low)
    low = np.where(mask, low, big)
    if np.array_equal(low, labels):
      break
    labels = low
  _, dense = np.unique(np.where(mask, labels, 0), return_inverse=True)
  return dense.reshape(h, w)


def components_filter(masks: np.ndarray) -> np.ndarray:
  """Keeps components with area > 0.2 x the largest, one pass per component."""
  out = np.zeros_like(masks)
  for i, mask in enumerate(masks):
    labels = label_8(mask > 0)
    areas = [np.sum(labels == c) for c in range(1, labels.max() + 1)]
    if not areas:
      continue
    for c, area in enumerate(areas, start=1):
      if area / max(areas) > 0.2:
        out[i][labels == c] = 1
  return out


def two_maxima(shifted: torch.Tensor) -> np.ndarray:
  """Per image: >= 2 local maxima of its 12-bin histogram's moving sum."""
  keep = []
  for image in shifted:
    hist = torch.histc(image, 12, -1, 1)
    hist = F.conv1d(hist.view(1, 1, -1), torch.ones(1, 1, 3), padding=1)
    s = hist.view(-1).numpy()
    up = np.r_[True, s[1:] >= s[:-1]]
    down = np.r_[s[:-1] >= s[1:], True]
    keep.append(np.count_nonzero(up & down) >= 2)
  return np.array(keep)


class Step:
  """One authors' training step (module docstring); timings per part."""

  def __init__(self, state, direction, batch, rounds, radius, seed):
    torch.manual_seed(seed)
    self.g = Generator(state)
    self.shift = radius * torch.from_numpy(direction)
    self.batch, self.rounds = batch, rounds
    self.unet = UNet().train()
    self.opt = torch.optim.Adam(self.unet.parameters(), lr=1e-3)

  def synthesize(self, times):
    images, masks, kept, rounds = [], [], 0, 0
    while kept < self.batch and (self.rounds == 0 or rounds < self.rounds):
      rounds += 1
      t = time.perf_counter()
      z = torch.randn(self.batch, Z_DIM)
      x, shifted = self.g(z), self.g(z + self.shift)
      times["generator_ms"] += 1e3 * (time.perf_counter() - t)
      t = time.perf_counter()
      mask = components_filter((gray(x) < gray(shifted)).numpy().astype(
          np.int64))
      ok = (mask.mean(axis=(1, 2)) < 0.5) & two_maxima(shifted)
      times["filters_ms"] += 1e3 * (time.perf_counter() - t)
      if self.rounds == 1:  # All slots, the rejected with weight 0.
        return x, torch.from_numpy(mask), torch.from_numpy(ok), rounds
      images.append(x[torch.from_numpy(ok)])
      masks.append(torch.from_numpy(mask[ok]))
      kept += int(ok.sum())
    x, m = torch.cat(images)[:self.batch], torch.cat(masks)[:self.batch]
    return x, m, torch.ones(len(x), dtype=torch.bool), rounds

  def __call__(self):
    times = {"generator_ms": 0.0, "filters_ms": 0.0}
    start, cpu = time.perf_counter(), time.process_time()
    x, masks, weights, rounds = self.synthesize(times)
    t = time.perf_counter()
    self.opt.zero_grad()
    losses = F.cross_entropy(self.unet(x), masks, reduction="none")
    w = weights.float()
    loss = (losses.mean(dim=(1, 2)) * w).sum() / w.sum().clamp(min=1.0)
    loss.backward()
    self.opt.step()
    end = time.perf_counter()
    times.update(unet_ms=1e3 * (end - t), step_ms=1e3 * (end - start),
                 step_cpu_ms=1e3 * (time.process_time() - cpu),
                 rounds=rounds, kept=int(weights.sum()), loss=loss.item())
    return times


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--save", help="Write DIR/state.npz (random weights), "
                      "DIR/direction.npy and DIR/check.npz (z, G(z)); exit.")
  parser.add_argument("--load", help="The DIR of --save.")
  parser.add_argument("--serve", action="store_true")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--rounds", type=int, default=1,
                      help="Synthesis rounds per step; 0 = until full.")
  parser.add_argument("--radius", type=float, default=5.0)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--threads", type=int, default=0,
                      help="torch threads; 0 = the cores this process may "
                      "use.")
  args = parser.parse_args()
  torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
  if args.save:
    os.makedirs(args.save, exist_ok=True)
    state = random_state(args.seed)
    np.savez(os.path.join(args.save, "state.npz"), **state)
    direction = np.random.default_rng(args.seed + 1).normal(size=Z_DIM)
    direction = (direction / np.linalg.norm(direction)).astype(np.float32)
    z = np.random.default_rng(args.seed + 2).normal(size=(2, Z_DIM))
    z = torch.from_numpy(z.astype(np.float32))
    g = Generator(state)
    images = g(z)
    # Random weights: the sign that lights less than half the image, so
    # the size filter keeps some samples.
    shifted = g(z + args.radius * torch.from_numpy(direction))
    if (gray(images) < gray(shifted)).float().mean() > 0.5:
      direction = -direction
    np.save(os.path.join(args.save, "direction.npy"), direction)
    np.savez(os.path.join(args.save, "check.npz"), z=z.numpy(),
             images=images.numpy())
    return
  with np.load(os.path.join(args.load, "state.npz")) as f:
    state = dict(f)
  direction = np.load(os.path.join(args.load, "direction.npy"))
  step = Step(state, direction, args.batch, args.rounds, args.radius,
              args.seed)
  print(json.dumps({"ready": True, "threads": torch.get_num_threads(),
                    "torch": torch.__version__}), flush=True)
  for line in sys.stdin:
    if line.strip() == "quit":
      break
    print(json.dumps(step()), flush=True)


if __name__ == "__main__":
  main()
