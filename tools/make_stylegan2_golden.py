"""Golden outputs of the reference StyleGAN2 code for tests/test_stylegan2.py.

Builds small random-weight generators with the authors' own PyTorch code
on CPU and writes, under tests/fixtures/stylegan2/:

  nvlabs_64.pkl / nvlabs_golden.npz
    NVlabs/stylegan2-ada-pytorch at commit NVLABS_COMMIT: a training-snapshot
    pickle {G, D, G_ema, augment_pipe, training_set_kwargs} exactly as
    training/training_loop.py writes it (G is G_ema, so pickle stores it
    once), 64 px, z_dim = w_dim = 64, 2 mapping layers, channel_base 512,
    channel_max 32, conv_clamp 1 (small, so that clamping is exercised), the
    reference ops (impl 'ref': no CUDA plug-ins are built on CPU).
  nvlabs_tf_64.pkl / nvlabs_tf_golden.npz
    a TensorFlow StyleGAN2 pickle (the format of NVlabs' original StyleGAN2
    networks, e.g. LSUN church config F): a (G, D, Gs) tuple of
    dnnlib.tflib Network states with random variables named as the TF code
    names them, 64 px, fmap_base TF_FMAP_BASE; the images are those of the
    generator NVlabs' legacy.py converts from it (truncation PSI).
  stylegan3_cfg_stylegan2_64.pkl / stylegan3_cfg_stylegan2_golden.npz,
  stylegan3_cfg_t_64.pkl
    NVlabs/stylegan3 at commit STYLEGAN3_COMMIT: its StyleGAN2 generator
    (training/networks_stylegan2.py, what --cfg=stylegan2 trains; conv_clamp
    256 as that config) with images at truncation PSI, and a narrow config-T
    (alias-free) generator that the converter refuses.
  rosinality_64.pt / rosinality_golden.npz
    rosinality/stylegan2-pytorch at commit ROSINALITY_COMMIT: a torch.save of
    {g_ema, latent_avg, args} like its train.py / convert_weight.py, 64 px,
    style_dim 64, n_mlp 2, channel_multiplier 1 and every width divided by
    ROSINALITY_WIDTH_DIVISOR (its channel table is fixed in Generator.
    __init__; the subclass below narrows it), its CPU fallback ops;
    rosinality_64_legacy.pt is the same checkpoint in torch's legacy
    (pre-1.6, non-zip) format.

Every parameter that the constructors set to a constant (biases, noise
strengths, w_avg) is redrawn at random so that the fixtures test it.

Needs torch (2.13.0 CPU was used), numpy, and unpacked copies of the
repositories at the commits above:

  python tools/make_stylegan2_golden.py --nvlabs_dir=SRC1 --stylegan3_dir=SRC2
      --rosinality_dir=SRC3
"""
import argparse
import copy
import os
import pickle
import sys
import types

import numpy as np
import torch

NVLABS_COMMIT = "d72cc7d041b42ec8e806021a205ed9349f87c6a4"
ROSINALITY_COMMIT = "bef283a1c24087da704d16c30abc8e36e63efa0e"
STYLEGAN3_COMMIT = "c233a919a6faee6e36a316ddd4eddababad1adf9"
ROSINALITY_WIDTH_DIVISOR = 16  # 512 -> 32 channels.
RESOLUTION = 64
LATENT_DIM = 64
BATCH = 3
PSI = 0.7
CUTOFF = 4  # Truncation only on the first 4 ws (NVlabs truncation_cutoff).
MIX_FROM = 5  # Style mixing: ws[MIX_FROM:] come from a second latent.
TF_FMAP_BASE, TF_FMAP_MAX = 256, 32  # TF fmap_base: channel_base / 2.
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "tests", "fixtures", "stylegan2")


def _redraw_constants(module: torch.nn.Module, generator: torch.Generator,
                      names: tuple[str, ...]) -> None:
  """Parameters/buffers whose last name part is in `names` -> small N(0,1)."""
  with torch.no_grad():
    for name, tensor in list(module.named_parameters()) + list(
        module.named_buffers()):
      if name.split(".")[-1] in names:
        tensor.copy_(0.5 * torch.randn(tensor.shape, generator=generator)
                     + (1.0 if "affine" in name or "modulation" in name
                        else 0.0))


def make_nvlabs(src: str) -> None:
  sys.path.insert(0, src)
  from training import networks  # pylint: disable=import-outside-toplevel
  rng = torch.Generator().manual_seed(0)
  torch.manual_seed(0)
  common = dict(z_dim=LATENT_DIM, c_dim=0, w_dim=LATENT_DIM,
                img_resolution=RESOLUTION, img_channels=3)
  g = networks.Generator(
      **common, mapping_kwargs=dict(num_layers=2),
      synthesis_kwargs=dict(channel_base=512, channel_max=32, num_fp16_res=0,
                            conv_clamp=1, architecture="skip"))
  d = networks.Discriminator(c_dim=0, img_resolution=RESOLUTION,
                             img_channels=3, channel_base=128, channel_max=8)
  _redraw_constants(g, rng, ("bias", "noise_strength", "w_avg"))
  g.eval().requires_grad_(False)
  d.eval().requires_grad_(False)
  snapshot = dict(training_set_kwargs=dict(resolution=RESOLUTION))
  g_ema = copy.deepcopy(g)
  snapshot.update(G=g_ema, D=d, G_ema=g_ema, augment_pipe=None)
  with open(os.path.join(OUT, "nvlabs_64.pkl"), "wb") as f:
    pickle.dump(snapshot, f)

  z = torch.randn([BATCH, LATENT_DIM], generator=rng)
  z2 = torch.randn([BATCH, LATENT_DIM], generator=rng)
  with torch.no_grad():
    ws = g.mapping(z, None)
    ws2 = g.mapping(z2, None)
    ws_trunc = g.mapping(z, None, truncation_psi=PSI)
    ws_cut = g.mapping(z, None, truncation_psi=PSI, truncation_cutoff=CUTOFF)
    mixed = ws.clone()
    mixed[:, MIX_FROM:] = ws2[:, MIX_FROM:]
    out = dict(
        z=z, z2=z2, ws=ws, ws_trunc=ws_trunc, ws_cut=ws_cut, ws_mixed=mixed,
        images_z=g(z, None, noise_mode="const"),
        images_trunc=g(z, None, truncation_psi=PSI, noise_mode="const"),
        images_cut=g(z, None, truncation_psi=PSI, truncation_cutoff=CUTOFF,
                     noise_mode="const"),
        images_w=g.synthesis(ws, noise_mode="const"),
        images_mixed=g.synthesis(mixed, noise_mode="const"),
        images_no_noise=g.synthesis(ws, noise_mode="none"),
    )
  out = {k: v.numpy() for k, v in out.items()}
  for k in [k for k in out if k.startswith("images")]:
    out[k] = out[k].transpose(0, 2, 3, 1)  # NCHW -> NHWC.
  noise = {f"noise_{name}": b.numpy() for name, b in g.named_buffers()
           if name.endswith("noise_const")}
  np.savez_compressed(os.path.join(OUT, "nvlabs_golden.npz"), psi=PSI,
                      cutoff=CUTOFF, mix_from=MIX_FROM, commit=NVLABS_COMMIT,
                      **out, **noise)
  sys.path.remove(src)


def _tf_variables(rng: np.random.Generator) -> tuple[dict, dict, dict]:
  """Random variables of a TF StyleGAN2 Gs, named and shaped as NVlabs' TF
  code names them (the names legacy.py's convert_tf_generator reads)."""
  def normal(*shape):
    return rng.standard_normal(shape).astype(np.float32)

  def channels(side):
    return min(TF_FMAP_BASE * 2 // side, TF_FMAP_MAX)

  w = LATENT_DIM
  mapping = {}
  for i in range(2):
    mapping[f"Dense{i}/weight"] = normal(LATENT_DIM, w) * 100  # lrmul 0.01.
    mapping[f"Dense{i}/bias"] = normal(w)
  synthesis = {"4x4/Const/const": normal(1, channels(4), 4, 4)}
  sides = [2 ** i for i in range(2, int(np.log2(RESOLUTION)) + 1)]
  for side in sides:
    convs = ["Conv"] if side == 4 else ["Conv0_up", "Conv1"]
    for conv in convs:
      cin = channels(side // 2) if conv == "Conv0_up" else channels(side)
      prefix = f"{side}x{side}/{conv}"
      synthesis.update({
          f"{prefix}/weight": normal(3, 3, cin, channels(side)),
          f"{prefix}/bias": normal(channels(side)) * 0.5,
          f"{prefix}/noise_strength": normal() * 0.5,
          f"{prefix}/mod_weight": normal(w, cin),
          f"{prefix}/mod_bias": normal(cin) * 0.5})
    prefix = f"{side}x{side}/ToRGB"
    synthesis.update({
        f"{prefix}/weight": normal(1, 1, channels(side), 3),
        f"{prefix}/bias": normal(3) * 0.5,
        f"{prefix}/mod_weight": normal(w, channels(side)),
        f"{prefix}/mod_bias": normal(channels(side)) * 0.5})
  for k in range(2 * len(sides) - 1):
    side = 2 ** ((k + 5) // 2)
    synthesis[f"noise{k}"] = normal(1, 1, side, side)
  return {"dlatent_avg": normal(w) * 0.5}, mapping, synthesis


def make_nvlabs_tf(src: str) -> None:
  """A TensorFlow-format StyleGAN2 pickle (tuple G, D, Gs of dnnlib.tflib
  Networks) and the images of the generator NVlabs' legacy.py converts from
  it (convert_tf_generator, the authors' own TF -> PyTorch conversion)."""
  sys.path.insert(0, src)
  import legacy  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(2)
  tflib = types.ModuleType("dnnlib.tflib")
  network = types.ModuleType("dnnlib.tflib.network")

  class Network:
    """What dnnlib.tflib.network.Network.__getstate__ pickles."""

    def __init__(self, name, variables, components, static_kwargs):
      self.state = dict(version=4, name=name, static_kwargs=static_kwargs,
                        components=components, build_module_src="",
                        build_func_name="G_" + name,
                        variables=list(variables.items()))

    def __getstate__(self):
      return self.state

  Network.__module__, Network.__qualname__ = network.__name__, "Network"
  network.Network = Network
  sys.modules.update({"dnnlib.tflib": tflib, "dnnlib.tflib.network": network})
  avg, mapping, synthesis = _tf_variables(rng)
  kwargs = dict(latent_size=LATENT_DIM, dlatent_size=LATENT_DIM,
                resolution=RESOLUTION, mapping_layers=2,
                fmap_base=TF_FMAP_BASE, fmap_max=TF_FMAP_MAX)
  gs = Network("Gs", avg, {
      "mapping": Network("mapping", mapping, {}, {}),
      "synthesis": Network("synthesis", synthesis, {}, {})}, kwargs)
  d = Network("D", {}, {}, {})
  path = os.path.join(OUT, "nvlabs_tf_64.pkl")
  with open(path, "wb") as f:
    pickle.dump((gs, d, gs), f)
  del sys.modules["dnnlib.tflib"], sys.modules["dnnlib.tflib.network"]

  with open(path, "rb") as f:
    # pylint: disable-next=protected-access
    tf_gs = legacy._LegacyUnpickler(f).load()[2]
  g = legacy.convert_tf_generator(tf_gs)
  z = torch.from_numpy(rng.standard_normal((BATCH, LATENT_DIM)).astype(
      np.float32))
  with torch.no_grad():
    images = g(z, None, truncation_psi=PSI, noise_mode="const")
  np.savez_compressed(os.path.join(OUT, "nvlabs_tf_golden.npz"), psi=PSI,
                      commit=NVLABS_COMMIT, z=z.numpy(),
                      images_trunc=images.numpy().transpose(0, 2, 3, 1))
  sys.path.remove(src)


def make_stylegan3(src: str) -> None:
  """stylegan3's own StyleGAN2 networks (training/networks_stylegan2.py, its
  --cfg=stylegan2) and a config-T generator (networks_stylegan3.py), which
  the converter must refuse; both pickled as its training_loop does."""
  for name in [m for m in sys.modules
               if m.split(".")[0] in ("training", "torch_utils", "dnnlib")]:
    del sys.modules[name]  # NVlabs' stylegan2-ada modules of the same names.
  sys.path.insert(0, src)
  # pylint: disable=import-outside-toplevel
  from training import networks_stylegan2
  from training import networks_stylegan3
  torch.manual_seed(3)
  rng = torch.Generator().manual_seed(3)
  common = dict(z_dim=LATENT_DIM, c_dim=0, w_dim=LATENT_DIM,
                img_resolution=RESOLUTION, img_channels=3,
                mapping_kwargs=dict(num_layers=2))
  g = networks_stylegan2.Generator(**common, channel_base=512, channel_max=32,
                                   num_fp16_res=0, conv_clamp=256)
  _redraw_constants(g, rng, ("bias", "noise_strength", "w_avg"))
  g.eval().requires_grad_(False)
  g_t = networks_stylegan3.Generator(**common, channel_base=256, channel_max=8,
                                     num_layers=4, num_fp16_res=0,
                                     magnitude_ema_beta=0.999)
  g_t.eval().requires_grad_(False)
  for name, net in (("stylegan3_cfg_stylegan2_64.pkl", g),
                    ("stylegan3_cfg_t_64.pkl", g_t)):
    with open(os.path.join(OUT, name), "wb") as f:
      pickle.dump(dict(G=net, D=None, G_ema=net, augment_pipe=None,
                       training_set_kwargs=None), f)
  z = torch.randn([BATCH, LATENT_DIM], generator=rng)
  with torch.no_grad():
    images = g(z, None, truncation_psi=PSI, noise_mode="const")
  np.savez_compressed(os.path.join(OUT, "stylegan3_cfg_stylegan2_golden.npz"),
                      psi=PSI, commit=STYLEGAN3_COMMIT, z=z.numpy(),
                      images_trunc=images.numpy().transpose(0, 2, 3, 1))
  sys.path.remove(src)


def make_rosinality(src: str) -> None:
  # Its op/ package builds CUDA kernels at import; on CPU the functions take
  # their native fallback branch, so the build is replaced by a no-op.
  import torch.utils.cpp_extension  # pylint: disable=import-outside-toplevel
  torch.utils.cpp_extension.load = lambda *args, **kwargs: None
  sys.path.insert(0, src)
  import model  # pylint: disable=import-outside-toplevel

  class NarrowGenerator(model.Generator):
    """rosinality's Generator with every width / ROSINALITY_WIDTH_DIVISOR."""

    @property
    def channels(self):
      return self._narrow_channels

    @channels.setter
    def channels(self, value):
      self._narrow_channels = {k: v // ROSINALITY_WIDTH_DIVISOR
                               for k, v in value.items()}

  rng = torch.Generator().manual_seed(1)
  torch.manual_seed(1)
  g = NarrowGenerator(RESOLUTION, LATENT_DIM, 2, channel_multiplier=1)
  _redraw_constants(g, rng, ("bias",))
  with torch.no_grad():  # NoiseInjection.weight, a [1] zero at init.
    for name, p in g.named_parameters():
      if name.endswith("noise.weight"):
        p.copy_(0.5 * torch.randn(p.shape, generator=rng))
  g.eval().requires_grad_(False)
  with torch.no_grad():
    latent_avg = g.mean_latent(4096)  # [1, style_dim], as generate.py does.
  args = argparse.Namespace(size=RESOLUTION, latent=LATENT_DIM, n_mlp=2,
                                   channel_multiplier=1)
  checkpoint = {"g_ema": g.state_dict(), "latent_avg": latent_avg,
                "args": args}
  torch.save(checkpoint, os.path.join(OUT, "rosinality_64.pt"))
  torch.save(checkpoint, os.path.join(OUT, "rosinality_64_legacy.pt"),
             _use_new_zipfile_serialization=False)

  z = torch.randn([BATCH, LATENT_DIM], generator=rng)
  z2 = torch.randn([BATCH, LATENT_DIM], generator=rng)
  with torch.no_grad():
    w = g.get_latent(z)
    w2 = g.get_latent(z2)
    images_z, _ = g([z], randomize_noise=False)
    images_trunc, _ = g([z], truncation=PSI, truncation_latent=latent_avg,
                        randomize_noise=False)
    images_w, _ = g([w], input_is_latent=True, randomize_noise=False)
    images_mixed, _ = g([w, w2], input_is_latent=True, inject_index=MIX_FROM,
                        randomize_noise=False)
  out = dict(z=z, z2=z2, w=w, w2=w2, latent_avg=latent_avg.reshape(-1),
             images_z=images_z, images_trunc=images_trunc, images_w=images_w,
             images_mixed=images_mixed)
  out = {k: v.numpy() for k, v in out.items()}
  for k in [k for k in out if k.startswith("images")]:
    out[k] = out[k].transpose(0, 2, 3, 1)
  np.savez_compressed(os.path.join(OUT, "rosinality_golden.npz"), psi=PSI,
                      mix_from=MIX_FROM, commit=ROSINALITY_COMMIT, **out)
  sys.path.remove(src)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--nvlabs_dir", required=True,
                      help=f"NVlabs/stylegan2-ada-pytorch at {NVLABS_COMMIT}")
  parser.add_argument("--stylegan3_dir", required=True,
                      help=f"NVlabs/stylegan3 at {STYLEGAN3_COMMIT}")
  parser.add_argument("--rosinality_dir", required=True,
                      help="rosinality/stylegan2-pytorch at "
                      f"{ROSINALITY_COMMIT}")
  args = parser.parse_args()
  os.makedirs(OUT, exist_ok=True)
  torch.set_grad_enabled(False)
  make_nvlabs(args.nvlabs_dir)
  make_nvlabs_tf(args.nvlabs_dir)
  make_stylegan3(args.stylegan3_dir)
  make_rosinality(args.rosinality_dir)
  for name in sorted(os.listdir(OUT)):
    print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
  main()
